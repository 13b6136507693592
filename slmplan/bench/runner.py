"""Run a benchmark in a child process and assemble the result (with predictions and system info).

The child (``slmplan.bench.worker``) streams one JSON event per line: each timed sample as it is
measured, so an interrupted run (Ctrl-C) keeps every sample taken so far.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Callable

from slmplan.bench import system as sysinfo
from slmplan.bench.predict import context_memory, context_settings, make_predictor, weights_memory
from slmplan.errors import RuntimeFailure
from slmplan.model import ModelFacts
from slmplan.schema.bench import (BenchRun, BenchSettings, ContextBuffers, MemoryReport, Prediction, TestResult,
                                  TTFTResult)
from slmplan.schema.device import DeviceProfile

DEFAULT_TTFT_PROMPT = (
    "I run a small bakery with four employees. Our delivery van broke down this morning and the repair "
    "shop says it will take three days. We have twelve wholesale orders to deliver to cafes across town "
    "tomorrow and on Thursday. Suggest a practical plan for the next three days, including options for "
    "renting a vehicle, asking customers to pick up, and how to communicate the delay politely. Keep "
    "the answer short and list the steps in order."
)


@dataclass(frozen=True)
class TestSpec:
    __test__ = False  # not a pytest test class
    n_prompt: int
    n_gen: int
    n_depth: int = 0

    @property
    def name(self) -> str:
        base = f"pp{self.n_prompt}" if self.n_gen == 0 else (
            f"tg{self.n_gen}" if self.n_prompt == 0 else f"pp{self.n_prompt}+tg{self.n_gen}")
        return base + (f" @ d{self.n_depth}" if self.n_depth else "")


def build_tests(pps: list[int], tgs: list[int], depths: list[int]) -> list[TestSpec]:
    """llama-bench's order: every pp test, then every tg test, each at every depth."""
    tests = [TestSpec(p, 0, d) for p in pps if p > 0 for d in depths]
    tests += [TestSpec(0, g, d) for g in tgs if g > 0 for d in depths]
    return tests


def _ratio(measured: float | None, predicted: float | None) -> float | None:
    if not measured or not predicted:
        return None
    return round(measured / predicted, 4)


def _stats(tps: list[float]) -> tuple[float, float, float]:
    mean = statistics.fmean(tps)
    std = statistics.stdev(tps) if len(tps) > 1 else 0.0
    return mean, std, statistics.median(tps)


class _Child:
    """The worker process and its event stream."""

    def __init__(self, spec: dict) -> None:
        self.err = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "slmplan.bench.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err, text=True, env=env)
        self.proc.stdin.write(json.dumps(spec))
        self.proc.stdin.close()

    def events(self):
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                yield json.loads(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stderr_tail(self, n: int = 3) -> str:
        self.err.seek(0)
        lines = [x for x in self.err.read().splitlines() if x.strip()]
        return " | ".join(lines[-n:])


def run_llamacpp(model_arg: str, path: str, facts: ModelFacts | None, tests: list[TestSpec], settings: BenchSettings,
                 device: DeviceProfile, ttft_prompt: str | None = DEFAULT_TTFT_PROMPT, ttft_reps: int | None = None,
                 on_event: Callable[[dict], None] | None = None,
                 runtime: str = "llama.cpp") -> tuple[BenchRun, dict[str, float | None]]:
    """Measure; returns the run and the *shipped* model's prediction per test (for --calibrate).

    ``runtime='onnx'`` runs the same tests through ONNX Runtime GenAI on a model folder; then
    ``facts`` is None and there are no predictions (the speed model describes llama.cpp)."""
    quant = facts.file_quant if facts else None
    s = settings
    spec = {"runtime": runtime, "model": path, "tests": [{"name": t.name, "n_prompt": t.n_prompt, "n_gen": t.n_gen, "n_depth": t.n_depth}
                                     for t in tests],
            "settings": {"threads": s.threads, "n_batch": s.n_batch, "n_ubatch": s.n_ubatch, "flash_attn": s.flash_attn,
                         "type_k": s.type_k, "type_v": s.type_v, "poll": s.poll},
            "reps": s.reps, "warmup": s.warmup, "use_mmap": s.use_mmap,
            "ttft": {"prompt": ttft_prompt, "reps": ttft_reps or s.reps} if ttft_prompt else None}
    static = sysinfo.static_info()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    before = sysinfo.Snapshot.take(probe_s=0.5)
    child = _Child(spec)
    state: dict = {"samples": {}, "done": {}, "mem": {}}
    interrupted = False
    error = None
    try:
        for ev in child.events():
            kind = ev["event"]
            if kind == "sample":
                state["samples"].setdefault(ev["test"], []).append(ev["ns"])
            elif kind == "test_done":
                state["done"][ev["test"]] = ev["result"]
                state["mem"]["last"] = ev["memory"]
            elif kind == "memory":
                state["mem"]["start"] = ev["memory"]
            elif kind == "loaded":
                state["loaded"] = ev
                state["mem"]["loaded"] = ev["memory"]
            elif kind == "done":
                state["end"] = ev
                state["mem"]["last"] = ev["memory"]
            elif kind == "error":
                error = ev["message"]
            if on_event:
                on_event(ev)
        child.proc.wait()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        child.stop()
    after = sysinfo.Snapshot.take()
    end = state.get("end")
    if not interrupted and end is None:
        if error is None:
            rc = child.proc.returncode
            why = ("it was killed (SIGKILL: out of memory?)" if rc == -9 else f"it exited with code {rc}")
            error = f"the benchmark process stopped unexpectedly: {why}. {child.stderr_tail()}"
        if not state["done"]:
            raise RuntimeFailure(f"{runtime} benchmark failed: {error}",
                                 "Check the model file with 'slmplan inspect', or rerun with fewer threads/smaller --pp")

    from slmplan.estimate.speed import load_constants

    planner_pred = make_predictor(facts, quant, device, s.threads) if facts else None
    shipped = make_predictor(facts, quant, device, s.threads, constants=load_constants(), label="shipped") if facts else None
    results: list[TestResult] = []
    shipped_by_test: dict[str, float | None] = {}
    for t in tests:
        ns = state["samples"].get(t.name, [])
        if not ns:
            continue
        done = state["done"].get(t.name)
        tps = [(t.n_prompt + t.n_gen) / (x / 1e9) for x in ns]
        mean, std, med = _stats(tps)
        pred = planner_pred.tokens_per_s(t.n_prompt, t.n_gen, t.n_depth) if planner_pred else None
        shipped_by_test[t.name] = shipped.tokens_per_s(t.n_prompt, t.n_gen, t.n_depth) if shipped else None
        buffers = ContextBuffers()
        fa = None
        inner = (done or {}).get("runtime_ns") or []
        energy = [e for e in (done or {}).get("energy_j") or [] if e is not None]
        jpt = round(statistics.median(energy) / (t.n_prompt + t.n_gen), 6) if energy else None
        overhead = (round(statistics.median(w / i for w, i in zip(ns, inner) if i > 0) - 1, 5)
                    if inner and all(i > 0 for i in inner) else None)
        if done and facts:
            fa = done.get("flash_attn")
            b = done["buffers"]
            n_ctx = t.n_prompt + t.n_gen + t.n_depth
            cs = context_settings(n_ctx, s.n_batch, s.n_ubatch, fa == "on", s.type_k, s.type_v)
            kv_p, comp_p = context_memory(facts, n_ctx, cs)
            kv = int(sum(v for k, v in b.items() if k.endswith(" KV")))
            comp = int(sum(v for k, v in b.items() if k.endswith(" compute")))
            out = int(sum(v for k, v in b.items() if k.endswith(" output")))
            buffers = ContextBuffers(kv_cache_bytes=kv, compute_bytes=comp, output_bytes=out,
                                     predicted_kv_cache_bytes=kv_p, predicted_compute_bytes=comp_p,
                                     kv_ratio=_ratio(kv, kv_p), compute_ratio=_ratio(comp + out, comp_p))
        results.append(TestResult(
            test=t.name, n_prompt=t.n_prompt, n_gen=t.n_gen, n_depth=t.n_depth,
            tokens_per_s_mean=round(mean, 3), tokens_per_s_std=round(std, 3), samples=[round(x, 3) for x in tps],
            samples_ns=ns, tokens_per_s_median=round(med, 3), llama_cpp_eval_ns=inner, harness_overhead=overhead,
            energy_j=(done or {}).get("energy_j") or [], joules_per_token=jpt, complete=bool(done) and len(ns) >= s.reps,
            flash_attn=fa, threadpool_attached=done.get("threadpool") if done else None,
            predicted_tokens_per_s=round(pred, 3) if pred else None, ratio_measured_to_predicted=_ratio(med, pred),
            buffers=buffers))

    ttft = None
    tt = state["done"].get("ttft")
    if tt and tt["samples_ns"]:
        secs = [x / 1e9 for x in tt["samples_ns"]]
        mean, std, med = _stats(secs)
        pred = planner_pred.ttft_s(tt["n_prompt_tokens"]) if planner_pred else None
        ttft = TTFTResult(prompt_tokens=tt["n_prompt_tokens"], chat_template=tt["chat_template"],
                          ttft_s_mean=round(mean, 5), ttft_s_std=round(std, 5), ttft_s_median=round(med, 5),
                          samples_s=[round(x, 5) for x in secs],
                          tokenize_s_mean=round(statistics.fmean(tt["tokenize_ns"]) / 1e9, 6),
                          first_token=tt["first_token"], predicted_ttft_s=round(pred, 5) if pred else None,
                          ratio_measured_to_predicted=_ratio(med, pred))

    loaded = state.get("loaded") or {}
    mem = _memory_report(state["mem"], loaded, end, results, facts, quant)
    if runtime == "onnx":
        mem = mem.model_copy(update={"method": "ONNX Runtime does not report its buffers: process RSS from "
                                               "/proc/self/status between tests (the kernel tracks the peak)"})
    cont = sysinfo.contention(before, after, end["cpu_s"] if end else None)
    warnings = sysinfo.busy_warnings(before, after, cont)
    if error:
        warnings.append(f"the run stopped early: {error}")
    if any(r.threadpool_attached is False for r in results):
        warnings.append("could not attach a ggml threadpool as llama-bench does (ggml's default one was used)")
    system = {**static, **(loaded.get("system") or {}), **sysinfo.dynamic_info(before, after, cont)}
    prediction = None
    if planner_pred:
        prediction = Prediction(
            device=device.id, constants=planner_pred.label, bandwidth_gbs=planner_pred.hw.bandwidth_gbs,
            cpu_gflops=planner_pred.hw.cpu_gflops,
            method=f"slmplan's estimator for the '{device.id}' profile with the {planner_pred.label} "
                   f"speed constants, compute scaled to {s.threads} thread(s); an estimate")
    elif runtime == "onnx":
        warnings.append("no prediction: slmplan's speed model describes llama.cpp, not ONNX Runtime")
    run = BenchRun(
        runtime=runtime, model=model_arg, model_path=path, model_desc=loaded.get("desc", ""), quant=quant,
        n_params=loaded.get("n_params"), model_size_bytes=loaded.get("model_size"), threads=s.threads, settings=s,
        results=results, ttft=ttft, memory=mem, load_s=round(loaded["load_s"], 4) if loaded else None,
        system=system, warnings=warnings, interrupted=interrupted, started_at=started,
        duration_s=round(after.wall - before.wall, 3), prediction=prediction,
    )
    return run, shipped_by_test


def _memory_report(mem: dict, loaded: dict, end: dict | None, results: list[TestResult], facts: ModelFacts,
                   quant: str | None) -> MemoryReport:
    last = mem.get("last") or mem.get("loaded") or {}
    bufs = {k: int(v) for k, v in (loaded.get("buffers") or {}).items()}
    mapped = sum(v for k, v in bufs.items() if k.endswith("_Mapped model")) or None
    repack = sum(v for k, v in bufs.items() if "REPACK" in k) or None
    w_pred, rep_pred = weights_memory(facts, quant) if facts and quant else (None, None)
    kvs = [r.buffers.kv_cache_bytes for r in results if r.buffers.kv_cache_bytes is not None]
    comps = [r.buffers.compute_bytes for r in results if r.buffers.compute_bytes is not None]
    return MemoryReport(
        peak_rss_bytes=last.get("peak_rss_bytes"), rss_before_load_bytes=(mem.get("start") or {}).get("rss_bytes"),
        rss_after_load_bytes=(mem.get("loaded") or {}).get("rss_bytes"), rss_anon_bytes=last.get("rss_anon_bytes"),
        rss_file_bytes=last.get("rss_file_bytes"), swap_bytes=last.get("swap_bytes"),
        major_faults=end.get("major_faults") if end else None, weights_mapped_bytes=mapped,
        weights_repacked_bytes=repack, kv_cache_bytes_max=max(kvs) if kvs else None,
        compute_bytes_max=max(comps) if comps else None, llama_buffers=bufs, predicted_weights_bytes=w_pred,
        predicted_repack_bytes=rep_pred, weights_ratio=_ratio(mapped, w_pred))
