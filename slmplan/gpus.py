"""The GPU table (data/gpus.yaml): the FP32 peak and memory bandwidth of a GPU named in free text.

`slmplan calibrate` reads the GPU llama-bench names (``gpu_info``, e.g. "NVIDIA GeForce RTX 4090" or
"AMD Radeon RX 7900 XT (RADV NAVI31)") and, when the device profile gives no ``gpu_tflops``, takes the FP32
peak from here: it decides the one-model prior (the GPU's FLOPs per byte) and makes GPU prefill predictable.
A name that no entry matches (a variant not listed, a laptop part) stays unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from slmplan.errors import DeviceError

GPUS_FILE = Path(__file__).parent / "data" / "gpus.yaml"


@dataclass(frozen=True)
class Gpu:
    name: str
    pattern: re.Pattern
    fp32_tflops: float
    memory_bandwidth_gbs: float
    source: str


@lru_cache(maxsize=1)
def gpu_table() -> tuple[Gpu, ...]:
    from slmplan.yamlio import read_yaml

    data = read_yaml(GPUS_FILE, "GPU table", DeviceError)
    return tuple(Gpu(g["name"], re.compile(g["match"]), float(g["fp32_tflops"]), float(g["memory_bandwidth_gbs"]),
                     g["source"]) for g in data["gpus"])


def find_gpu(*texts: str | None) -> Gpu | None:
    """The table's GPU named in the first of ``texts`` that names one; None when none does."""
    for text in texts:
        if not text:
            continue
        t = re.sub(r"\s+", " ", re.sub(r"[-_]+", " ", text.lower()))
        for g in gpu_table():
            if g.pattern.search(t):
                return g
    return None
