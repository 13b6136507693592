"""The benchmark's child process (spec as JSON on stdin; started by ``slmplan.bench.runner`` so that
it imports exactly the parent's copy of slmplan).

It loads one model, runs the tests and reports each event as one JSON line on the protocol pipe
(the original stdout; C-level stdout is redirected to stderr so nothing from llama.cpp can corrupt
the protocol). Memory is read from /proc/self/status between tests, never during a timed run: the
kernel keeps the peak (VmHWM) itself, so no sampling thread competes with the benchmark.
SIGINT is ignored here: the parent owns Ctrl-C and stops this process.
"""

from __future__ import annotations

import faulthandler
import json
import os
import resource
import signal
import sys
import time
from collections.abc import Callable

from slmplan.bench.protocol import Phase, WorkerSpec


def proc_memory() -> dict:
    """RSS figures of this process in bytes (Linux /proc; psutil elsewhere)."""
    keys = {"VmHWM": "peak_rss_bytes", "VmRSS": "rss_bytes", "RssAnon": "rss_anon_bytes",
            "RssFile": "rss_file_bytes", "RssShmem": "rss_shmem_bytes", "VmSwap": "swap_bytes"}
    out: dict[str, int] = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                k, _, v = line.partition(":")
                if k in keys:
                    out[keys[k]] = int(v.split()[0]) * 1024
    except OSError:
        import psutil

        mi = psutil.Process().memory_info()
        out = {"rss_bytes": mi.rss}
        ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["peak_rss_bytes"] = ru if sys.platform == "darwin" else ru * 1024
    return out


def main() -> int:
    # A fatal signal in native code (SIGILL, SIGSEGV, ...) dumps the Python stack to stderr first,
    # so the parent can say where it happened; the signal itself still ends the process.
    faulthandler.enable()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed by C code goes to stderr

    def emit(**ev) -> None:
        proto.write(json.dumps(ev) + "\n")
        proto.flush()

    spec: WorkerSpec = json.loads(sys.stdin.read())
    try:
        from slmplan.bench.backends import load_backend_class

        emit(event="memory", stage="start", memory=proc_memory())
        emit(event="step", step="loading")
        cls = load_backend_class(spec["runtime"])
        s = spec["settings"]
        runner = cls(spec["model"], s, use_mmap=spec.get("use_mmap", True))
        emit(event="loaded", load_s=runner.load_s, desc=runner.desc, model_size=runner.model_size,
             n_params=runner.n_params, buffers=runner.load_buffers, memory=proc_memory(), system=runner.system_info())
        def on_sample(name: str) -> Callable[[int], None]:
            return lambda ns: emit(event="sample", test=name, ns=ns)

        def on_phase(name: str) -> Callable[[Phase], None]:
            return lambda ph: emit(event="step", step=ph, test=name)

        for t in spec["tests"]:
            emit(event="start", test=t["name"])
            res = runner.run_test(t["n_prompt"], t["n_gen"], t["n_depth"], spec["reps"], spec["warmup"], s,
                                  on_sample=on_sample(t["name"]), on_phase=on_phase(t["name"]))
            emit(event="test_done", test=t["name"], result=res, memory=proc_memory())
        if spec.get("ttft"):
            tt = spec["ttft"]
            assert tt is not None
            emit(event="start", test="ttft")
            tres = runner.ttft(tt["prompt"], tt["reps"], spec["warmup"], s, on_sample=on_sample("ttft"))
            emit(event="test_done", test="ttft", result=tres, memory=proc_memory())
        emit(event="step", step="closing")
        runner.close()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        emit(event="done", memory=proc_memory(), cpu_s=ru.ru_utime + ru.ru_stime,
             minor_faults=ru.ru_minflt, major_faults=ru.ru_majflt, end=time.time())
        return 0
    except Exception as e:  # reported to the parent, which turns it into a one-line error
        emit(event="error", message=f"{type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
