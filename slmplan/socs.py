"""The chip table (data/socs.yaml): fill what a device profile with ``soc:`` leaves out.

Keys written in the profile always win. The chip is the table entry whose name or alias occurs in
the profile's ``soc`` text as whole words (the longest such name), so free text such as
``Broadcom BCM2712 (4x Cortex-A76 @2.4 GHz)`` finds ``Broadcom BCM2712``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from slmplan.errors import DeviceError

SOCS_FILE = Path(__file__).parent / "data" / "socs.yaml"
# FP32 FLOPs per cycle of llama.cpp's quantized x86 dot products: two 256-bit FMA-wide pipes (its AVX-512 builds
# run the same 256-bit code for quantized types: ggml-cpu/arch/x86/quants.c has no 512-bit path)
X86_QUANT_FLOPS_PER_CYCLE = 32


@dataclass(frozen=True)
class Cluster:
    cores: int
    ghz: float
    flops_per_cycle: int
    efficiency: bool = False


@dataclass(frozen=True)
class Chip:
    name: str
    aliases: tuple[str, ...]
    backend: str | None
    isa: str | None
    cpu_features: tuple[str, ...]
    cpu: tuple[Cluster, ...]
    gpu_tflops: float | None
    memory_bandwidth_gbs: float | None
    llc_mb: float | None
    npu_tops: float | None
    npu_runtimes: tuple[str, ...]
    source: str

    @property
    def cpu_cores(self) -> int | None:
        return sum(c.cores for c in self.cpu) or None

    @property
    def performance_cores(self) -> int | None:
        return sum(c.cores for c in self.cpu if not c.efficiency) or None

    @property
    def cpu_gflops(self) -> float | None:
        """Peak FP32 of the performance cores (the ones llama.cpp's threads should run on)."""
        g = sum(c.cores * c.ghz * c.flops_per_cycle for c in self.cpu if not c.efficiency)
        return round(g, 1) or None

    @property
    def cpu_quant_gflops(self) -> float | None:
        """x86 cores with 512-bit FMA units (64 FP32 FLOPs/cycle) at the 256-bit width of llama.cpp's quantized
        dot products (32); None where that is the full peak (every other chip)."""
        if self.isa != "x86_64" or not any(c.flops_per_cycle > X86_QUANT_FLOPS_PER_CYCLE
                                           for c in self.cpu if not c.efficiency):
            return None
        g = sum(c.cores * c.ghz * min(c.flops_per_cycle, X86_QUANT_FLOPS_PER_CYCLE) for c in self.cpu if not c.efficiency)
        return round(g, 1) or None

    def profile_values(self) -> dict:
        """Profile keys this chip can supply, with the text for ``sources``."""
        vals = {"backend": self.backend, "memory_bandwidth_gbs": self.memory_bandwidth_gbs,
                "cpu_cores": self.cpu_cores, "threads": self.performance_cores, "cpu_gflops": self.cpu_gflops,
                "cpu_quant_gflops": self.cpu_quant_gflops,
                "gpu_tflops": self.gpu_tflops, "npu_tops": self.npu_tops, "cpu_isa": self.isa,
                "cpu_features": list(self.cpu_features) or None, "llc_mb": self.llc_mb,
                "npu_runtimes": list(self.npu_runtimes)}
        return {k: v for k, v in vals.items() if v is not None}


def _norm(s: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9.\-]+", " ", s.lower()).split())


@lru_cache(maxsize=1)
def chips() -> tuple[Chip, ...]:
    from slmplan.yamlio import read_yaml

    data = read_yaml(SOCS_FILE, "chip table", DeviceError)
    out = []
    for d in data["socs"]:
        out.append(Chip(
            name=d["name"], aliases=tuple(d.get("aliases") or ()), backend=d.get("backend"), isa=d.get("isa"),
            cpu_features=tuple(d.get("cpu_features") or ()),
            cpu=tuple(Cluster(**c) for c in d.get("cpu") or ()), gpu_tflops=d.get("gpu_tflops"),
            memory_bandwidth_gbs=d.get("memory_bandwidth_gbs"), llc_mb=d.get("llc_mb"), npu_tops=d.get("npu_tops"),
            npu_runtimes=tuple(d.get("npu_runtimes") or ()), source=d["source"]))
    return tuple(out)


def find_chip(soc: str) -> Chip | None:
    text = f" {_norm(soc)} "
    best: tuple[int, Chip] | None = None
    for c in chips():
        for n in (c.name, *c.aliases):
            nn = _norm(n)
            if f" {nn} " in text and (best is None or len(nn) > best[0]):
                best = (len(nn), c)
    return best[1] if best else None


def get_chip(soc: str) -> Chip:
    c = find_chip(soc)
    if c is None:
        names = [c.name for c in chips()]
        close = difflib.get_close_matches(soc, names, n=3, cutoff=0.4)
        hint = (f"Did you mean: {', '.join(close)}?" if close else "Remove 'soc' or name a chip of slmplan/data/socs.yaml")
        raise DeviceError(f"unknown soc '{soc}' (not in the chip table)", hint + " Or write the device's numbers in the profile")
    return c


def fill_from_soc(data: dict) -> dict:
    """The profile mapping with the chip's values added for keys it does not set (a new dict).

    Without a ``soc`` key, a chip named in the profile's ``name`` (``Mac mini (Apple M4 Pro)``) is used
    the same way; a name that names no chip is no error."""
    if not isinstance(data, dict):
        return data
    soc, name = data.get("soc"), data.get("name")
    chip: Chip | None
    if isinstance(soc, str) and soc.strip():
        chip, how = get_chip(soc), "chip table"
    elif isinstance(name, str) and (chip := find_chip(name)) is not None:
        how = "chip table, chip named in the profile's name"
    else:
        return data
    out = dict(data)
    sources = dict(out.get("sources") or {})
    for k, v in chip.profile_values().items():
        if k == "cpu_quant_gflops" and "cpu_gflops" in data:
            continue  # the chip's narrower peak belongs to the chip's own cpu_gflops, not to the profile's
        if k not in out:
            out[k] = v
            sources.setdefault(k, f"{how} ({chip.name}): {chip.source}")
    if sources:
        out["sources"] = sources
    return out
