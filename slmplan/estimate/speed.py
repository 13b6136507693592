"""Speed estimate: decode (tokens/s), prefill (tokens/s) and time to first token.

Decode reads every weight once per token (plus the KV cache up to the current depth), so it is
bound by memory bandwidth; on phones and SBCs the CPU cannot always keep up and it is bound by
compute instead. On top of either comes a fixed cost per layer (kernel launches, thread
synchronisation) that dominates for tiny models. Prefill is matrix-matrix work, bound by compute.

    t_token = max(bytes / (eta_bw * BW), 2 * N / (kappa * cpu_flops)) + c_layer * n_layers
    prefill = eff_pp * flops / flops_per_token

eta_bw, kappa, c_layer and eff_pp are fitted per backend class on the published measurements in
``slmplan/data/calibration`` (see ``slmplan.estimate.fit`` and ``benchmarks/fit_speed_model.py``);
the low/high bounds come from the fit's residuals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from slmplan.model import ModelFacts
from slmplan.schema.estimate import SpeedEstimate

MODEL_FILE = Path(__file__).resolve().parent.parent / "data" / "speed_model.json"
BACKEND_CLASS = {"cpu": "cpu", "metal": "gpu", "cuda": "gpu", "vulkan": "gpu"}


@dataclass(frozen=True)
class Hardware:
    """What the speed model needs to know of a device."""

    backend: str
    bandwidth_gbs: float
    cpu_gflops: float | None = None
    gpu_tflops: float | None = None


@lru_cache(maxsize=4)
def load_constants(path: str | None = None) -> dict:
    p = Path(path) if path else MODEL_FILE
    return json.loads(p.read_text())


def decode_bytes_per_token(facts: ModelFacts, quant: str, depth: int = 0, kv_bytes_per_elt: float = 2.0) -> float:
    """Weights read to generate one token, plus K and V read at context ``depth``."""
    w = 0
    for t in facts.weight_tensors(quant):
        if t.role == "token_embd" and not facts.tied_embeddings:
            continue  # an untied input embedding is a row lookup, not a full read
        w += t.n_bytes
    per_layer_cell = (facts.n_embd_k_gqa + facts.n_embd_v_gqa) * kv_bytes_per_elt
    n_swa = facts.n_swa_layers
    kv_cells = (facts.n_layers - n_swa) * depth + n_swa * min(depth, facts.n_swa or depth)
    return w + per_layer_cell * kv_cells


def matmul_params(facts: ModelFacts, quant: str) -> int:
    return sum(t.n_elements for t in facts.weight_tensors(quant)
               if t.role != "norm" and not (t.role == "token_embd" and not facts.tied_embeddings))


def flops_per_token(facts: ModelFacts, quant: str, depth: int) -> float:
    attn = 4 * facts.n_layers * depth * facts.n_head * facts.head_dim_k
    return 2 * matmul_params(facts, quant) + attn


def _class_constants(backend: str, constants: dict) -> tuple[str, dict]:
    cls = BACKEND_CLASS.get(backend, "cpu")
    return cls, constants["classes"][cls]


def decode_time_s(facts: ModelFacts, quant: str, hw: Hardware, depth: int, k: dict) -> tuple[float, str]:
    bytes_ = decode_bytes_per_token(facts, quant, depth)
    t_mem = bytes_ / (k["eta_bw"] * hw.bandwidth_gbs * 1e9)
    t_cpu = 0.0
    if hw.backend == "cpu" and hw.cpu_gflops and k.get("kappa"):
        t_cpu = flops_per_token(facts, quant, depth) / (k["kappa"] * hw.cpu_gflops * 1e9)
    t_fix = k["c_layer_s"] * facts.n_layers
    bound = "memory-bandwidth" if t_mem >= t_cpu else "cpu-compute"
    if t_fix > max(t_mem, t_cpu):
        bound = "fixed-overhead"
    return max(t_mem, t_cpu) + t_fix, bound


def prefill_tokens_per_s(facts: ModelFacts, quant: str, hw: Hardware, n_prompt: int, k: dict,
                         depth: int = 0) -> float | None:
    """Prompt tokens/s for ``n_prompt`` tokens processed after ``depth`` tokens already in the cache."""
    flops = hw.gpu_tflops * 1e12 if hw.backend != "cpu" and hw.gpu_tflops else (
        hw.cpu_gflops * 1e9 if hw.cpu_gflops else None)
    if flops is None:
        return None
    return k["eff_pp"] * flops / flops_per_token(facts, quant, depth + n_prompt // 2)


def estimate_speed(facts: ModelFacts, quant: str, hw: Hardware, ctx: int, n_prompt: int = 300,
                   n_gen: int = 200, constants: dict | None = None) -> SpeedEstimate:
    """Predicted prefill/decode speed and time to first token of ``facts`` at ``quant`` on ``hw`` (an estimate)."""
    constants = constants or load_constants()
    cls, k = _class_constants(hw.backend, constants)
    n_prompt = max(1, min(n_prompt, ctx))
    depth = min(n_prompt + n_gen // 2, ctx)  # average depth while generating the answer
    t_tok, bound = decode_time_s(facts, quant, hw, depth, k)
    tg = 1.0 / t_tok
    pp = prefill_tokens_per_s(facts, quant, hw, n_prompt, k)
    if pp is None:  # no compute figure for this device: prefill unknown, say so through 0 and method
        pp_v, ttft = 0.0, t_tok
        method = f"{cls} constants; prefill unknown (the profile has no cpu_gflops/gpu_tflops)"
    else:
        pp_v = pp
        ttft = n_prompt / pp + t_tok
        method = f"estimate: {cls} speed model fitted on published llama.cpp measurements"
    return SpeedEstimate(
        prefill_tokens_per_s=round(pp_v, 2), decode_tokens_per_s=round(tg, 2),
        decode_tokens_per_s_low=round(tg * k["decode_ratio_low"], 2),
        decode_tokens_per_s_high=round(tg * k["decode_ratio_high"], 2),
        prefill_tokens_per_s_low=round(pp_v * k.get("prefill_ratio_low", 1.0), 2),
        prefill_tokens_per_s_high=round(pp_v * k.get("prefill_ratio_high", 1.0), 2),
        ttft_s=round(ttft, 4), bound=bound, backend=hw.backend, method=method,
    )
