"""Whether llama.cpp's CUDA backend replays a token's kernels as a CUDA graph on a given NVIDIA GPU.

llama.cpp captures the decode graph's kernels once and replays them as one CUDA graph, which removes most
of the per-kernel launch cost, but only on GPUs of compute capability 8.0 (Ampere) or newer: older GPUs
launch every kernel on its own (ggml/src/ggml-cuda/ggml-cuda.cu, ``ggml_cuda_graph_set_enabled``:
``cc < GGML_CUDA_CC_AMPERE`` -> ``disable_due_to_gpu_arch``, logged as "disabling CUDA graphs due to GPU
architecture"). The speed model's fixed cost per graph node differs accordingly.

A profile may state ``cuda_compute_capability`` (``nvidia-smi --query-gpu=compute_cap --format=csv``);
otherwise it is read from the GPU's product name with the table below (NVIDIA, "CUDA GPUs - Compute
Capability", https://developer.nvidia.com/cuda-gpus). Unknown stays None.
"""

from __future__ import annotations

import re

AMPERE = 8.0  # GGML_CUDA_CC_AMPERE (ggml/src/ggml-cuda/common.cuh): CUDA graphs from here on
SOURCE = "NVIDIA, CUDA GPUs - Compute Capability (https://developer.nvidia.com/cuda-gpus)"

# (pattern on the lower-cased name, compute capability); first match wins, so specific names come first.
_NAMES: tuple[tuple[str, float], ...] = (
    # workstation and data-centre names first: their numbers overlap the GeForce ones
    (r"\bquadro\s*rtx\b|\btitan\s*rtx\b|\bquadro\s*t\d{3,4}\b|\bt(400|600|1000|1200)\b|\bt4\b", 7.5),
    (r"\brtx\s*pro\s*\d{4}\b|\bb200\b|\bgb200\b|\bb100\b", 12.0),
    (r"\brtx\s*\d{4}\s*ada\b|\bl4\b|\bl40s?\b|\bl20\b", 8.9),
    (r"\brtx\s*a\d{4}\b|\ba10g?\b|\ba16\b|\ba2\b|\ba40\b", 8.6),
    (r"\ba100\b|\ba800\b|\ba30\b", 8.0),
    (r"\bh100\b|\bh200\b|\bh800\b|\bgh200\b", 9.0),
    (r"\bgb10\b|dgx spark", 12.1),
    (r"\borin\b", 8.7),
    (r"\bxavier\b", 7.2),
    (r"\bv100\b|\btitan\s*v\b", 7.0),
    (r"\bp100\b", 6.0),
    (r"\bjetson\s*nano\b", 5.3),
    (r"\b(tesla|quadro)\s*m\d|\bgtx\s*(9\d0|7[5-8]0)\b", 5.2),  # Maxwell
    (r"\b(tesla|quadro)\s*k\d", 3.7),  # Kepler
    # GeForce
    (r"\brtx\s*2050\b", 8.6),  # laptop RTX 2050: an Ampere chip (GA107)
    (r"\brtx\s*50[5-9]0\b", 12.0),
    (r"\brtx\s*40[5-9]0\b", 8.9),
    (r"\brtx\s*30[5-9]0\b", 8.6),
    (r"\brtx\s*20[6-8]0\b|\bgtx\s*16[5-6]0\b|\bmx\s*[45]50\b", 7.5),
    (r"\bgtx\s*10[5-8]0\b|\bgt\s*10[13]0\b|\btitan\s*xp?\b|\bp40\b|\bp4\b|\bquadro\s*p\d{3,4}\b|\bmx[1-3]\d0\b", 6.1),
)


def compute_capability_from_name(*texts: str | None) -> float | None:
    """The compute capability of the NVIDIA GPU named in any of ``texts`` (product names, with dashes or
    spaces: "nvidia-geforce-rtx-2080", "GeForce GTX 1050 Ti"); None when none is recognised."""
    for text in texts:
        if not text:
            continue
        t = re.sub(r"[-_]+", " ", text.lower())
        for pattern, cc in _NAMES:
            if re.search(pattern, t):
                return cc
    return None


def uses_cuda_graphs(cc: float | None) -> bool | None:
    """True/False from the compute capability; None when it is unknown."""
    return None if cc is None else cc >= AMPERE


def profile_compute_capability(device) -> float | None:
    """A device profile's compute capability: its ``cuda_compute_capability`` key, else read from the GPU
    named in its ``soc``, ``name`` or ``id``; None when neither tells."""
    cc = getattr(device, "cuda_compute_capability", None)
    if cc is not None:
        return cc
    return compute_capability_from_name(getattr(device, "soc", None), getattr(device, "name", None),
                                        getattr(device, "id", None))
