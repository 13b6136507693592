"""System information for a benchmark result, and whether the machine was quiet enough to trust it.

Snapshots are taken before and after the run (never during it). Contention is measured, not guessed:
CPU time the whole machine spent busy during the run, minus what the benchmark itself used, is what
other processes took; hypervisor steal time is reported too.
"""

from __future__ import annotations

import glob
import os
import platform
import sys
import time
from dataclasses import dataclass

import psutil

from slmplan.fileio import package_versions
from slmplan.localdevice import cgroup_memory_limit, cpu_info

BUSY_BEFORE_FRACTION = 0.25  # share of all CPU time in use during the half second before the run
BUSY_OTHERS_FRACTION = 0.10  # share of all CPU time other processes used during the run
BUSY_STEAL_FRACTION = 0.05


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def _freqs_mhz() -> dict | None:
    try:
        per = psutil.cpu_freq(percpu=True)
    except (OSError, NotImplementedError, FileNotFoundError):
        per = None
    if not per:
        return None
    cur = [round(f.current) for f in per]
    return {"current_min": min(cur), "current_max": max(cur), "max": round(per[0].max) if per[0].max else None}


def _throttle_counts() -> int | None:
    """Sum of the kernel's thermal throttle counters (x86 Linux), None when not readable."""
    files = glob.glob("/sys/devices/system/cpu/cpu*/thermal_throttle/*_throttle_count")
    nums = [int(v) for f in files if (v := _read(f)) and v.isdigit()]
    return sum(nums) if nums else None


def _versions() -> dict:
    return {"python": platform.python_version(),
            **package_versions(("llama_cpp_python", "onnxruntime", "onnxruntime-genai", "slmplan"))}


@dataclass
class Snapshot:
    wall: float
    cpu_times: object
    self_cpu: float
    loadavg: tuple[float, float, float] | None
    freq: dict | None
    throttle: int | None
    available: int
    busy_before: float | None = None

    @classmethod
    def take(cls, probe_s: float = 0.0) -> Snapshot:
        """``probe_s`` > 0 first measures how busy the machine is over that window (the load average
        lags by a minute, so it would still count a benchmark that just finished)."""
        busy = None
        if probe_s > 0:
            pct = psutil.cpu_percent(interval=probe_s)
            busy = pct / 100.0
        try:
            la = os.getloadavg()
        except OSError:
            la = None
        t = os.times()
        return cls(time.monotonic(), psutil.cpu_times(), t.user + t.system, la, _freqs_mhz(),
                   _throttle_counts(), psutil.virtual_memory().available, busy)


def static_info() -> dict:
    cpu = cpu_info()
    vm = psutil.virtual_memory()
    limit, _ = cgroup_memory_limit()
    gov = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    cpu_max = _read("/sys/fs/cgroup/cpu.max")
    return {
        "cpu_model": cpu["model"], "cpu_features": cpu["features"],
        "cpu_vendor": cpu.get("vendor"), "cpu_family": cpu.get("family"), "cpu_model_number": cpu.get("model_number"),
        "physical_cores": cpu["physical_cores"], "logical_cores": cpu["logical_cores"],
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cgroup_cpu_max": cpu_max, "cpu_governor": gov,
        "ram_total_bytes": vm.total, "cgroup_memory_limit_bytes": limit,
        "os": platform.platform(), "machine": platform.machine(), "versions": _versions(),
        "python_executable": sys.executable,
    }


def contention(before: Snapshot, after: Snapshot, child_cpu_s: float | None) -> dict:
    """How much of the machine others used during the run (fractions of all logical CPUs)."""
    wall = max(after.wall - before.wall, 1e-9)
    n = psutil.cpu_count() or 1

    def busy(ct) -> float:
        idle = getattr(ct, "idle", 0.0) + getattr(ct, "iowait", 0.0)
        return sum(ct) - idle - getattr(ct, "guest", 0.0) - getattr(ct, "guest_nice", 0.0)

    total_busy = busy(after.cpu_times) - busy(before.cpu_times)
    steal = getattr(after.cpu_times, "steal", 0.0) - getattr(before.cpu_times, "steal", 0.0)
    ours = (after.self_cpu - before.self_cpu) + (child_cpu_s or 0.0)
    others = max(total_busy - steal - ours, 0.0) if child_cpu_s is not None else None
    return {
        "wall_s": round(wall, 3),
        "benchmark_cpu_s": round(ours, 3),
        "others_cpu_fraction": round(others / (wall * n), 4) if others is not None else None,
        "steal_fraction": round(steal / (wall * n), 4),
    }


def busy_warnings(before: Snapshot, after: Snapshot, cont: dict) -> list[str]:
    w = []
    if before.busy_before is not None and before.busy_before > BUSY_BEFORE_FRACTION:
        w.append(f"the machine was busy just before the run ({before.busy_before:.0%} of the CPU in use): "
                 "results are not trustworthy; rerun on a quiet machine")
    o = cont.get("others_cpu_fraction")
    if o is not None and o > BUSY_OTHERS_FRACTION:
        w.append(f"other processes used {o:.0%} of the CPU during the run: results are not trustworthy; "
                 "rerun on a quiet machine")
    if cont.get("steal_fraction", 0) > BUSY_STEAL_FRACTION:
        w.append(f"the hypervisor stole {cont['steal_fraction']:.0%} of CPU time during the run: results "
                 "are not trustworthy")
    if before.throttle is not None and after.throttle is not None and after.throttle > before.throttle:
        w.append(f"the CPU was thermally throttled {after.throttle - before.throttle} times during the run")
    return w


def dynamic_info(before: Snapshot, after: Snapshot, cont: dict) -> dict:
    return {
        "loadavg_before": [round(x, 2) for x in before.loadavg] if before.loadavg else None,
        "loadavg_after": [round(x, 2) for x in after.loadavg] if after.loadavg else None,
        "cpu_freq_mhz_before": before.freq, "cpu_freq_mhz_after": after.freq,
        "thermal_throttle_count_before": before.throttle, "thermal_throttle_count_after": after.throttle,
        "ram_available_bytes_before": before.available,
        "cpu_busy_fraction_before": before.busy_before,
        "contention": cont,
        "readability": {k: "not readable on this system" for k, v in
                        (("cpu_freq", before.freq), ("thermal_throttle", before.throttle), ("loadavg", before.loadavg))
                        if v is None},
    }
