"""Published llama.cpp measurements (slmplan/data/calibration) as rows the speed fit can use.

Each row names one device, one catalog model (fine-tunes share their base model's shapes), one quant,
the device's bandwidth and compute figures, and measured decode/prefill tokens/s with the source.
Rows a fit cannot use honestly are left out here, with the reason in a comment.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from slmplan.estimate.cuda_arch import compute_capability_from_name, uses_cuda_graphs
from slmplan.estimate.quants import canonical_quant

CAL = Path(__file__).resolve().parent.parent / "data" / "calibration"

# Calibration model names -> catalog ids (same architecture; fine-tunes share the shapes). First match wins.
MODEL_MAP = [
    # current architectures (catalog entries; other sizes and multimodal variants of the families are left out)
    ("qwen3.5-0.8b", "qwen3.5-0.8b"), ("qwen3.5-2b", "qwen3.5-2b"), ("qwen3.5-4b", "qwen3.5-4b"),
    ("qwen3.5-9b", "qwen3.5-9b"), ("qwen3.5-35b-a3b", "qwen3.5-35b-a3b"), ("qwen3-30b-a3b", "qwen3-30b-a3b"),
    ("qwen3-coder-30b-a3b", "qwen3-30b-a3b"), ("lfm2-350m", "lfm2-350m"), ("lfm2-700m", "lfm2-700m"),
    ("lfm2-1.2b", "lfm2-1.2b"), ("lfm2-2.6b", "lfm2-2.6b"), ("lfm2-8b-a1b", "lfm2-8b-a1b"),
    ("granite-4.0-h-1b", "granite-4.0-h-1b"), ("granite-4.0-h-tiny", "granite-4.0-h-tiny"),
    ("gemma-3n-e2b", "gemma-3n-e2b"), ("gemma-3n-e4b", "gemma-3n-e4b"), ("gemma-4-e2b", "gemma-4-e2b"),
    ("gemma-4-e4b", "gemma-4-e4b"), ("smollm3-3b", "smollm3-3b"), ("gemma-3-270m", "gemma-3-270m"),
    ("qwen2.5-0.5b", "qwen2.5-0.5b"), ("qwen3-0.6b", "qwen3-0.6b"), ("gpt-oss-20b", "gpt-oss-20b"),
    ("qwen3.5", None), ("qwen2.5-7b-1m", None), ("qwen3-30b", None), ("qwen3-coder", None),
    ("tinyllama", "tinyllama-1.1b"), ("llama-3.2-3b", "llama-3.2-3b"), ("llama3.2:3b", "llama-3.2-3b"),
    ("llama-3.2-1b", "llama-3.2-1b"), ("llama 3.1 8b", "llama-3.1-8b"), ("llama3.1:8b", "llama-3.1-8b"),
    ("meta-llama-3.1-8b", "llama-3.1-8b"), ("distill-llama-8b", "llama-3.1-8b"), ("hermes-3-llama-3.1-8b", "llama-3.1-8b"),
    ("llama-3.1-tulu-3-8b", "llama-3.1-8b"), ("mistral 7b", "mistral-7b"), ("mistral-7b-instruct", "mistral-7b"),
    ("llama 7b", "llama-2-7b"), ("qwen3-1.7b", "qwen3-1.7b"), ("qwen3-4b", "qwen3-4b"), ("qwen3-0528-qwen3-8b", "qwen3-8b"),
    ("r1-0528-qwen3-8b", "qwen3-8b"), ("qwen3-8b", "qwen3-8b"), ("qwen2.5-7b-instruct", "qwen2.5-7b"),
    ("distill-qwen-7b", "qwen2.5-7b"), ("qwen2.5-coder-7b", "qwen2.5-7b"), ("qwen2.5-coder-3b", "qwen2.5-3b"),
    ("qwen2.5:1.5b", "qwen2.5-1.5b"), ("qwen2.5-1.5b-instruct", "qwen2.5-1.5b"), ("phi-3.5-mini", "phi-3.5-mini"), ("phi-4-mini", "phi-4-mini"),
    ("gemma-2-2b", "gemma-2-2b"), ("gemma-3-4b", "gemma-3-4b"), ("gemma-3-1b", "gemma-3-1b"), ("smollm2-1.7b", "smollm2-1.7b"),
]
QUANTS = {"Q4_K_M", "Q4_K_S", "Q4_0", "Q8_0", "F16", "Q6_K", "Q5_K_M", "F32", "BF16", "MXFP4_MOE"}

# Memory bandwidth of the llmfit community devices (the data set does not state it): vendor
# specifications, memory data rate x bus width.
LLMFIT_DEVICES = {
    "amd-radeon-rx-7900-xt": ("vulkan", 800, "AMD spec: 20 Gbps GDDR6 x 320-bit"),
    "nvidia-gb10": ("cuda", 273, "NVIDIA DGX Spark spec: LPDDR5X 273 GB/s"),
    "nvidia-geforce-gtx-1050-ti": ("cuda", 112, "NVIDIA spec: 7 Gbps GDDR5 x 128-bit"),
    "nvidia-geforce-rtx-5070": ("cuda", 672, "NVIDIA spec: 28 Gbps GDDR7 x 192-bit"),
    "nvidia-geforce-rtx-2080": ("cuda", 448, "NVIDIA spec: 14 Gbps GDDR6 x 256-bit"),
    "nvidia-geforce-gtx-1080-ti": ("cuda", 484, "NVIDIA spec: 11 Gbps GDDR5X x 352-bit"),
    "nvidia-geforce-rtx-2070-super": ("cuda", 448, "NVIDIA spec: 14 Gbps GDDR6 x 256-bit"),
    "nvidia-geforce-rtx-4060-laptop-gpu": ("cuda", 256, "NVIDIA spec: 16 Gbps GDDR6 x 128-bit"),
    "nvidia-geforce-rtx-5070-laptop-gpu": ("cuda", 384, "NVIDIA spec: 24 Gbps GDDR7 x 128-bit"),
    "nvidia-geforce-rtx-5090-laptop-gpu": ("cuda", 896, "NVIDIA spec: 28 Gbps GDDR7 x 256-bit"),
    "intel-arc-graphics-130v-140v-integrated": ("vulkan", 136.5, "Intel ark: LPDDR5X-8533 x 128-bit"),
}
# GPU memory of the llmfit devices whose results leave it blank (vendor specifications, GB as GiB as the
# data set's own figures are): needed for the 90%-of-memory rule of llmfit_rows.
LLMFIT_VRAM_SPEC = {
    "nvidia-geforce-gtx-1080-ti": (11.0, "NVIDIA spec: 11 GB GDDR5X"),
    "nvidia-geforce-rtx-4060-laptop-gpu": (8.0, "NVIDIA spec: 8 GB GDDR6"),
    "nvidia-geforce-rtx-5070-laptop-gpu": (8.0, "NVIDIA spec: 8 GB GDDR7"),
}
# Apple GPU FP32 per core: M1 8-core 2.6 TFLOPS, M2 10-core 3.6 TFLOPS (Apple announcements).
APPLE_TFLOPS_PER_CORE = {"M1": 2.6 / 8, "M2": 3.6 / 10}


@dataclass(frozen=True)
class Row:
    cls: str  # cpu | metal | gpu (CUDA, Vulkan)
    backend: str
    device: str
    model_id: str
    quant: str
    bandwidth_gbs: float
    cpu_gflops: float | None
    gpu_tflops: float | None
    tg: float | None
    pp: float | None
    pp_tokens: int
    tg_depth: int
    source: str
    threads: int | None = None
    repack: bool = False  # a build whose CPU backend repacks Q4_0/Q4_K/IQ4_NL (llama.cpp from late 2024)
    sgemm: bool = False  # a build with llamafile's tinyBLAS prompt kernels (llamafile 0.7; llama.cpp since 2024-04)
    model_name: str = ""  # the model as the data set names it (a file name, or a description)
    runtime: str = ""  # the runtime as the data set names it
    line: int = 0  # the row's line in its CSV file (1 = the header)
    tg_tokens: int | None = None  # tokens generated per decode measurement, when the data set says
    cuda_graphs: bool | None = None  # CUDA: llama.cpp replays the kernels as a CUDA graph (GPU Ampere or newer)
    data_file: str = ""  # the CSV file the row comes from (``line`` is its line there)
    build_year: int | None = None  # the year of the llama.cpp build that measured it, where the data set says
    # CPU: the types the build repacked on this CPU, from the chip table's features, for 2026 builds (ARM
    # Q8_0/Q5_K/Q6_K repacking: llama.cpp PRs 18096, 18860, 18888, 19356, 19360, 2025-12 to 2026-02);
    # None = the 2025 set (speed.REPACK_TYPES)
    repack_types: frozenset[str] | None = None
    cpu_kernels: str | None = None  # CPU: llama.cpp's kernel family (cpu_peaks.csv: x86-avx2, x86-sse, arm64)


def model_id(name: str) -> str | None:
    n = name.lower()
    for key, mid in MODEL_MAP:
        if key in n:
            return mid
    return None


def quant_of(q: str) -> str | None:
    q = canonical_quant(q.split(" ")[0])  # MXFP4 (gpt-oss's files) is llama.cpp's MXFP4_MOE
    return q if q in QUANTS else None


def read_csv(name: str) -> list[dict]:
    return [r for _, r in read_csv_lines(name)]


def read_csv_lines(name: str) -> list[tuple[int, dict]]:
    """(line of the row in the file, row) for every row of a calibration CSV."""
    with open(CAL / name, newline="") as fh:
        reader = csv.DictReader(fh)
        return [(reader.line_num, r) for r in reader]


def _f(x: str) -> float | None:
    try:
        return float(x) if x not in ("", None) else None
    except ValueError:
        return None


# ggml-org/llama.cpp discussion 4167 ("Performance of llama.cpp on Apple Silicon M-series"): the benchmark run
# in November 2023 (llama.cpp issue #4358 of 2023-12-07: "Recently, we did a performance benchmark of llama.cpp
# for Apple Silicon M-series chips: .../discussions/4167")
APPLE_SWEEP_YEAR = 2023


def apple_rows() -> list[Row]:
    out = []
    for line, r in read_csv_lines("apple_m1_m2_llama2_7b.csv"):
        fam = "M2" if r["chip"].startswith("M2") else "M1"
        out.append(Row("metal", "metal", r["chip"], "llama-2-7b", r["quant"],
                       float(r["memory_bandwidth_gbs"]), None, int(r["gpu_cores"]) * APPLE_TFLOPS_PER_CORE[fam],
                       float(r["tg128_tokens_per_s"]), float(r["pp512_tokens_per_s"]), 512, 64, r["source"],
                       line=line, tg_tokens=128, data_file="apple_m1_m2_llama2_7b.csv", build_year=APPLE_SWEEP_YEAR))
    return out


def _year(text: str) -> int | None:
    """The year a build_or_date field names (the first 20xx in it), None if none."""
    m = re.search(r"\b(20\d\d)\b", text)
    return int(m.group(1)) if m else None


def _decode_test(tg_test: str) -> tuple[int | None, int]:
    """(tokens generated, decode depth) of a llama-bench decode test ("tg128" -> (128, 64)); (None, 64) for
    anything else (the row has no decode figure)."""
    m = re.fullmatch(r"tg(\d+)", tg_test)
    n_tg = int(m.group(1)) if m else None
    return n_tg, n_tg // 2 if n_tg else 64


def apple_more_rows() -> list[Row]:
    """More llama.cpp Metal results (apple_more.csv): other models and chips than the LLaMA-2 7B sweep, all
    layers on the GPU. ``device`` is the chip, as in apple_rows, so that leaving one device out leaves out
    every source's rows of that chip. Decode depth is half the decode test (tg200 -> 100, tg512 -> 256);
    prefill only from pp512 tests. A row without a GPU FLOPS figure (GPU core count not stated) is decode only."""
    out = []
    for line, r in read_csv_lines("apple_more.csv"):
        n_tg, depth = _decode_test(r["tg_test"])
        pp_ok = r["pp_test"] == "pp512"
        out.append(Row("metal", "metal", r["chip"], r["model_catalog_id"], r["quant"],
                       float(r["memory_bandwidth_gbs"]), None, _f(r["gpu_tflops"]),
                       _f(r["tg_tokens_per_s"]) if n_tg else None, _f(r["pp_tokens_per_s"]) if pp_ok else None,
                       512, depth, r["source_url"], model_name=r["model_as_named"],
                       runtime=r["runtime"], line=line, tg_tokens=n_tg, data_file="apple_more.csv",
                       build_year=_year(r["build_or_date"])))
    return out


def gpu_more_rows() -> list[Row]:
    """llama-bench results on CUDA/Vulkan GPUs (gpu_more.csv): many models per device with one build, all
    layers on the GPU; unlike llmfit's community figures these time decode alone (tg128). Decode depth is half
    the decode test. Prefill from pp512 rows the file marks as usable (``pp_used``: not where the source notes a
    high variance), with the GPU's FP32 peak (``gpu_tflops``); decode where ``tg_used`` says so (not a model
    whose weights exceed 90% of the board's memory, the rule llmfit_rows applies)."""
    out = []
    for line, r in read_csv_lines("gpu_more.csv"):
        n_tg, depth = _decode_test(r["tg_test"])
        cc = _f(r["cuda_compute_capability"])
        pp_ok = r["pp_test"] == "pp512" and r["pp_used"] == "yes"
        out.append(Row("gpu", r["backend"], r["device"], r["model_catalog_id"], r["quant"],
                       float(r["memory_bandwidth_gbs"]), None, _f(r["gpu_tflops"]),
                       _f(r["tg_tokens_per_s"]) if n_tg and r["tg_used"] == "yes" else None,
                       _f(r["pp_tokens_per_s"]) if pp_ok else None,
                       512, depth, r["source_url"], threads=int(r["threads"]) if r["threads"] else None,
                       model_name=r["model_as_named"], runtime=r["runtime"], line=line, tg_tokens=n_tg,
                       cuda_graphs=uses_cuda_graphs(cc) if r["backend"] == "cuda" else None, data_file="gpu_more.csv"))
    return out


def _repacking_build(r: dict) -> bool:
    """llama-bench builds of 2025 (geerlingguy's issues, llama.rn 0.12) repack; the 2023-2024 ones do not."""
    rt = r["runtime"]
    return ("llama-bench" in rt or "llama.rn" in rt) and "2023" not in rt and "2024" not in rt


def _current_repack_types(r: dict) -> frozenset[str] | None:
    """A 2026 build's repacked types on the row's chip (its features from the chip table); else None."""
    from slmplan.estimate.extra_bufts import cpu_repack_types
    from slmplan.socs import find_chip

    if not _repacking_build(r) or "2026" not in r["runtime"]:
        return None
    try:
        chip = find_chip(r["soc"])
    except Exception:  # noqa: BLE001 - a soc text the chip table does not know: the 2025 set
        return None
    return cpu_repack_types(chip.cpu_features) if chip and chip.cpu_features else None


def edge_rows() -> list[Row]:
    peaks = {r["device"]: float(r["cpu_gflops"]) for r in read_csv("cpu_peaks.csv")}
    threads = {r["device"]: int(r["threads"]) for r in read_csv("cpu_peaks.csv")}
    kernels = {r["device"]: r.get("cpu_kernels") or None for r in read_csv("cpu_peaks.csv")}
    out = []
    lines = [(f, n, r) for f in ("edge_cpu.csv", "edge_cpu_more.csv") for n, r in read_csv_lines(f)]
    for data_file, line, r in lines:
        rt = r["runtime"]
        if "yzma" in rt or not r["memory_bandwidth_gbs"]:
            continue  # prompt+generation mixed together, or no bandwidth figure
        llamafile = "llamafile" in rt  # its tinyBLAS kernels are llama.cpp's since 2024-04: prefill only
        mid, q = model_id(r["model"]), quant_of(r["quant"])
        if not mid or not q or r["device"] not in peaks:
            continue
        pp_test = r["pp_test"]
        pp_ok = pp_test.startswith(("pp", "prompt tok", "prompt eval 3"))  # short-prompt rows are not comparable
        m = re.search(r"(\d+)", pp_test)
        n_pp = int(m.group(1)) if m and pp_test.startswith(("pp", "prompt eval")) else 512
        m = re.search(r"tg(\d+)", r["tg_test"])
        d = re.search(r"@ ?d(\d+)", r["tg_test"])  # llama-bench's "tg128 @ d2048": after a context of that depth
        depth = (int(m.group(1)) // 2 if m else 64) + (int(d.group(1)) if d else 0)
        out.append(Row("cpu", "cpu", r["device"], mid, q, float(r["memory_bandwidth_gbs"]), peaks[r["device"]], None,
                       None if llamafile else _f(r["tg_tokens_per_s"]), _f(r["pp_tokens_per_s"]) if pp_ok else None,
                       n_pp, depth, r["source"] + (" (llamafile)" if llamafile else ""), threads[r["device"]],
                       repack=_repacking_build(r), sgemm=llamafile or _repacking_build(r), model_name=r["model"],
                       runtime=rt, line=line, tg_tokens=int(m.group(1)) if m else None, data_file=data_file,
                       repack_types=_current_repack_types(r), cpu_kernels=kernels[r["device"]]))
    return out


def llmfit_rows(weights_bytes, identify: Callable[[str], str | None] = model_id,
                quant: Callable[[str, str], str | None] | None = None) -> list[Row]:
    """llmfit community results: output tokens/s of llama.cpp on GPUs, many model sizes per device.

    ``identify`` maps the data set's model name to a catalog id (default: the speed fit's MODEL_MAP, where
    fine-tunes count as their base model), ``quant`` the (model name, quant column) to a quant (default: the
    quant column). Rows whose weights exceed 90% of the GPU's memory are left out (partly offloaded to the
    CPU; the memory from the spec where the data leaves it blank, LLMFIT_VRAM_SPEC), as are duplicates of
    one measurement stored twice."""
    out, seen = [], set()
    for line, r in read_csv_lines("llmfit_community.csv"):
        dev = LLMFIT_DEVICES.get(r["device"])
        mid = identify(r["model"])
        q = quant(r["model"], r["quant"]) if quant else quant_of(r["quant"])
        tg = _f(r["tg_tokens_per_s"])
        if not dev or not mid or not q or not tg:
            continue
        key = (r["device"], mid, q, tg)
        if key in seen:
            continue
        seen.add(key)
        vram = _f(r["vram_gb"]) if r["hw_class"] == "DISCRETE_GPU" else _f(r["ram_gb"])
        if not vram and r["device"] in LLMFIT_VRAM_SPEC:
            vram = LLMFIT_VRAM_SPEC[r["device"]][0]
        if vram and weights_bytes(mid, q) > 0.9 * vram * 2**30:
            continue
        n_out = _f(r["avg_output_tokens"])
        depth = int((n_out or 200) / 2) + 50
        out.append(Row("gpu", dev[0], r["device"], mid, q, dev[1], None, None, tg, None, 512, depth,
                       "llmfit community data, " + r["source_path"], model_name=r["model"], runtime=r["provider"],
                       line=line, tg_tokens=int(n_out) if n_out else None,
                       cuda_graphs=uses_cuda_graphs(compute_capability_from_name(r["device"])) if dev[0] == "cuda" else None))
    return out


def quant_sweep() -> list[dict]:
    return [dict(r, pp=float(r["pp512_tokens_per_s"]), tg=float(r["tg128_tokens_per_s"]))
            for r in read_csv("llama31_8b_quant_sweep.csv")]
