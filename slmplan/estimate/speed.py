"""Speed estimate: decode (tokens/s), prefill (tokens/s) and time to first token, for llama.cpp.

Decode reads every active weight once per token (plus the KV cache of the layers that keep one, up
to the current depth), so it is bound by memory bandwidth; on phones and SBCs the CPU cannot always
keep up and compute takes as long as the memory traffic. When the weights fit in the last-level cache,
DRAM is not the limit at all. On top comes a fixed cost per token and per graph node (graph build, kernel
launches, thread barriers; counted in Llama layers of 31 nodes, see graph.py) that dominates for tiny
models and for architectures with many small operations per layer (MoE routing, Gemma 3n's AltUp).
Prefill is matrix-matrix work, bound by compute; llama.cpp computes the output head for the last prompt
token only.

    t_mem = sum_t bytes_t / q_dec[t] / (eta_bw * BW)               (0 when cache-resident)
    t_cpu = sum_t flops_t / q_cpu[t] / (w_t * k_isa) / (kappa * cpu_flops)   (CPU only)
    s_cpu = (threads / 4) ** thread_exp * (50 GFLOPS / per-core peak) ** core_exp   (CPU; else 1)
    t_token = max(t_mem, t_cpu) + (1 - overlap) * min(t_mem, t_cpu) + c_token + c_layer * s_cpu * layer_units
              (layer_units = llama.cpp graph nodes per token / 31: the layers of a Llama model)
    prefill = eff_pp * flops / (sum_t flops_t / q_pp[t] + head + attention)

For quantized types, ``k_isa`` is a fitted factor per family of llama.cpp's hand-written CPU dot products
(``kappa_by_kernels``: x86 AVX2 against the ARM phones and boards most rows come from; 1 where the family is
unknown) and ``w_t`` the share of the peak their kernels can use (``quant_peak_share``: the quantized x86 dot
products are 256 bits wide, so 0.5 on cores whose peak counts 512-bit AVX-512 units); floats and attention 1.
``overlap`` is how much of the shorter of memory and compute time the CPU hides under the longer
(1 = a roofline; fitted per class). q_dec and q_pp are per-GGML-type kernel throughputs
(dequantization cost differs by type); q_cpu is the CPU's own per-weight decode work by type group
(floats, the types below 8 bits; Q8_0 = 1), fitted on the CPU rows; a type without its own fitted value takes that of a measured
type llama.cpp dequantizes the same way (``kernel_throughput``: Q4_1 as Q4_0). All
constants are fitted per backend class on the published measurements in ``slmplan/data/calibration``
(``slmplan.estimate.fit``, ``benchmarks/fit_speed_model.py``); low/high bounds are quantiles of
measured/predicted on devices the fit did not see.

``predict_times`` (a ``Hardware``) and ``predict_device_times`` (a device profile and runtime settings) are
the stable entry points for per-token times (used by per-device corrections).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from slmplan.estimate.graph import layer_units
from slmplan.estimate.quants import type_bpw
from slmplan.estimate.speed_constants import (
    BACKEND_CLASS,
    MODEL_FILE,
    ClassConstants,
    SpeedConstants,
    load_constants,
)
from slmplan.ggufconst import GGMLQuantizationType
from slmplan.model import ModelFacts
from slmplan.schema.estimate import SpeedEstimate

__all__ = ["BACKEND_CLASS", "MODEL_FILE", "ClassConstants", "Hardware", "SpeedConstants", "TokenTimes",
           "cpu_kernels_of", "decode_bytes_per_token", "decode_time_s", "cpu_decode_work", "quant_kernel_factor", "estimate_speed", "hardware_for", "kernel_throughput", "load_constants",
           "predict_device_times", "predict_times",
           "prefill_flops_per_token", "prefill_tokens_per_s"]

# types llamafile's tinyBLAS (ggml-cpu/llamafile/sgemm.cpp) multiplies in prompt processing on x86
SGEMM_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q4_0", "Q5_0", "IQ4_NL")
THREAD_REF = 4  # thread count at which c_layer is quoted
# CPU: the per-core peak FP32 at which c_layer is quoted (a core with two 128-bit FMA units at 3.1 GHz)
CORE_REF_GFLOPS = 50.0
CACHE_FRACTION = 0.8  # weights + KV must fit in this share of the LLC to count as cache-resident


# The types every llama.cpp build of 2024-2025 repacks on AVX2 and ARM dot-product CPUs: the builds
# the prefill data were measured with (newer builds repack more types on ARM; see extra_bufts.py).
REPACK_TYPES = frozenset({"Q4_0", "Q4_K", "IQ4_NL"})

# Types llama.cpp dequantizes the same way (the same block layout and the same quantized bits per
# weight; they differ by a scale, an offset or a lookup table): Q4_1 is Q4_0 plus a per-block minimum,
# IQ4_NL Q4_0 with a non-linear table, BF16 a 16-bit float widened to F32 like F16, IQ2_XS/IQ2_S IQ2_XXS with larger
# codebooks. A type without its own fitted throughput takes that of a measured type of its group.
DEQUANT_GROUPS: dict[str, tuple[str, ...]] = {
    "16-bit float": ("F16", "BF16"),
    "8-bit, 32-weight blocks": ("Q8_0", "Q8_1"),
    "5-bit, 32-weight blocks": ("Q5_0", "Q5_1"),
    "4-bit, 32-weight blocks": ("Q4_0", "Q4_1", "IQ4_NL", "MXFP4"),
    "2-bit codebooks": ("IQ2_XXS", "IQ2_XS", "IQ2_S"),
    "3-bit codebooks": ("IQ3_XXS", "IQ3_S"),
    "1-bit codebooks": ("IQ1_S", "IQ1_M"),
}
_GROUP_OF = {t: g for g, ts in DEQUANT_GROUPS.items() for t in ts}


def _bpw(name: str) -> float:
    try:
        return type_bpw(GGMLQuantizationType[name])
    except KeyError:
        return 0.0


def kernel_throughput(table: dict[str, float], ggml_type: str) -> float:
    """The relative kernel throughput of ``ggml_type`` in a fitted per-type ``table``.

    A type the table lists has its own value; a type without data (Q4_1: no calibration row uses it)
    takes the value of a measured type of its dequantization group (``DEQUANT_GROUPS``; the closest
    in bits per weight if several are measured); otherwise 1.0, the reference (Q8_0 and F16).
    """
    if ggml_type in table:
        return table[ggml_type]
    group = DEQUANT_GROUPS.get(_GROUP_OF.get(ggml_type, ""), ())
    measured = [t for t in group if t in table]
    if not measured:
        return 1.0
    return table[min(measured, key=lambda t: abs(_bpw(t) - _bpw(ggml_type)))]


@dataclass(frozen=True)
class Hardware:
    """What the speed model needs to know of a device."""

    backend: str
    bandwidth_gbs: float
    cpu_gflops: float | None = None  # peak FP32 of the cores llama.cpp uses
    gpu_tflops: float | None = None
    llc_mb: float | None = None  # last-level cache; None = unknown (never cache-resident)
    threads: int | None = None  # CPU threads llama.cpp runs with
    repack: bool = True  # the CPU backend repacks weights for its prompt kernels (llama.cpp default on AVX2/NEON)
    # the types it repacks on this CPU (extra_bufts.cpu_repack_types); None = the CPU's features are unknown:
    # REPACK_TYPES, the types every repacking CPU (x86 AVX2, ARM dot-product) has had since 2025
    repack_types: frozenset[str] | None = None
    sgemm: bool = True  # llamafile's tinyBLAS prompt kernels (every llama.cpp build since 2024-04)
    cuda_graphs: bool | None = None  # CUDA: kernels replayed as a CUDA graph (Ampere+); None = unknown or not CUDA
    # CPU: which family of llama.cpp's hand-written dot-product kernels runs (cpu_kernels_of: "x86-avx2",
    # "x86-sse", "arm64"); None = unknown (the class's kappa alone)
    cpu_kernels: str | None = None
    # CPU: the share of cpu_gflops the quantized dot products can use: llama.cpp's x86 kernels for quantized
    # types are 256 bits wide, also on cores with 512-bit AVX-512 units (0.5 there); floats use the full width
    quant_peak_share: float = 1.0


@dataclass(frozen=True)
class TokenTimes:
    """Per-token times: prefill seconds per prompt token (None = unknown) and decode seconds per
    generated token at the given depth."""

    prefill_s: float | None
    decode_s: float
    bound: str
    backend_class: str


def _read_tensors(facts: ModelFacts, quant: str):
    for t in facts.weight_tensors(quant):
        if t.role == "token_embd" and not facts.tied_embeddings:
            continue  # an untied input embedding is a row lookup, not a full read
        yield t


def _kv_cells(facts: ModelFacts, depth: int) -> int:
    cells = 0
    for i in range(facts.n_layers):
        if facts.has_kv(i):
            cells += min(depth, facts.n_swa) if facts.is_swa_layer(i) and facts.n_swa else depth
    return cells


def decode_bytes_per_token(facts: ModelFacts, quant: str, depth: int = 0, kv_bytes_per_elt: float = 2.0,
                           q_dec: dict[str, float] | None = None) -> float:
    """Bytes read to generate one token: active weights, plus K and V of the KV layers at ``depth``.
    With ``q_dec``, each tensor's bytes are divided by its type's kernel throughput (time-equivalent)."""
    q_dec = q_dec or {}
    w = sum(t.n_bytes * t.active_fraction / kernel_throughput(q_dec, t.ggml_type) for t in _read_tensors(facts, quant))
    per_cell = (facts.n_embd_k_gqa + facts.n_embd_v_gqa) * kv_bytes_per_elt
    return w + per_cell * _kv_cells(facts, depth)


def _matmul(facts: ModelFacts, quant: str, q: dict[str, float] | None, head: bool) -> float:
    """2 x active matmul weights (FLOPs per token), each divided by its type's kernel throughput."""
    q = q or {}
    s = 0.0
    for t in _read_tensors(facts, quant):
        if t.role == "norm":
            continue
        is_head = t.role == "output" or (t.role == "token_embd" and facts.tied_embeddings)
        if is_head and not head:
            continue
        s += 2 * t.n_elements * t.active_fraction / kernel_throughput(q, t.ggml_type)
    return s


def _attn_flops(facts: ModelFacts, depth: int) -> float:
    return 4.0 * _kv_cells(facts, depth) * facts.n_head * facts.head_dim_k


def decode_flops_per_token(facts: ModelFacts, quant: str, depth: int, q: dict[str, float] | None = None) -> float:
    return _matmul(facts, quant, q, head=True) + _attn_flops(facts, depth)


FLOAT_TYPES = frozenset({"F32", "F16", "BF16"})


def quantized_matmul_flops(facts: ModelFacts, quant: str, q: dict[str, float] | None = None) -> float:
    """The part of ``decode_flops_per_token``'s matmul work in quantized (not float) weights."""
    q = q or {}
    return sum(2 * t.n_elements * t.active_fraction / kernel_throughput(q, t.ggml_type)
               for t in _read_tensors(facts, quant) if t.role != "norm" and t.ggml_type not in FLOAT_TYPES)


X86_FEATURES = ("avx", "sse", "f16c", "fma", "amx", "vnni")  # substrings only x86 feature names contain
ARM_FEATURES = frozenset({"neon", "asimd", "dotprod", "asimddp", "i8mm", "sve", "sve2", "sme", "fp16", "fphp"})


def cpu_kernels_of(isa: str | None, features) -> str | None:
    """The family of llama.cpp's CPU dot-product kernels a CPU runs: "x86-avx2" (AVX2: the 256-bit paths of
    ggml-cpu/arch/x86/quants.c, which AVX-512 builds use too; any AVX-512 or AMX CPU has AVX2), "x86-sse" (an x86
    CPU without AVX2), "arm64"; None = unknown. Without ``isa``, the feature names say which ISA it is."""
    f = {x.lower() for x in features or ()}
    if isa is None:
        isa = ("x86_64" if any(k in x for x in f for k in X86_FEATURES) else
               "arm64" if f & ARM_FEATURES else None)
    if isa == "arm64":
        return "arm64"
    if isa != "x86_64" or not f:
        return None
    return "x86-avx2" if any(x == "avx2" or x.startswith(("avx512", "amx")) for x in f) else "x86-sse"


def quant_kernel_factor(k: ClassConstants, hw: Hardware) -> float:
    """The fitted throughput factor of the CPU's kernel family for quantized weights (``kappa_by_kernels``); 1
    where the family is unknown or has none."""
    return k.kappa_by_kernels.get(hw.cpu_kernels, 1.0) if hw.cpu_kernels else 1.0


def prefill_flops_per_token(facts: ModelFacts, quant: str, n_prompt: int, depth: int = 0,
                            q: dict[str, float] | None = None) -> float:
    """FLOPs per prompt token: the layers for every token, the output head once per prompt (llama.cpp
    keeps only the last token's logits), attention at the mean depth."""
    head = _matmul(facts, quant, q, head=True) - _matmul(facts, quant, q, head=False)
    return (_matmul(facts, quant, q, head=False) + head / max(n_prompt, 1)
            + _attn_flops(facts, depth + n_prompt // 2))


def _cache_resident(facts: ModelFacts, quant: str, hw: Hardware, depth: int) -> bool:
    if not hw.llc_mb or hw.backend != "cpu":
        return False
    return decode_bytes_per_token(facts, quant, depth) <= CACHE_FRACTION * hw.llc_mb * 2**20


def layer_cost_s(k: ClassConstants, hw: Hardware) -> float:
    """Fixed decode cost per layer unit: CUDA without CUDA graphs (GPUs before Ampere) has its own."""
    if hw.backend == "cuda" and hw.cuda_graphs is False and k.c_layer_no_graphs_s is not None:
        return k.c_layer_no_graphs_s
    return k.c_layer_s


def cpu_layer_scale(k: ClassConstants, hw: Hardware) -> float:
    """CPU: the multiplier of the fixed cost per layer unit, (threads / 4) ** thread_exp (every op ends in a
    barrier of all threads) x (50 GFLOPS / peak GFLOPS of one core) ** core_exp (the fixed work of an op runs
    at the speed of a core: 1 = a fixed number of cycles). A factor whose figure is unknown is 1; other
    backends 1."""
    if hw.backend != "cpu":
        return 1.0
    s = 1.0
    if k.thread_exp and hw.threads:
        s *= (hw.threads / THREAD_REF) ** k.thread_exp
    if k.core_exp and hw.threads and hw.cpu_gflops:
        s *= (CORE_REF_GFLOPS / (hw.cpu_gflops / hw.threads)) ** k.core_exp
    return s


def cpu_decode_work(facts: ModelFacts, quant: str, depth: int, k: ClassConstants, hw: Hardware) -> tuple[float, float]:
    """(work at the full width: floats, attention; work of the quantized weights at the width of their kernels),
    in FLOPs per token weighted by the class's per-type CPU rates; the second before the kernel family's factor."""
    q_cpu = k.quant_cpu or k.quant_decode
    quantized = quantized_matmul_flops(facts, quant, q_cpu)
    return decode_flops_per_token(facts, quant, depth, q_cpu) - quantized, quantized / hw.quant_peak_share


def decode_terms(facts: ModelFacts, quant: str, hw: Hardware, depth: int, k: ClassConstants) -> tuple[float, float, float, bool]:
    """(memory time, CPU compute time, fixed time, cache-resident) of one decoded token, in seconds."""
    resident = _cache_resident(facts, quant, hw, depth)
    t_mem = 0.0 if resident else (decode_bytes_per_token(facts, quant, depth, q_dec=k.quant_decode)
                                  / (k.eta_bw * hw.bandwidth_gbs * 1e9))
    t_cpu = 0.0
    if hw.backend == "cpu" and hw.cpu_gflops and k.kappa:
        full, quantized = cpu_decode_work(facts, quant, depth, k, hw)
        t_cpu = (full + quantized / quant_kernel_factor(k, hw)) / (k.kappa * hw.cpu_gflops * 1e9)
    c_layer = layer_cost_s(k, hw) * cpu_layer_scale(k, hw)
    return t_mem, t_cpu, k.c_token_s + c_layer * layer_units(facts), resident


def decode_time_s(facts: ModelFacts, quant: str, hw: Hardware, depth: int, k: ClassConstants) -> tuple[float, str]:
    t_mem, t_cpu, t_fix, resident = decode_terms(facts, quant, hw, depth, k)
    t_core = max(t_mem, t_cpu) + (1.0 - k.overlap) * min(t_mem, t_cpu)
    bound = "memory-bandwidth" if t_mem >= t_cpu else ("cache-resident, cpu-compute" if resident else "cpu-compute")
    if t_fix > t_core:
        bound = "fixed-overhead"
    return t_core + t_fix, bound


def peak_flops(hw: Hardware) -> float | None:
    if hw.backend != "cpu" and hw.gpu_tflops:
        return hw.gpu_tflops * 1e12
    if hw.backend == "cpu" and hw.cpu_gflops:
        return hw.cpu_gflops * 1e9
    return None


def repacked_types(hw: Hardware) -> frozenset[str]:
    """The weight types whose prompt kernels are the repacked ones on this hardware."""
    if not hw.repack or hw.backend != "cpu":
        return frozenset()
    return REPACK_TYPES if hw.repack_types is None else hw.repack_types


def prefill_tokens_per_s(facts: ModelFacts, quant: str, hw: Hardware, n_prompt: int, k: ClassConstants,
                         depth: int = 0) -> float | None:
    """Prompt tokens/s for ``n_prompt`` tokens processed after ``depth`` tokens already in the cache;
    None when the device has no compute figure for its backend or the class has no prefill fit."""
    flops = peak_flops(hw)
    if flops is None or not k.eff_pp:
        return None
    # every type of the model resolved first (a type without data inherits a plain-kernel value), then
    # the build-dependent multipliers of the types those kernels handle
    q = {t: kernel_throughput(k.quant_prefill, t) for t in {x.ggml_type for x in facts.weight_tensors(quant)}}
    if hw.backend == "cpu":
        for t in SGEMM_TYPES if hw.sgemm else ():
            q[t] = kernel_throughput(k.quant_prefill, t) * k.sgemm_prefill
        for t in repacked_types(hw):  # a repacked type uses the repack kernels, not tinyBLAS
            q[t] = kernel_throughput(k.quant_prefill, t) * k.repack_prefill_by_type.get(t, k.repack_prefill)
    return k.eff_pp * flops / prefill_flops_per_token(facts, quant, n_prompt, depth, q)


def predict_times(facts: ModelFacts, quant: str, hw: Hardware, n_prompt: int = 512, depth: int = 0,
                  constants: SpeedConstants | None = None) -> TokenTimes:
    """Per-token prefill and decode times of llama.cpp for one model, quant and device.

    ``n_prompt`` prompt tokens are processed after ``depth`` cached tokens (prefill seconds per prompt
    token); decode is one token generated at context ``depth``. Stable public API: per-device
    corrections multiply these times.
    """
    constants = constants or load_constants()
    cls, k = constants.for_backend(hw.backend)
    pp = prefill_tokens_per_s(facts, quant, hw, max(1, n_prompt), k, depth)
    t_tok, bound = decode_time_s(facts, quant, hw, depth, k)
    return TokenTimes(prefill_s=1.0 / pp if pp else None, decode_s=t_tok, bound=bound, backend_class=cls)


def hardware_for(device, repack: bool = True, threads: int | None = None) -> Hardware:
    """The speed model's view of a ``DeviceProfile`` (threads: the profile's, else its cores)."""
    backend = device.effective_backend
    graphs = None
    if backend == "cuda":
        from slmplan.estimate.cuda_arch import profile_compute_capability, uses_cuda_graphs

        graphs = uses_cuda_graphs(profile_compute_capability(device))
    from slmplan.estimate.extra_bufts import cpu_repack_types

    share = 1.0
    if device.cpu_quant_gflops and device.cpu_gflops:
        share = min(1.0, device.cpu_quant_gflops / device.cpu_gflops)
    return Hardware(backend, device.memory_bandwidth_gbs, device.cpu_gflops, device.gpu_tflops,
                    llc_mb=device.llc_mb, threads=threads or device.threads or device.cpu_cores, repack=repack,
                    repack_types=cpu_repack_types(device.cpu_features) if backend == "cpu" else None,
                    cuda_graphs=graphs, cpu_kernels=cpu_kernels_of(device.cpu_isa, device.cpu_features),
                    quant_peak_share=share)


def predict_device_times(facts: ModelFacts, quant: str, device, settings=None, n_prompt: int = 512, depth: int = 0,
                         threads: int | None = None, constants: SpeedConstants | None = None) -> TokenTimes:
    """``predict_times`` for a device profile and llama.cpp runtime settings (``RuntimeSettings``: its
    ``repack`` flag decides whether repacked prompt kernels apply). With ``threads`` below the profile's,
    the CPU's peak FLOPS scale down accordingly (as ``slmplan bench`` predictions do)."""
    hw = hardware_for(device, settings.repack if settings is not None else True, threads)
    cores = device.threads or device.cpu_cores
    if threads and hw.cpu_gflops and cores and threads < cores:
        hw = replace(hw, cpu_gflops=hw.cpu_gflops * threads / cores)
    return predict_times(facts, quant, hw, n_prompt, depth, constants)


def _architecture_note(facts: ModelFacts) -> str:
    """What the estimate assumes of an architecture whose speed differs from a dense transformer's."""
    from slmplan.estimate.graph import graph_nodes

    parts = []
    if facts.n_expert:
        parts.append(f"mixture of experts: decode reads the {facts.n_expert_used} of {facts.n_expert} experts used "
                     "per token (routing assumed even across experts)")
    if facts.n_recurrent_layers:
        parts.append(f"{facts.n_recurrent_layers} recurrent layers read a fixed-size state instead of a growing KV cache")
    nodes, how = graph_nodes(facts)
    if facts.n_expert or facts.n_recurrent_layers or facts.n_embd_per_layer or "assumed" in how:
        parts.append(f"fixed cost per token from {nodes:.0f} llama.cpp graph nodes ({how})")
    return "".join(f"; {p}" for p in parts)


def _cuda_note(hw: Hardware, k: ClassConstants) -> str:
    if hw.backend != "cuda" or k.c_layer_no_graphs_s is None:
        return ""
    if hw.cuda_graphs is None:
        return ("; GPU compute capability unknown: CUDA graphs assumed (Ampere or newer; set "
                "cuda_compute_capability in the profile for an older GPU, whose per-kernel launches cost more)")
    return "; " + ("CUDA graphs (Ampere or newer)" if hw.cuda_graphs else
                   "no CUDA graphs before Ampere: every kernel launched on its own (a higher fixed cost per token)")


def _cpu_note(hw: Hardware, k: ClassConstants) -> str:
    """What the CPU decode estimate assumed of llama.cpp's CPU kernels on this device."""
    if hw.backend != "cpu" or not k.kappa_by_kernels or not hw.cpu_gflops:
        return ""  # no compute term, no kernel assumption
    parts = []
    f = quant_kernel_factor(k, hw)
    if hw.cpu_kernels is None:
        parts.append("CPU kernel family unknown (set cpu_isa and cpu_features in the profile, or soc): the compute "
                     "rate fitted mostly on ARM phones and boards")
    elif f != 1.0:
        parts.append(f"llama.cpp's {hw.cpu_kernels} kernels: quantized weights at {f:g}x the compute rate fitted "
                     "on the ARM rows (fitted on published x86 rows)")
    if hw.quant_peak_share < 1.0:
        parts.append(f"quantized dot products at {hw.quant_peak_share:g} of the CPU peak (256-bit kernels on "
                     "512-bit AVX-512 units)")
    return "".join("; " + p for p in parts)


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def estimate_speed(facts: ModelFacts, quant: str, hw: Hardware, ctx: int, n_prompt: int = 300,
                   n_gen: int = 200, constants: SpeedConstants | None = None) -> SpeedEstimate:
    """Predicted prefill/decode speed and time to first token of ``facts`` at ``quant`` on ``hw`` (an estimate)."""
    constants = constants or load_constants()
    cls, k = constants.for_backend(hw.backend)
    n_prompt = max(1, min(n_prompt, ctx))
    depth = min(n_prompt + n_gen // 2, ctx)  # average depth while generating the answer
    t_tok, bound = decode_time_s(facts, quant, hw, depth, k)
    tg = 1.0 / t_tok
    pp = prefill_tokens_per_s(facts, quant, hw, n_prompt, k)
    if pp is None:
        ttft = None
        method = (f"estimate: {cls} speed model fitted on published llama.cpp measurements; prefill and time to "
                  f"first token unknown (the profile has no {'cpu_gflops' if hw.backend == 'cpu' else 'gpu_tflops'})")
    else:
        t_first, _ = decode_time_s(facts, quant, hw, n_prompt, k)
        ttft = n_prompt / pp + t_first
        method = f"estimate: {cls} speed model fitted on published llama.cpp measurements"
    method += _architecture_note(facts) + _cuda_note(hw, k) + _cpu_note(hw, k)
    lo, hi = k.decode_bounds(hw.backend)
    return SpeedEstimate(
        prefill_tokens_per_s=_r(pp), decode_tokens_per_s=round(tg, 2),
        decode_tokens_per_s_low=round(tg * lo, 2),
        decode_tokens_per_s_high=round(tg * hi, 2),
        prefill_tokens_per_s_low=_r(pp and pp * k.prefill_ratio_low),
        prefill_tokens_per_s_high=_r(pp and pp * k.prefill_ratio_high),
        ttft_s=_r(ttft, 4), bound=bound, backend=hw.backend, method=method,
    )
