"""Detect the local machine as a DeviceProfile: RAM, cgroup limit, CPU features, memory bandwidth.

Bandwidth is measured (a large numpy copy, best of a few runs; single-threaded, so a lower bound
on machines with many memory channels) and cached per machine in the user cache directory, so
only the first call pays the ~0.5 s.
"""

from __future__ import annotations

import json
import os
import platform
import time
from functools import lru_cache
from pathlib import Path

import psutil

from slmplan.errors import BadInputError, env_float
from slmplan.fileio import read_state, set_aside
from slmplan.schema.device import DeviceProfile
from slmplan.socs import X86_QUANT_FLOPS_PER_CYCLE

GIB = 1 << 30


def cache_dir() -> Path:
    base = os.environ.get("SLMPLAN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "slmplan")
    p = Path(base).expanduser().absolute()  # absolute: a relative one would move with the working folder
    try:
        odd = p.exists() and not p.is_dir()
    except OSError as e:  # e.g. a name too long for a path
        raise BadInputError(f"the slmplan cache folder {p} cannot be used: {e.strerror}",
                            "Set SLMPLAN_CACHE_DIR to a folder slmplan may write, or unset it") from None
    if odd:
        raise BadInputError(f"the slmplan cache folder {p} is not a folder (SLMPLAN_CACHE_DIR / XDG_CACHE_HOME)",
                            "Set SLMPLAN_CACHE_DIR to a folder slmplan may write, or unset it")
    return p


def env_bandwidth_gbs() -> float | None:
    """SLMPLAN_BANDWIDTH_GBS, checked: a finite bandwidth a machine can have."""
    return env_float("SLMPLAN_BANDWIDTH_GBS", 0.1, 20000, "a memory bandwidth in GB/s",
                     "Set it to a number between 0.1 and 20000, e.g. 20, or unset it to measure")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def cgroup_memory_limit() -> tuple[int | None, int | None]:
    """(limit, current usage) of this process's cgroup, or (None, None)."""
    v2 = _read("/sys/fs/cgroup/memory.max")
    if v2 is not None:
        limit = None if v2 == "max" else int(v2)
        cur = _read("/sys/fs/cgroup/memory.current")
        return limit, int(cur) if cur and cur.isdigit() else None
    v1 = _read("/sys/fs/cgroup/memory/memory.limit_in_bytes")
    if v1 and v1.isdigit() and int(v1) < 1 << 60:
        cur = _read("/sys/fs/cgroup/memory/memory.usage_in_bytes")
        return int(v1), int(cur) if cur and cur.isdigit() else None
    return None, None


def cpu_info() -> dict:
    model, flags = platform.processor() or platform.machine(), set[str]()
    vendor, family, number = None, None, None
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key in ("model name", "Model", "Hardware") and val:
            model = val
        elif key in ("flags", "Features") and not flags:
            flags = set(val.split())
        elif key == "vendor_id" and vendor is None:
            vendor = val
        elif key == "cpu family" and family is None and val.isdigit():
            family = int(val)
        elif key == "model" and number is None and val.isdigit():
            number = int(val)
    wanted = ["avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni",
              "amx_int8", "asimd", "asimddp", "i8mm", "sve", "sve2", "fphp"]
    return {"model": model, "features": [f for f in wanted if f in flags],
            "vendor": vendor, "family": family, "model_number": number,
            "physical_cores": psutil.cpu_count(logical=False) or psutil.cpu_count() or 1,
            "logical_cores": psutil.cpu_count() or 1}


def flops_per_cycle(features: list[str], vendor: str | None = None, family: int | None = None,
                    model: int | None = None) -> int:
    """FP32 FLOPs per cycle and core: FMA units x width x 2. AVX-512 alone does not say the width of the
    units: AMD Zen 4 (family 25) and the mobile Zen 5 (family 26, Strix Point models 0x20-0x2f, Krackan
    Point 0x60-0x6f) run it on 256-bit units (32, as AVX2), Zen 5 desktop/server on 512-bit (64); Intel's
    AVX-512 client cores (Ice Lake, Tiger Lake, Rocket Lake) have one 512-bit FMA unit (32), most Xeons two
    (64; some Silver/Bronze and Gold 5xxx parts have one, which /proc/cpuinfo does not show); Zen 1 (family 23, models before 0x30) has 128-bit FMA units (16)."""
    return flops_per_cycle_why(features, vendor, family, model)[0]


def flops_per_cycle_why(features: list[str], vendor: str | None = None, family: int | None = None,
                        model: int | None = None) -> tuple[int, str]:
    amd = vendor == "AuthenticAMD"
    if amd and family == 23 and model is not None and model < 0x30:
        return 16, "AMD Zen 1: 2x128-bit FMA"
    if amd and family == 25:
        return 32, "AMD Zen 3/Zen 4: 2x256-bit FMA; Zen 4 runs AVX-512 on them"
    if amd and family == 26 and model is not None and (0x20 <= model <= 0x2F or 0x60 <= model <= 0x6F):
        return 32, "AMD Zen 5 mobile: AVX-512 on 256-bit units"
    if vendor == "GenuineIntel" and family == 6 and model in (0x7D, 0x7E, 0x8C, 0x8D, 0xA7) and "avx512f" in features:
        return 32, "Intel Ice Lake/Tiger Lake/Rocket Lake client: one 512-bit FMA unit"
    if "avx512f" in features:
        return 64, "2x512-bit FMA (AVX-512" + (", AMD Zen 5)" if amd and family == 26 else ")")
    if "avx2" in features and "fma" in features:
        return 32, "2x256-bit FMA (AVX2)"
    if "asimd" in features:
        return 16, "2x128-bit NEON FMA"
    return 8, "no vector FMA detected"


def local_isa(machine: str | None = None) -> str | None:
    """This machine's instruction set as device profiles name it (x86_64, arm64, riscv64); None if other."""
    m = (machine if machine is not None else platform.machine()).lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64", "riscv64": "riscv64"}.get(m)


def cpu_ghz() -> float | None:
    try:
        f = psutil.cpu_freq()
    except (OSError, NotImplementedError, FileNotFoundError):
        f = None
    if f and (f.max or f.current):
        return (f.max or f.current) / 1000
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) / 1000
    return None


def measure_bandwidth_gbs(size_bytes: int = 256 << 20, repeats: int = 5) -> float:
    """Copy bandwidth (read + write bytes / time), best of ``repeats`` runs."""
    import numpy as np

    src = np.ones(size_bytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = float("inf")
    np.copyto(dst, src)  # warm-up: fault the pages in
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t)
    return 2 * size_bytes / best / 1e9


def _save_state(path: Path, data: dict) -> None:
    """Write one of slmplan's cache files atomically; a cache that cannot be written only costs redoing the work."""
    try:
        from slmplan.fileio import write_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(data))
    except (OSError, BadInputError):
        pass


def _bandwidth_cached(key: str) -> tuple[float, str]:
    path = cache_dir() / "local_bandwidth.json"
    raw, data = read_state(path), None
    if raw is not None:
        try:
            data = json.loads(raw)
        except ValueError as e:
            set_aside(path, f"not JSON: {type(e).__name__}")
    if data is not None:
        gbs = data.get("gbs") if isinstance(data, dict) else None
        # isinstance narrows for mypy; bool is an int subclass and no bandwidth
        if not (isinstance(gbs, (int, float)) and not isinstance(gbs, bool) and 0.1 <= gbs <= 20000 and isinstance(data.get("when"), str)):
            set_aside(path, "not a bandwidth measurement")
        elif data.get("key") == key:
            return float(gbs), f"measured {data['when'][:40]}: numpy copy, single thread (cached)"
    gbs = measure_bandwidth_gbs()
    when = time.strftime("%Y-%m-%d")
    _save_state(path, {"key": key, "gbs": gbs, "when": when})
    return gbs, f"measured {when}: numpy copy, single thread"


# llama.cpp's system-info names -> the feature names slmplan uses (as /proc/cpuinfo spells them)
_LLAMA_FEATURES = {"AVX2": "avx2", "AVX512": "avx512f", "AVX512_VNNI": "avx512_vnni", "AMX_INT8": "amx_int8",
                   "FMA": "fma", "AVX": "avx", "NEON": "asimd", "DOTPROD": "asimddp", "MATMUL_INT8": "i8mm",
                   "SVE": "sve", "REPACK": "repack"}
_PROBE = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode('utf-8', 'replace'))"


def parse_llama_system_info(info: str) -> list[str]:
    """Feature names from llama.cpp's ``llama_print_system_info`` ("AVX2 = 1 | REPACK = 1 | ...")."""
    import re

    on = set(re.findall(r"(\w+) = 1", info))
    return sorted(_LLAMA_FEATURES[k] for k in on if k in _LLAMA_FEATURES)


def llama_cpp_features(cpu_model: str) -> tuple[list[str] | None, str]:
    """What the installed llama.cpp was compiled to use on this CPU (it decides the repacked buffers),
    read once in a child process (a native import must not take this process down) and cached."""
    import importlib.metadata
    import subprocess
    import sys

    try:
        version = importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        return None, "llama-cpp-python is not installed"
    key = f"{version}|{cpu_model}"
    path = cache_dir() / "llama_cpp_features.json"
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("key") == key and isinstance(data.get("features"), list):
            return [str(x) for x in data["features"]], f"llama.cpp {version} system info (cached)"
    except (OSError, ValueError):
        pass
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None, "llama.cpp's system info could not be read"
    if r.returncode != 0:
        return None, f"llama.cpp's system info could not be read (exit code {r.returncode})"
    feats = parse_llama_system_info(r.stdout)
    _save_state(path, {"key": key, "features": feats})
    return feats, f"llama.cpp {version} system info"


REPACK_CRASH_FILE = "repack_crash.json"


@lru_cache(maxsize=1)
def _llama_cpu_key() -> str | None:
    """Which llama.cpp build on which CPU a crash record is about (None: llama-cpp-python not installed)."""
    import importlib.metadata

    try:
        version = importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        return None
    return f"{version}|{cpu_info()['model']}"


def record_repack_crash(what: str) -> None:
    """Remember that llama.cpp crashed here with its repacked CPU kernels on and ran with them off
    (``slmplan bench``'s fallback), so plans for this machine can say so. Best effort."""
    key = _llama_cpu_key()
    if key is not None:
        _save_state(cache_dir() / REPACK_CRASH_FILE, {"key": key, "what": what[:400], "when": time.strftime("%Y-%m-%d")})


def repack_crash() -> dict | None:
    """The recorded crash of llama.cpp's repacked kernels for the installed llama.cpp on this CPU, or None
    (none recorded, or recorded for another build or CPU: an upgrade may have fixed it)."""
    raw = read_state(cache_dir() / REPACK_CRASH_FILE)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not (isinstance(data, dict) and isinstance(data.get("what"), str) and isinstance(data.get("when"), str)):
        return None
    return data if data.get("key") == _llama_cpu_key() else None


def local_cpu_features(cpu: dict) -> tuple[list[str], str]:
    """Features for llama.cpp's extra-buffer rules: what llama.cpp was built with (when installed),
    else what the CPU reports (assuming a native build)."""
    feats, src = llama_cpp_features(cpu["model"])
    if feats is not None:
        if "repack" not in feats:  # built without GGML_CPU_REPACK: only AMX can take weights
            feats = [f for f in feats if f == "amx_int8" or f == "avx512_vnni"]
        return [f for f in feats if f != "repack"], src
    return list(cpu["features"]), "/proc/cpuinfo flags (assuming llama.cpp built for this CPU)"


@lru_cache(maxsize=1)
def detect_local() -> DeviceProfile:
    vm = psutil.virtual_memory()
    limit, used = cgroup_memory_limit()
    ram = vm.total if limit is None else min(vm.total, limit)
    avail = vm.available
    sources = {"ram_gb": "psutil.virtual_memory().total" + ("; capped by the cgroup memory limit" if limit and limit < vm.total else "")}
    if limit is not None and used is not None:
        avail = min(avail, max(limit - used, 0))
    budget = max(min(avail, ram) * 0.9, 0.1 * GIB)
    sources["memory_budget_gb"] = "90% of the memory available now (psutil available, cgroup limit minus usage)"
    cpu = cpu_info()
    key = f"{cpu['model']}|{ram}|{cpu['logical_cores']}"
    env_bw = env_bandwidth_gbs()
    if env_bw is not None:
        bw, bw_src = env_bw, "SLMPLAN_BANDWIDTH_GBS environment variable"
    else:
        bw, bw_src = _bandwidth_cached(key)
    sources["memory_bandwidth_gbs"] = bw_src
    ghz = cpu_ghz()
    threads = cpu["physical_cores"]
    gflops = quant_gflops = None
    isa = local_isa()
    if ghz:
        fpc, why = flops_per_cycle_why(cpu["features"], cpu.get("vendor"), cpu.get("family"), cpu.get("model_number"))
        gflops = round(threads * ghz * fpc, 1)
        sources["cpu_gflops"] = f"estimate: {threads} cores x {ghz:.2f} GHz x {fpc} FP32 FLOPs/cycle ({why})"
        if isa == "x86_64" and fpc > X86_QUANT_FLOPS_PER_CYCLE:
            quant_gflops = round(threads * ghz * X86_QUANT_FLOPS_PER_CYCLE, 1)
            sources["cpu_quant_gflops"] = (f"estimate: {threads} cores x {ghz:.2f} GHz x {X86_QUANT_FLOPS_PER_CYCLE} "
                                           "FLOPs/cycle: llama.cpp's quantized x86 dot products are 256 bits wide")
    features, sources["cpu_features"] = local_cpu_features(cpu)
    sources["power_w"] = "unknown: no power sensor read; energy figures need a power_w (use a YAML profile)"
    return DeviceProfile(
        id="local", name=f"This machine ({cpu['model']})", kind="server" if not ghz else "desktop",
        ram_gb=round(ram / GIB, 2), memory_budget_gb=round(min(budget, ram) / GIB, 2),
        memory_bandwidth_gbs=round(bw, 1), cpu_cores=cpu["logical_cores"], backend="cpu",
        cpu_gflops=gflops, cpu_quant_gflops=quant_gflops, threads=threads, soc=cpu["model"], cpu_isa=isa,
        cpu_features=features, sources=sources,
        notes=f"{platform.system()} {platform.release()} {platform.machine()}; CPU features: {' '.join(cpu['features']) or 'none detected'}",
    )
