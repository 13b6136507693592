"""ONNX Runtime GenAI measurements, with the same tests and result shape as the llama.cpp runner.

- ppN: a fresh generator (its KV cache is allocated for ``max_length`` up front, as ONNX Runtime
  GenAI does), ``n_depth`` random tokens appended untimed, then ``append_tokens`` of N random tokens
  timed (the prompt's forward pass).
- tgN: after one token (or ``n_depth`` tokens) of context, N ``generate_next_token`` calls timed.
  GenAI has no decode-only call: each step includes greedy selection of the next token (an argmax
  over the vocabulary, small next to the forward pass); llama.cpp's tgN excludes it.
- threads: ``intra_op_num_threads`` of the decoder session (config overlay), inter-op 1.
- TTFT: chat template + tokenize + prefill + first token, as for llama.cpp.

Runs in the benchmark's child process (``slmplan.bench.worker``); registered as ``onnx`` in
``slmplan.bench.backends``.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import onnxruntime_genai as og

from slmplan.bench.protocol import SettingsDict, TestOutput, TTFTOutput
from slmplan.bench.timing import TTFTRecorder


class OnnxGenAIBackend:
    def __init__(self, path: str, settings: SettingsDict, use_mmap: bool = True) -> None:  # noqa: ARG002
        threads = settings["threads"]
        self.load_buffers: dict[str, float] = {}
        self.dir = Path(path)
        cfg_json = json.loads((self.dir / "genai_config.json").read_text())
        self.n_vocab = int(cfg_json["model"]["vocab_size"])
        self.bos = cfg_json["model"].get("bos_token_id")
        self.context_length = int(cfg_json["model"].get("context_length") or 0)
        sw = cfg_json["model"]["decoder"].get("sliding_window")
        # a sliding-window model's KV cache must hold at least the window (GroupQueryAttention refuses less)
        self.min_length = int(sw.get("window_size", 0)) + 1 if isinstance(sw, dict) else 0
        cfg = og.Config(str(self.dir))
        cfg.overlay(json.dumps({"model": {"decoder": {"session_options": {
            "intra_op_num_threads": threads, "inter_op_num_threads": 1}}}}))
        t0 = time.perf_counter()
        self.model = og.Model(cfg)
        self.load_s = time.perf_counter() - t0
        self.tok = og.Tokenizer(self.model)
        self.model_size = sum(f.stat().st_size for f in self.dir.glob("*.onnx*"))
        self.desc = f"{cfg_json['model'].get('type', '?')} ONNX ({self._precision()})"
        self.n_params = None
        self.rng = random.Random(1)

    def _precision(self) -> str:
        meta = self.dir / "slmplan_convert.json"
        if meta.exists():
            return json.loads(meta.read_text()).get("precision", "?")
        return "?"

    def _ids(self, n: int, first_bos: bool = True) -> list[int]:
        ids = [self.rng.randrange(self.n_vocab) for _ in range(n)]
        if first_bos and ids and isinstance(self.bos, int):
            ids[0] = self.bos
        return ids

    def _generator(self, max_length: int):
        p = og.GeneratorParams(self.model)
        p.set_search_options(max_length=max(max_length, self.min_length), do_sample=False)
        return og.Generator(self.model, p)

    def _one(self, n_prompt: int, n_gen: int, n_depth: int) -> int:
        g = self._generator(n_depth + n_prompt + max(n_gen, 1) + 1)
        if n_depth:
            g.append_tokens(self._ids(n_depth))
        elif n_prompt == 0:
            g.append_tokens(self._ids(1))
        prompt = self._ids(n_prompt, first_bos=n_depth == 0) if n_prompt else None
        t0 = time.perf_counter_ns()
        if prompt:
            g.append_tokens(prompt)
        for _ in range(n_gen):
            g.generate_next_token()
        ns = time.perf_counter_ns() - t0
        del g
        return ns

    def run_test(self, n_prompt: int, n_gen: int, n_depth: int, reps: int, warmup: bool, s: SettingsDict,
                 on_sample=None, on_phase=None) -> TestOutput:
        if self.context_length and n_prompt + n_gen + n_depth + 2 > self.context_length:
            raise RuntimeError(f"test needs {n_prompt + n_gen + n_depth} tokens, the model's context is {self.context_length}")
        if warmup:
            if on_phase:
                on_phase("warmup")
            self._one(n_prompt, min(n_gen, 1) if n_gen else 0, n_depth)
        if on_phase:
            on_phase("timed")
        samples = []
        for _ in range(reps):
            ns = self._one(n_prompt, n_gen, n_depth)
            samples.append(ns)
            if on_sample:
                on_sample(ns)
        return {"samples_ns": samples, "runtime_ns": [], "energy_j": [], "buffers": {}, "flash_attn": None,
                "threadpool": None}

    def ttft(self, text: str, reps: int, warmup: bool, s: SettingsDict, on_sample=None) -> TTFTOutput:
        try:
            prompt = self.tok.apply_chat_template(json.dumps([{"role": "user", "content": text}]), add_generation_prompt=True)
            templated = True
        except Exception:  # noqa: BLE001 - no chat template: the raw text
            prompt, templated = text, False
        n_tokens = len(self.tok.encode(prompt))
        rec = TTFTRecorder(warmup, on_sample)
        for i in range(reps + (1 if warmup else 0)):
            g = self._generator(n_tokens + 8)
            t0 = time.perf_counter_ns()
            ids = self.tok.encode(prompt)
            t1 = time.perf_counter_ns()
            g.append_tokens(ids)
            g.generate_next_token()
            tok = int(g.get_next_tokens()[0])
            rec.add(i, t0, t1, time.perf_counter_ns(), tok)
            del g
        first = rec.first_token
        return {"samples_ns": rec.total, "tokenize_ns": rec.tokenize, "n_prompt_tokens": n_tokens,
                "chat_template": templated, "first_token": self.tok.decode([first]) if first is not None else ""}

    def close(self) -> None:
        del self.model

    @staticmethod
    def system_info() -> dict:
        return system_info()


def system_info() -> dict:
    import importlib.metadata as md

    return {"onnxruntime_genai_version": md.version("onnxruntime-genai"),
            "onnxruntime_version": md.version("onnxruntime"), "execution_provider": "cpu"}
