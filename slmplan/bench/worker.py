"""The benchmark's child process: ``python -m slmplan.bench.worker`` (spec as JSON on stdin).

It loads one model, runs the tests and reports each event as one JSON line on the protocol pipe
(the original stdout; C-level stdout is redirected to stderr so nothing from llama.cpp can corrupt
the protocol). Memory is read from /proc/self/status between tests, never during a timed run: the
kernel keeps the peak (VmHWM) itself, so no sampling thread competes with the benchmark.
SIGINT is ignored here: the parent owns Ctrl-C and stops this process.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time


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
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed by C code goes to stderr

    def emit(**ev) -> None:
        proto.write(json.dumps(ev) + "\n")
        proto.flush()

    spec = json.loads(sys.stdin.read())
    try:
        if spec.get("runtime") == "onnx":
            from slmplan.bench import onnxrt

            emit(event="memory", stage="start", memory=proc_memory())
            runner = onnxrt.Runner(spec["model"], spec["settings"]["threads"])
            emit(event="loaded", load_s=runner.load_s, desc=runner.desc, model_size=runner.model_size,
                 n_params=runner.n_params, buffers={}, memory=proc_memory(), system=onnxrt.system_info())
        else:
            from slmplan.bench import llamacpp

            log = llamacpp.LogCapture()
            emit(event="memory", stage="start", memory=proc_memory())
            runner = llamacpp.Runner(spec["model"], log, use_mmap=spec.get("use_mmap", True))
            emit(event="loaded", load_s=runner.load_s, desc=runner.desc, model_size=runner.model_size,
                 n_params=runner.n_params, buffers=llamacpp.parse_buffers(runner.model_log),
                 memory=proc_memory(), system=llamacpp.system_info())
        s = spec["settings"]
        for t in spec["tests"]:
            emit(event="start", test=t["name"])
            res = runner.run_test(t["n_prompt"], t["n_gen"], t["n_depth"], spec["reps"], spec["warmup"], s,
                                  on_sample=lambda ns, name=t["name"]: emit(event="sample", test=name, ns=ns))
            emit(event="test_done", test=t["name"], result=res, memory=proc_memory())
        if spec.get("ttft"):
            emit(event="start", test="ttft")
            res = runner.ttft(spec["ttft"]["prompt"], spec["ttft"]["reps"], spec["warmup"], s,
                              on_sample=lambda ns: emit(event="sample", test="ttft", ns=ns))
            emit(event="test_done", test="ttft", result=res, memory=proc_memory())
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
