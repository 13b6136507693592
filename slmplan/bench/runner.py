"""Run a benchmark in a child process and assemble the result (with predictions and system info).

The child (``slmplan.bench.worker``, one of the runtimes in ``slmplan.bench.backends``) streams one
JSON event per line (``slmplan.bench.protocol``): each timed sample as it is measured, so an
interrupted run (Ctrl-C) keeps every sample taken so far. A child that dies is named by its
signal, the step it was in and llama.cpp's last log line; a native crash (illegal instruction,
segmentation fault, bus error) in llama.cpp's repacked CPU kernels is measured again with them off
(and says so).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import statistics
import threading
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from slmplan.bench import system as sysinfo
from slmplan.bench.backends import entry as backend_entry
from slmplan.bench.crash import ChildExit, describe_exit, oom_kill_count
from slmplan.bench.llama_log import extra_model_buffers, last_llama_line
from slmplan.bench.predict import context_memory, context_settings, make_predictor, weights_memory
from slmplan.bench.protocol import Event, TestSpecDict, WorkerSpec
from slmplan.errors import RuntimeFailure
from slmplan.model import ModelFacts
from slmplan.schema.bench import (BenchAttempt, BenchRun, BenchSettings, ContextBuffers, MemoryReport, MissingTest,
                                  Prediction, TestResult, TTFTResult)
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


# The child imports exactly the slmplan the parent imported (not whatever ``-m`` would find first
# on sys.path, such as another checkout in the current folder).
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from slmplan.bench.worker import main; sys.exit(main())"


def worker_argv() -> list[str]:
    import slmplan

    return [sys.executable, "-c", _BOOT, str(Path(slmplan.__file__).resolve().parent.parent)]


class _Child:
    """The worker process and its event stream."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.err = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
        self.oom_before = oom_kill_count()
        self.proc = subprocess.Popen(worker_argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True, env=env)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(spec))
        self.proc.stdin.close()

    def events(self) -> Iterator[Event]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a line the runtime wrote past the redirection: not ours

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stderr_text(self) -> str:
        self.err.seek(0)
        return self.err.read()

    def exit_info(self) -> ChildExit:
        return describe_exit(self.proc.returncode, self.oom_before, oom_kill_count())


@dataclass
class _Attempt:
    """One child run: what it reported, and how it ended."""

    repack: bool
    samples: dict[str, list[int]] = field(default_factory=dict)
    done: dict[str, dict] = field(default_factory=dict)
    mem: dict[str, dict] = field(default_factory=dict)
    loaded: dict | None = None
    end: dict | None = None
    error: str | None = None  # a Python-level error the child reported itself
    step: str = "starting"
    interrupted: bool = False
    exit: ChildExit | None = None
    last_llama_line: str | None = None
    batched: frozenset[str] = frozenset()  # the tests that run a batch of more than one token (prompt, depth fill, TTFT)

    @property
    def crashed(self) -> bool:
        return not self.interrupted and self.end is None

    def failure(self) -> str:
        """One sentence: what went wrong, where, and llama.cpp's last words."""
        if self.error:
            return f"{self.error} (during {self.step})"
        why = self.exit.description if self.exit else "it stopped"
        msg = f"the benchmark process stopped unexpectedly: {why} during {self.step}"
        if self.last_llama_line:
            msg += f"; last llama.cpp message: '{self.last_llama_line}'"
        return msg


_PHASES = {"warmup": "warmup", "depth": "filling the context depth", "timed": "timed run"}


def batched_tests(tests: list[TestSpecDict]) -> frozenset[str]:
    """The tests that run a batch of more than one token: a prompt, a depth test's context fill, the TTFT prompt."""
    return frozenset([t["name"] for t in tests if t["n_prompt"] or t["n_depth"]] + ["ttft"])


def _attempt(spec: WorkerSpec, on_event: Callable[[Event], None] | None) -> _Attempt:
    st = _Attempt(repack=spec["settings"]["repack"], batched=batched_tests(spec["tests"]))
    child = _Child(spec)

    def handle(ev: Event) -> None:
        kind = ev.get("event")
        if kind == "step":
            test = ev.get("test")
            step = ev.get("step") or ""
            st.step = (f"{test} ({_PHASES.get(step, step)})" if test
                       else {"loading": "loading the model", "closing": "closing the model"}.get(step, step))
        elif kind == "start":
            st.step = ev["test"] if ev["test"] != "ttft" else "the time-to-first-token test"
        elif kind == "sample":
            st.samples.setdefault(ev["test"], []).append(ev["ns"])
        elif kind == "test_done":
            st.done[ev["test"]] = ev["result"]
            st.mem["last"] = ev["memory"]
        elif kind == "memory":
            st.mem["start"] = ev["memory"]
        elif kind == "loaded":
            st.loaded = ev
            st.mem["loaded"] = ev["memory"]
            st.step = "after loading the model"
        elif kind == "done":
            st.end = ev
            st.mem["last"] = ev["memory"]
        elif kind == "error":
            st.error = ev["message"]
        if on_event:
            on_event(ev)

    # Ctrl-C: a flag and a stop request to the child, not an exception raised wherever the main thread is
    # (inside the progress display's locks an asynchronous KeyboardInterrupt can leave its refresh thread
    # waiting forever). The event loop then ends when the child's output does.
    def on_sigint(signum, frame) -> None:
        st.interrupted = True
        if child.proc.poll() is None:
            child.proc.terminate()

    prev = None
    if threading.current_thread() is threading.main_thread():
        prev = signal.signal(signal.SIGINT, on_sigint)
    try:
        for ev in child.events():
            handle(ev)
        child.proc.wait()
    except KeyboardInterrupt:  # a library caller outside the main thread, or a handler set by the caller
        st.interrupted = True
    finally:
        if prev is not None:
            signal.signal(signal.SIGINT, prev)
        child.stop()
    if st.interrupted:  # samples the child wrote before it stopped, still in the pipe: keep them too
        for ev in child.events():
            if ev.get("event") in ("sample", "test_done"):
                handle(ev)
    if st.crashed:
        st.exit = child.exit_info()
        st.last_llama_line = last_llama_line(child.stderr_text())
    return st


def _spec(runtime: str, path: str, tests: list[TestSpec], s: BenchSettings, repack: bool,
          ttft_prompt: str | None, ttft_reps: int | None) -> WorkerSpec:
    return {"runtime": runtime, "model": path,
            "tests": [{"name": t.name, "n_prompt": t.n_prompt, "n_gen": t.n_gen, "n_depth": t.n_depth} for t in tests],
            "settings": {"threads": s.threads, "n_batch": s.n_batch, "n_ubatch": s.n_ubatch, "flash_attn": s.flash_attn,
                         "type_k": s.type_k, "type_v": s.type_v, "poll": s.poll, "repack": repack},
            "reps": s.reps, "warmup": s.warmup, "use_mmap": s.use_mmap,
            "ttft": {"prompt": ttft_prompt, "reps": ttft_reps or s.reps} if ttft_prompt else None}


def _repacked_kernels_crashed(st: _Attempt) -> bool:
    """The child died in native code with repacked weights, so running without them is a safe retry.

    An illegal instruction with repacking on always counts (the AMX and repack kernels are the only
    code that needs more than the build's base ISA); a segmentation fault or bus error counts when the
    model had a repacked copy (llama.cpp's 'AMX model buffer' or 'CPU_REPACK model buffer') or had not
    finished loading (the copy is made while loading), and no finished test had run a prompt batch: on
    Intel Sapphire Rapids VMs llama.cpp's AMX matmul dies with SIGSEGV in the first batch of more than one
    token (a pp test, the context fill of a depth test, the TTFT prompt; generation alone runs;
    llama-cpp-python 0.3.36, KVM guest, 2026-12-02). Once a prompt batch has run through the repacked
    kernels, a later crash is something else, and the finished tests are kept instead.
    """
    if not (st.repack and st.crashed and st.exit and st.exit.native_crash):
        return False
    if st.exit.illegal_instruction:
        return True
    if st.batched & st.done.keys():
        return False
    return st.loaded is None or bool(extra_model_buffers(st.loaded.get("buffers") or {}))


def _failure_hint(st: _Attempt) -> str:
    if _repacked_kernels_crashed(st):
        return ("llama.cpp's repacked kernels (AMX or CPU_REPACK) may be what crashes on this CPU: rerun with --repack 0 "
                "(or drop --repack 1 to let slmplan fall back by itself)")
    if st.exit and st.exit.illegal_instruction:  # with repacking off
        return ("This llama.cpp build uses an instruction this CPU (or its hypervisor) does not allow; reinstall "
                "llama-cpp-python built on this machine: pip install --force-reinstall --no-cache-dir llama-cpp-python")
    if st.exit and st.exit.signal_name == "SIGKILL":
        return "Close other programs, or use a smaller --pp/--depth or a smaller quant"
    return "Check the model file with 'slmplan inspect', or rerun with fewer threads/smaller --pp"


def run_child_benchmark(model_arg: str, path: str, facts: ModelFacts | None, tests: list[TestSpec], settings: BenchSettings,
                  device: DeviceProfile, ttft_prompt: str | None = DEFAULT_TTFT_PROMPT, ttft_reps: int | None = None,
                  on_event: Callable[[Event], None] | None = None,
                  runtime: str = "llama.cpp") -> BenchRun:
    """Measure ``path`` in a child process, as llama-bench does, with the planner's prediction per test.

    ``settings.repack`` None means llama.cpp's default (extra buffer types on) with one automatic
    rerun with them off if the child dies in the repacked kernels (``_repacked_kernels_crashed``); True/False is what the user
    asked for and is never changed. ``runtime`` names a backend of ``slmplan.bench.backends``
    ('llama.cpp' for a GGUF file, 'onnx' for an ONNX Runtime GenAI folder; there ``facts`` is None
    and nothing is predicted). A crash before any test finished raises ``RuntimeFailure``; after
    that, the run comes back with ``failure`` and ``missing_tests`` set."""
    caps = backend_entry(runtime).capabilities
    quant = facts.file_quant if facts else None
    s = settings
    repack = bool(caps.repack and s.repack is not False)
    static = sysinfo.static_info()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    before = sysinfo.Snapshot.take(probe_s=0.5)
    st = _attempt(_spec(runtime, path, tests, s, repack, ttft_prompt, ttft_reps), on_event)
    warnings: list[str] = []
    attempts: list[BenchAttempt] = []
    reason = None
    if s.repack is None and _repacked_kernels_crashed(st):
        first, crashed = st.failure(), st
        attempts.append(BenchAttempt(repack=True, outcome=first, samples_kept=False))
        reason = (f"with repacking on (llama.cpp's CPU extra buffer types, llama-bench --repack 1) {first}; "
                  "measured again with repacking off (--repack 0)")
        warnings.append(f"not llama.cpp's default configuration: {reason}. The results describe --repack 0.")
        if on_event:
            on_event({"event": "retry", "reason": reason})
        repack = False
        st = _attempt(_spec(runtime, path, tests, s, repack, ttft_prompt, ttft_reps), on_event)
    s = s.model_copy(update={"repack": repack if caps.repack else None, "repack_reason": reason})
    failure = st.failure() if st.crashed else None
    if reason and st.end is not None:  # the run without repacking finished: the repacked kernels were the cause
        from slmplan.localdevice import record_repack_crash

        assert crashed.exit is not None  # _repacked_kernels_crashed checked it
        record_repack_crash(f"{crashed.exit.description.removeprefix('it ')} during {crashed.step}")
    if failure and not st.done:
        again = f" with repacking on ({first}) and with repacking off" if reason else ""
        raise RuntimeFailure(f"{runtime} benchmark failed{again}: {failure}", _failure_hint(st))
    attempts.append(BenchAttempt(repack=repack if caps.repack else None, outcome=failure or (
        "interrupted" if st.interrupted else "completed"), samples_kept=True))
    after = sysinfo.Snapshot.take()

    planner_pred = (make_predictor(facts, quant, device, s.threads, repack=s.repack is not False)
                    if facts and quant else None)
    results: list[TestResult] = []
    for t in tests:
        ns = st.samples.get(t.name, [])
        if not ns:
            continue
        done = st.done.get(t.name)
        tps = [(t.n_prompt + t.n_gen) / (x / 1e9) for x in ns]
        mean, std, med = _stats(tps)
        pred = planner_pred.tokens_per_s(t.n_prompt, t.n_gen, t.n_depth) if planner_pred else None
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
    tt = st.done.get("ttft")
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

    loaded = st.loaded or {}
    end = st.end
    mem = _memory_report(st.mem, loaded, end, results, facts, quant, repack, device.cpu_features)
    if not caps.reports_buffers:
        mem = mem.model_copy(update={"method": "ONNX Runtime does not report its buffers: process RSS from "
                                               "/proc/self/status between tests (the kernel tracks the peak)"})
    cont = sysinfo.contention(before, after, end["cpu_s"] if end else None)
    warnings += sysinfo.busy_warnings(before, after, cont)
    missing = [MissingTest(test=n, reason="interrupted (Ctrl-C)" if st.interrupted else (failure or "not run"))
               for n in [t.name for t in tests] + (["ttft"] if ttft_prompt else []) if n not in st.done]
    if failure:
        warnings.append(f"the run stopped early: {failure}; missing: {', '.join(m.test for m in missing)}")
    if any(r.threadpool_attached is False for r in results):
        warnings.append("could not attach a ggml threadpool as llama-bench does (ggml's default one was used)")
    system = {**static, **(loaded.get("system") or {}), **sysinfo.dynamic_info(before, after, cont)}
    prediction = None
    if planner_pred:
        prediction = Prediction(
            device=device.id, constants=planner_pred.label, bandwidth_gbs=planner_pred.hw.bandwidth_gbs,
            cpu_gflops=planner_pred.hw.cpu_gflops, cpu_kernels=planner_pred.hw.cpu_kernels,
            cpu_quant_gflops=(round(planner_pred.hw.cpu_gflops * planner_pred.hw.quant_peak_share, 1)
                              if planner_pred.hw.cpu_gflops and planner_pred.hw.quant_peak_share < 1 else None),
            method=(f"slmplan's estimator for the '{device.id}' profile, {device.calibration.method}; an estimate"
                    if planner_pred.calibrated is not None and device.calibration is not None else
                    f"slmplan's estimator for the '{device.id}' profile with the {planner_pred.label} "
                    f"speed constants, compute scaled to {s.threads} thread(s); an estimate"))
    elif not caps.predicted:
        warnings.append("no prediction: slmplan's speed model describes llama.cpp, not ONNX Runtime")
    run = BenchRun(
        runtime=runtime, model=model_arg, model_path=path, model_desc=loaded.get("desc", ""), quant=quant,
        n_params=loaded.get("n_params"), model_size_bytes=loaded.get("model_size"), threads=s.threads, settings=s,
        results=results, ttft=ttft, memory=mem, load_s=round(loaded["load_s"], 4) if loaded else None,
        system=system, warnings=warnings, interrupted=st.interrupted, started_at=started, failure=failure,
        missing_tests=missing, attempts=attempts,
        duration_s=round(after.wall - before.wall, 3), prediction=prediction,
    )
    return run


def _memory_report(mem: dict, loaded: dict, end: dict | None, results: list[TestResult], facts: ModelFacts | None,
                   quant: str | None, repack: bool, cpu_features: list[str] | None) -> MemoryReport:
    last = mem.get("last") or mem.get("loaded") or {}
    bufs: dict[str, float] = {k: int(v) for k, v in (loaded.get("buffers") or {}).items()}
    mapped = sum(v for k, v in bufs.items() if k.endswith("_Mapped model")) or None
    extra = extra_model_buffers(bufs)
    repacked = sum(extra.values()) if loaded else None
    # compared like with like: the extra buffers llama.cpp makes on this CPU with the repack setting that ran
    w_pred, extra_pred = weights_memory(facts, quant, repack, cpu_features) if facts and quant else (None, None)
    kvs = [r.buffers.kv_cache_bytes for r in results if r.buffers.kv_cache_bytes is not None]
    comps = [r.buffers.compute_bytes for r in results if r.buffers.compute_bytes is not None]
    return MemoryReport(
        peak_rss_bytes=last.get("peak_rss_bytes"), rss_before_load_bytes=(mem.get("start") or {}).get("rss_bytes"),
        rss_after_load_bytes=(mem.get("loaded") or {}).get("rss_bytes"), rss_anon_bytes=last.get("rss_anon_bytes"),
        rss_file_bytes=last.get("rss_file_bytes"), swap_bytes=last.get("swap_bytes"),
        major_faults=end.get("major_faults") if end else None, weights_mapped_bytes=mapped,
        weights_repacked_bytes=repacked, extra_buffers=extra, kv_cache_bytes_max=max(kvs) if kvs else None,
        compute_bytes_max=max(comps) if comps else None, llama_buffers=bufs, predicted_weights_bytes=w_pred,
        predicted_repack_bytes=extra_pred.total_bytes if extra_pred else None,
        predicted_extra_buffers=dict(extra_pred.bytes_by_type) if extra_pred else {},
        weights_ratio=_ratio(mapped, w_pred))
