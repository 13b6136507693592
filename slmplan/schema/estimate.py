"""Estimate results. ``FitResult.model_dump()`` is the fit/plan JSON shape."""

from __future__ import annotations

from slmplan.schema.base import FrozenModel as _Frozen
from slmplan.schema.base import Verdict

__all__ = ["EnergyEstimate", "FitResult", "MemoryEstimate", "SpeedEstimate", "Verdict"]


class MemoryEstimate(_Frozen):
    """Bytes one model needs at one context length, by part, and the device's budget (estimates)."""

    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    overhead_bytes: int
    total_bytes: int
    budget_bytes: int
    output_bytes: int = 0  # llama.cpp's logits output buffer (included in compute_bytes)
    repack_bytes: int = 0  # weights llama.cpp's CPU extra buffer types hold (an anonymous copy; in total_bytes)
    extra_buffers: dict[str, int] = {}  # that copy per buffer type: {"CPU_REPACK": n, "AMX": n}
    reclaimable_bytes: int = 0  # mapped file pages of the copied weights, which the OS may drop under pressure
    weights_method: str = ""
    kv_cells: int = 0
    state_bytes: int = 0  # recurrent conv/SSM state of hybrid models (llama.cpp's RS buffer), in total_bytes
    per_layer_embd_bytes: int = 0  # Gemma 3n/4 per-layer embedding table (in weights_bytes)
    per_layer_embd: str = ""  # "resident" (counted in total_bytes) or "mapped" (left out: read from storage)
    notes: list[str] = []


class SpeedEstimate(_Frozen):
    """Predicted prefill and decode speed (tokens/s, with a low-high range) and time to first token."""

    # None = unknown (no compute figure for the device, or no data for the runtime), never 0
    prefill_tokens_per_s: float | None
    decode_tokens_per_s: float | None
    decode_tokens_per_s_low: float | None
    decode_tokens_per_s_high: float | None
    ttft_s: float | None
    prefill_tokens_per_s_low: float | None = None
    prefill_tokens_per_s_high: float | None = None
    bound: str = ""  # memory-bandwidth | cpu-compute | cache-resident, cpu-compute | fixed-overhead | npu ...
    backend: str = ""
    method: str = ""


class EnergyEstimate(_Frozen):
    """Estimated energy per generated token and per query; None when the device has no power figure."""

    joules_per_token: float | None
    wh_per_query: float | None
    method: str
    prompt_tokens: int = 300
    generated_tokens: int = 200
    power_w: float | None = None


class FitResult(_Frozen):
    """One (model, quant) on one device: verdict, memory, speed, energy and the ranking score."""

    model: str
    quant: str
    device: str
    ctx: int
    verdict: Verdict
    memory: MemoryEstimate
    speed: SpeedEstimate
    energy: EnergyEstimate
    params: int = 0
    score: float | None = None
    # what the rank rests on: published benchmark score x quant factor, or the size heuristic (see slmplan/quality.py)
    quality: dict | None = None
    active_params: int | None = None  # parameters read per token (MoE: the active experts only)
