"""llama.cpp measurements through llama-cpp-python's low-level (C API) bindings.

This mirrors llama.cpp's ``tools/llama-bench/llama-bench.cpp`` step by step so the figures are
comparable with llama-bench's:

- one context per test, ``n_ctx = n_prompt + n_gen + n_depth``, ``swa_full = false``, flash
  attention ``auto``, ``n_batch`` 2048 / ``n_ubatch`` 512 by default;
- a ggml threadpool (``poll`` 50) attached to the context, ``llama_set_n_threads(n, n)`` before
  every run, so generation *and* batch threads follow ``--threads``;
- random token ids (BOS first when the vocabulary adds one), a warmup run (the whole prompt, one
  generated token), then ``reps`` timed runs, each after clearing the KV cache and (for ``-d``)
  restoring a cached state of ``n_depth`` tokens;
- the timed region holds only ``llama_decode`` + ``llama_synchronize`` calls: no tokenization, no
  sampling. llama.cpp's own timers (``llama_perf_context``) run too, so every result shows how much
  of the wall time the harness added (about 0.5%, all of it inside ``llama_decode`` itself). ``ttft`` is separate: a real prompt, tokenized, prefilled and the first token sampled
  (greedy), which is what a user waits for.

Nothing here is imported by the CLI process: it runs in the benchmark's child process
(``slmplan.bench.worker``) so one model's memory does not hide another's, and a crash of native
code (an illegal instruction on a CPU whose features llama.cpp misdetects, a segmentation fault in the AMX kernels
of some Xeon VMs) cannot take the parent down.
"""

from __future__ import annotations

import ctypes
import random
import re
import sys
import time
from pathlib import Path

import llama_cpp as L

from slmplan.bench.llama_log import LOG_PREFIX, parse_buffers, parse_flash_attn
from slmplan.bench.protocol import SettingsDict, TestOutput, TTFTOutput
from slmplan.bench.rapl import Rapl
from slmplan.bench.timing import TTFTRecorder

GGML_MAX_N_THREADS = 512
FA_TYPES = {"auto": -1, "off": 0, "on": 1}
KV_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "bf16": 30}


LOAD_MODE_NONE = 0  # enum llama_load_mode: read the file into memory instead of mapping it


def _set(struct, **fields) -> None:
    """Set ctypes struct fields, failing loudly on a name the binding does not have (a plain
    attribute assignment would silently do nothing when the C API renames a field)."""
    names = {f[0] for f in struct._fields_}
    for k, v in fields.items():
        if k not in names:
            raise RuntimeError(f"this llama-cpp-python has no '{k}' parameter (API changed?)")
        setattr(struct, k, v)


class _ThreadpoolParams(ctypes.Structure):
    _fields_ = [("cpumask", ctypes.c_bool * GGML_MAX_N_THREADS), ("n_threads", ctypes.c_int),
                ("prio", ctypes.c_int), ("poll", ctypes.c_uint32), ("strict_cpu", ctypes.c_bool),
                ("paused", ctypes.c_bool)]


class LogCapture:
    """Routes llama.cpp/ggml log output into a list of lines, and mirrors each line to stderr (the
    parent keeps it in a file, never on the terminal) so that a crash leaves llama.cpp's last words."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._partial = ""

        def cb(level, text, user_data):  # noqa: ARG001
            s = self._partial + text.decode("utf-8", "replace")
            *full, self._partial = s.split("\n")
            self.lines.extend(full)
            if full:
                sys.stderr.write("".join(f"{LOG_PREFIX}{line}\n" for line in full))
                sys.stderr.flush()

        self._cb = L.llama_log_callback(cb)  # keep a reference: C holds the pointer
        L.llama_log_set(self._cb, ctypes.c_void_p(0))

    def mark(self) -> int:
        return len(self.lines)

    def since(self, mark: int) -> list[str]:
        return self.lines[mark:]


class _Threadpool:
    """llama-bench attaches its own ggml threadpool; do the same through ctypes when available."""

    def __init__(self, n_threads: int, poll: int) -> None:
        self.ptr = None
        try:
            lib_dir = Path(L.__file__).parent / "lib"
            ggml = ctypes.CDLL(str(lib_dir / "libggml-base.so"))
            cpu = ctypes.CDLL(str(lib_dir / "libggml-cpu.so"))
            llama = L.llama_cpp._lib
            ggml.ggml_threadpool_params_default.restype = _ThreadpoolParams
            ggml.ggml_threadpool_params_default.argtypes = [ctypes.c_int]
            cpu.ggml_threadpool_new.restype = ctypes.c_void_p
            cpu.ggml_threadpool_new.argtypes = [ctypes.POINTER(_ThreadpoolParams)]
            cpu.ggml_threadpool_free.argtypes = [ctypes.c_void_p]
            llama.llama_attach_threadpool.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
            llama.llama_detach_threadpool.argtypes = [ctypes.c_void_p]
        except (OSError, AttributeError):
            return
        self._cpu, self._llama = cpu, llama
        p = ggml.ggml_threadpool_params_default(n_threads)
        p.poll = poll
        self.ptr = cpu.ggml_threadpool_new(ctypes.byref(p))

    def attach(self, ctx) -> None:
        if self.ptr:
            self._llama.llama_attach_threadpool(ctx, self.ptr, None)

    def detach_free(self, ctx) -> None:
        if self.ptr:
            self._llama.llama_detach_threadpool(ctx)
            self._cpu.ggml_threadpool_free(self.ptr)
            self.ptr = None


class LlamaCppBackend:
    """One loaded model; ``run_test`` makes a context per test as llama-bench does."""

    def __init__(self, path: str, settings: SettingsDict, use_mmap: bool = True) -> None:
        L.llama_backend_init()
        self.log = log = LogCapture()
        mark = log.mark()
        mp = L.llama_model_default_params()  # = llama-bench's: load mode auto (mmap), repack on
        if not use_mmap:
            _set(mp, load_mode=LOAD_MODE_NONE)
        # llama-bench --repack: llama.cpp's CPU extra buffer types (AMX, CPU_REPACK) on or off
        _set(mp, use_extra_bufts=bool(settings.get("repack", True)))
        t0 = time.perf_counter()
        self.model = L.llama_model_load_from_file(path.encode(), mp)
        self.load_s = time.perf_counter() - t0
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}: " + " | ".join(log.since(mark)[-3:]))
        self.model_log = log.since(mark)
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.add_bos = bool(L.llama_vocab_get_add_bos(self.vocab))
        self.bos = L.llama_vocab_bos(self.vocab)
        self.model_size = int(L.llama_model_size(self.model))
        self.n_params = int(L.llama_model_n_params(self.model))
        buf = ctypes.create_string_buffer(512)
        L.llama_model_desc(self.model, buf, 512)
        self.desc = buf.value.decode("utf-8", "replace")
        self.rng = random.Random(1)
        self.rapl = Rapl()
        self.load_buffers = parse_buffers(self.model_log)

    def new_context(self, n_ctx: int, s: SettingsDict):
        cp = L.llama_context_default_params()
        _set(cp, n_ctx=n_ctx, n_batch=s["n_batch"], n_ubatch=s["n_ubatch"], n_threads=s["threads"],
             n_threads_batch=s["threads"], type_k=KV_TYPES[s["type_k"]], type_v=KV_TYPES[s["type_v"]],
             flash_attn_type=FA_TYPES[s["flash_attn"]], swa_full=False, no_perf=False)
        mark = self.log.mark()
        ctx = L.llama_init_from_model(self.model, cp)
        if not ctx:
            raise RuntimeError("llama.cpp could not create a context: " + " | ".join(self.log.since(mark)[-3:]))
        pool = _Threadpool(s["threads"], s["poll"])
        pool.attach(ctx)
        return ctx, pool, self.log.since(mark)

    @staticmethod
    def free_context(ctx, pool) -> None:
        pool.detach_free(ctx)
        L.llama_free(ctx)

    # -- llama-bench's test_prompt / test_gen ------------------------------------------------
    def _rand(self) -> int:
        return self.rng.randrange(self.n_vocab)

    def test_prompt(self, ctx, n_prompt: int, n_batch: int, threads: int) -> None:
        L.llama_set_n_threads(ctx, threads, threads)
        tokens = (L.llama_token * n_batch)()
        done = 0
        while done < n_prompt:
            n = min(n_prompt - done, n_batch)
            tokens[0] = self.bos if done == 0 and self.add_bos else self._rand()
            for i in range(1, n):
                tokens[i] = self._rand()
            if L.llama_decode(ctx, L.llama_batch_get_one(tokens, n)) != 0:
                raise RuntimeError("llama_decode failed on a prompt batch")
            done += n
        L.llama_synchronize(ctx)

    def test_gen(self, ctx, n_gen: int, threads: int) -> None:
        L.llama_set_n_threads(ctx, threads, threads)
        tok = (L.llama_token * 1)()
        tok[0] = self.bos if self.add_bos else self._rand()
        nxt = [self._rand() for _ in range(n_gen)]
        # One batch struct for the whole loop (it points at ``tok``): per token, the Python side is
        # two foreign calls and a store, about 1.5 us against milliseconds of decoding.
        batch = L.llama_batch_get_one(tok, 1)
        decode, sync = L.llama_decode, L.llama_synchronize
        for i in range(n_gen):
            if decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed on a generation step")
            sync(ctx)
            tok[0] = nxt[i]

    def run_test(self, n_prompt: int, n_gen: int, n_depth: int, reps: int, warmup: bool, s: SettingsDict,
                 on_sample=None, on_phase=None) -> TestOutput:
        """One llama-bench test instance: samples in ns and the context's buffer report."""
        phase = on_phase or (lambda p: None)
        ctx, pool, ctx_log = self.new_context(n_prompt + n_gen + n_depth, s)
        threads, n_batch = s["threads"], s["n_batch"]
        mem = L.llama_get_memory(ctx)
        samples: list[int] = []
        inner: list[int] = []  # llama.cpp's own timing of the same decode calls (llama_perf_context)
        energy: list[float | None] = []  # RAPL package energy of each repetition, when readable
        try:
            L.llama_memory_clear(mem, False)
            if warmup:
                phase("warmup")
                if n_prompt > 0:
                    self.test_prompt(ctx, n_prompt, n_batch, threads)
                if n_gen > 0:
                    self.test_gen(ctx, 1, threads)
            depth_state = None
            for _ in range(reps):
                L.llama_memory_clear(mem, False)
                if n_depth > 0:
                    phase("depth")
                    if depth_state is None or L.llama_state_seq_set_data(ctx, depth_state, len(depth_state), 0) == 0:
                        self.test_prompt(ctx, n_depth, n_batch, threads)
                        size = L.llama_state_seq_get_size(ctx, 0)
                        depth_state = (ctypes.c_uint8 * size)()
                        L.llama_state_seq_get_data(ctx, depth_state, size, 0)
                phase("timed")
                L.llama_perf_context_reset(ctx)
                e0 = self.rapl.read()
                t0 = time.perf_counter_ns()
                if n_prompt > 0:
                    self.test_prompt(ctx, n_prompt, n_batch, threads)
                if n_gen > 0:
                    self.test_gen(ctx, n_gen, threads)
                ns = time.perf_counter_ns() - t0
                energy.append(self.rapl.joules(e0, self.rapl.read()))
                perf = L.llama_perf_context(ctx)
                samples.append(ns)
                inner.append(int((perf.t_p_eval_ms + perf.t_eval_ms) * 1e6))
                if on_sample:
                    on_sample(ns)
            return {"samples_ns": samples, "runtime_ns": inner, "energy_j": energy, "buffers": parse_buffers(ctx_log),
                    "flash_attn": parse_flash_attn(ctx_log, s["flash_attn"]), "threadpool": bool(pool.ptr)}
        finally:
            self.free_context(ctx, pool)

    # -- time to first token for a real prompt -------------------------------------------------
    def chat_prompt(self, text: str) -> tuple[str, bool]:
        """The prompt as the model's chat template formats it (raw text when there is none)."""
        tmpl = L.llama_model_chat_template(self.model, None)
        if not tmpl:
            return text, False
        msg = (L.llama_chat_message * 1)()
        msg[0].role = b"user"
        msg[0].content = text.encode()
        size = 4 * len(text) + 1024
        buf = ctypes.create_string_buffer(size)
        n = L.llama_chat_apply_template(tmpl, msg, 1, True, buf, size)
        if n <= 0 or n > size:
            return text, False
        return buf.raw[:n].decode("utf-8", "replace"), True

    def tokenize(self, text: str) -> list[int]:
        raw = text.encode()
        cap = len(raw) + 16
        toks = (L.llama_token * cap)()
        n = L.llama_tokenize(self.vocab, raw, len(raw), toks, cap, self.add_bos, True)
        if n < 0:
            cap = -n
            toks = (L.llama_token * cap)()
            n = L.llama_tokenize(self.vocab, raw, len(raw), toks, cap, self.add_bos, True)
        return list(toks[:n])

    def ttft(self, text: str, reps: int, warmup: bool, s: SettingsDict, on_sample=None) -> TTFTOutput:
        """Tokenize + prefill + sample the first token (greedy), in a fresh KV cache each time."""
        prompt, templated = self.chat_prompt(text)
        n_tokens = len(self.tokenize(prompt))
        ctx, pool, _ = self.new_context(n_tokens + 16, s)
        smpl = L.llama_sampler_init_greedy()
        mem = L.llama_get_memory(ctx)
        rec = TTFTRecorder(warmup, on_sample)
        n_batch, size = s["n_batch"], ctypes.sizeof(L.llama_token)
        try:
            L.llama_set_n_threads(ctx, s["threads"], s["threads"])
            for i in range(reps + (1 if warmup else 0)):
                L.llama_memory_clear(mem, False)
                t0 = time.perf_counter_ns()
                toks = self.tokenize(prompt)
                t1 = time.perf_counter_ns()
                arr = (L.llama_token * len(toks))(*toks)
                done = 0
                while done < len(toks):
                    n = min(len(toks) - done, n_batch)
                    ptr = ctypes.cast(ctypes.byref(arr, done * size), ctypes.POINTER(L.llama_token))
                    if L.llama_decode(ctx, L.llama_batch_get_one(ptr, n)) != 0:
                        raise RuntimeError("llama_decode failed on the TTFT prompt")
                    done += n
                tok = L.llama_sampler_sample(smpl, ctx, -1)
                rec.add(i, t0, t1, time.perf_counter_ns(), tok)
        finally:
            L.llama_sampler_free(smpl)
            self.free_context(ctx, pool)
        piece = ctypes.create_string_buffer(64)
        first = rec.first_token
        n = L.llama_token_to_piece(self.vocab, first, piece, 64, 0, True) if first is not None else 0
        return {"samples_ns": rec.total, "tokenize_ns": rec.tokenize, "n_prompt_tokens": n_tokens,
                "chat_template": templated, "first_token": piece.raw[:max(n, 0)].decode("utf-8", "replace")}

    def close(self) -> None:
        L.llama_model_free(self.model)

    @staticmethod
    def system_info() -> dict:
        return system_info()


def system_info() -> dict:
    """What llama.cpp itself reports about the CPU backend and the build."""
    info = L.llama_print_system_info().decode("utf-8", "replace").strip()
    feats = sorted(set(re.findall(r"(\w+) = 1", info)))
    return {"llama_cpp_system_info": info, "llama_cpp_cpu_features": feats,
            "llama_cpp_python_version": L.__version__}
