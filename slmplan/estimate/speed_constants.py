"""The speed model's fitted constants as typed objects; ``data/speed_model.json`` is their storage.

One ``ClassConstants`` per backend class (``cpu``, ``gpu``); ``SpeedConstants`` holds them with the
fit's description and validation. ``from_dict``/``to_dict`` round-trip the JSON (keys this code does
not know are kept in ``extra``, so a newer file or a local calibration loses nothing).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path

MODEL_FILE = Path(__file__).resolve().parent.parent / "data" / "speed_model.json"
BACKEND_CLASS = {"cpu": "cpu", "metal": "metal", "cuda": "gpu", "vulkan": "gpu"}


@dataclass(frozen=True)
class ClassConstants:
    """Constants of one backend class (see ``slmplan.estimate.speed`` for the formulas)."""

    eta_bw: float  # achieved share of the memory bandwidth while decoding
    c_layer_s: float  # fixed cost per layer per token (kernel launches, thread barriers)
    c_token_s: float = 0.0  # fixed cost per token (graph build, sampling, scheduling)
    # CUDA on GPUs older than Ampere (no CUDA graphs: every kernel launched on its own): the fixed cost per
    # layer unit there; None = the same as c_layer_s (slmplan.estimate.cuda_arch)
    c_layer_no_graphs_s: float | None = None
    # Metal: the fixed cost per layer unit of llama.cpp builds before 2025 (a year boundary, roughly before the
    # Metal backend's op fusion and concurrent dispatch of 2025), fitted so that those rows do not pull
    # c_layer_s, the cost of current builds; not used in predictions (the planner predicts current llama.cpp);
    # None = not split
    c_layer_old_builds_s: float | None = None
    kappa: float | None = None  # achieved share of peak FLOPS in compute-bound decode (CPU)
    eff_pp: float | None = None  # achieved share of peak FLOPS in prefill
    # CPU decode: throughput factor of the quantized weights' dot products per family of llama.cpp's CPU kernels
    # (speed.cpu_kernels_of: "x86-avx2"), fitted with the class's other decode constants; floats, attention and
    # families not listed use 1
    kappa_by_kernels: dict[str, float] = field(default_factory=dict)
    decode_ratio_low: float = 1.0  # measured/predicted quantiles on held-out devices
    decode_ratio_high: float = 1.0
    # the same quantiles per backend of the class where it has enough held-out rows of its own
    # (gpu: CUDA and Vulkan differ); backends not listed use decode_ratio_low/high
    decode_ratio_by_backend: dict[str, list[float]] = field(default_factory=dict)
    prefill_ratio_low: float = 1.0
    prefill_ratio_high: float = 1.0
    # relative kernel throughput per GGML type (1.0 = the reference types F16/Q8_0 for decode,
    # Q8_0 for prefill); types not listed use 1.0
    quant_decode: dict[str, float] = field(default_factory=dict)
    quant_prefill: dict[str, float] = field(default_factory=dict)
    # CPU decode: relative throughput per GGML type in the compute term (t_cpu), Q8_0 = 1 (fitted by type
    # group: 16/32-bit floats, and the types below 8 bits); empty = quant_decode's values
    quant_cpu: dict[str, float] = field(default_factory=dict)
    # CPU: per-layer fixed cost grows with the thread count (every op ends in a barrier of all threads):
    # c_layer x (threads / 4) ** thread_exp; 0 = independent of threads
    thread_exp: float = 0.0
    # CPU: and with the speed of one core: x (50 / per-core peak GFLOPS) ** core_exp; 0 = independent of it,
    # 1 = the fixed work is a number of cycles
    core_exp: float = 0.0
    # CPU decode: share of the shorter of memory and compute time hidden under the longer one:
    # t = max(t_mem, t_cpu) + (1 - overlap) x min(t_mem, t_cpu); 1 = a roofline (full overlap), 0 = serial
    overlap: float = 1.0
    # CPU prefill: throughput multiplier of the types llama.cpp repacks (Q4_0, Q4_K, IQ4_NL) when it does
    repack_prefill: float = 1.0
    # the same per repacked type, from the rows where that type holds most of the weights; types not listed use repack_prefill
    repack_prefill_by_type: dict[str, float] = field(default_factory=dict)
    # CPU prefill: throughput multiplier of the types llamafile's tinyBLAS kernels handle (in llama.cpp since 2024-04)
    sgemm_prefill: float = 1.0
    n_rows: int = 0
    # a device calibrated on one or two model sizes: how the planner's held-out decode deviations split into the
    # device's and the model's (estimate/shrink.py, fitted by fit.device_prior_of); {} = the measured ratio is
    # carried over whole
    device_prior: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> ClassConstants:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)

    def decode_bounds(self, backend: str) -> tuple[float, float]:
        """measured/predicted decode low and high for ``backend`` (10th/90th percentile on held-out devices)."""
        lo_hi = self.decode_ratio_by_backend.get(backend)
        return (lo_hi[0], lo_hi[1]) if lo_hi else (self.decode_ratio_low, self.decode_ratio_high)

    def scaled(self, decode: float = 1.0, prefill: float = 1.0) -> ClassConstants:
        """Every decode time divided by ``decode`` and prefill throughput multiplied by ``prefill``."""
        return replace(self, eta_bw=self.eta_bw * decode, kappa=self.kappa * decode if self.kappa else self.kappa,
                       c_layer_s=self.c_layer_s / decode, c_token_s=self.c_token_s / decode,
                       c_layer_no_graphs_s=(self.c_layer_no_graphs_s / decode if self.c_layer_no_graphs_s is not None
                                            else None),
                       c_layer_old_builds_s=(self.c_layer_old_builds_s / decode if self.c_layer_old_builds_s is not None
                                             else None),
                       eff_pp=self.eff_pp * prefill if self.eff_pp else self.eff_pp)


@dataclass(frozen=True)
class SpeedConstants:
    classes: dict[str, ClassConstants]
    method: str = ""
    version: int = 2
    extra: dict = field(default_factory=dict)  # validation, hold-out devices, local-fit details, ...

    def for_backend(self, backend: str) -> tuple[str, ClassConstants]:
        cls = BACKEND_CLASS.get(backend, "cpu")
        if cls not in self.classes:  # an older file (one GPU class for every GPU backend)
            cls = "gpu"
        return cls, self.classes[cls]

    @classmethod
    def from_dict(cls, d: dict) -> SpeedConstants:
        classes = {k: ClassConstants.from_dict(v) for k, v in d["classes"].items()}
        extra = {k: v for k, v in d.items() if k not in ("classes", "method", "version")}
        return cls(classes=classes, method=d.get("method", ""), version=d.get("version", 1), extra=extra)

    def to_dict(self) -> dict:
        return {"classes": {k: v.to_dict() for k, v in self.classes.items()}, "method": self.method,
                "version": self.version, **self.extra}

    def with_class(self, name: str, k: ClassConstants, method: str | None = None, **extra) -> SpeedConstants:
        return SpeedConstants({**self.classes, name: k}, method if method is not None else self.method,
                              self.version, {**self.extra, **extra})


@lru_cache(maxsize=4)
def load_constants(path: str | None = None) -> SpeedConstants:
    p = Path(path) if path else MODEL_FILE
    return SpeedConstants.from_dict(json.loads(p.read_text()))
