"""Memory estimate that follows what llama.cpp allocates.

Checked against llama.cpp's own reported buffer sizes (``tests/test_memory_vs_llamacpp.py``):

* weights: the sum of tensor bytes (llama.cpp's ``CPU_Mapped model buffer``). On a CPU backend,
  llama.cpp also copies the weights its faster kernels need in another layout into "extra buffer
  types" (``AMX model``, ``CPU_REPACK model``), which of them depends on the CPU's features and
  each tensor's type and shape (``slmplan.estimate.extra_bufts``). That copy is anonymous memory
  next to the mapping; the mapped pages of the copied tensors are then clean file pages the OS may
  reclaim. ``total_bytes`` counts both, as llama.cpp allocates them (``reclaimable_bytes`` says how
  much of it the OS can take back under pressure). With the CPU features unknown the copy is not
  counted and a note says so.
* KV cache: f16 K and V for ``n_ctx`` cells (padded to 256) per layer, GQA-sized. Sliding-window
  layers (Gemma 2/3) get only ``n_swa + n_ubatch`` cells (padded) *unless* ``swa_full``:
  llama-cpp-python's default context parameters keep a full-size SWA cache, llama-cli/llama-server
  do not.
* compute: the graph allocator's peak, the largest of the logits stage (f32 logits for a whole
  ubatch, which dominates for big vocabularies: Gemma 3 needs 512 MiB at n_ubatch 512), the attention
  stage (f32 KQ scores for every head unless flash attention is on) and the FFN stage.
* output: one f32 logits row per sequence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from slmplan.estimate.extra_bufts import ExtraBuffers, extra_buffer_bytes, extra_buffer_types
from slmplan.estimate.quants import NON_GGUF_FORMATS
from slmplan.model import ModelFacts
from slmplan.schema.estimate import MemoryEstimate

MIB = 1 << 20
KV_PAD = 256  # llama.cpp pads n_ctx (and the SWA cache) to a multiple of 256
# A process running llama.cpp before any model is loaded: measured 48 MiB RSS for Python with
# llama_cpp imported on the reference machine; native apps are in the same range. Rounded up.
RUNTIME_BASELINE_BYTES = 64 * MIB
KV_TYPE_BYTES = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


@dataclass(frozen=True)
class RuntimeSettings:
    """The llama.cpp context settings that change memory. Defaults = llama-cpp-python's."""

    n_batch: int = 512
    n_ubatch: int = 512
    type_k: str = "f16"
    type_v: str = "f16"
    flash_attn: bool = False
    swa_full: bool = True
    n_seq: int = 1
    repack: bool = True  # llama.cpp's use_extra_bufts (llama-bench --repack): CPU weights repacked
    baseline_bytes: int = RUNTIME_BASELINE_BYTES


def pad(n: int, to: int = KV_PAD) -> int:
    return (n + to - 1) // to * to


def kv_cells(facts: ModelFacts, ctx: int, s: RuntimeSettings) -> tuple[int, int]:
    """(cells of full-attention layers, cells of sliding-window layers)."""
    n_ctx = pad(ctx)
    if facts.n_swa and facts.swa_pattern and not s.swa_full:
        swa = min(n_ctx, pad(facts.n_swa * s.n_seq + s.n_ubatch))
    else:
        swa = n_ctx
    return n_ctx, swa


def kv_cache_bytes(facts: ModelFacts, ctx: int, s: RuntimeSettings = RuntimeSettings()) -> int:
    full_cells, swa_cells = kv_cells(facts, ctx, s)
    per_cell = facts.n_embd_k_gqa * KV_TYPE_BYTES[s.type_k] + facts.n_embd_v_gqa * KV_TYPE_BYTES[s.type_v]
    n_swa_layers = facts.n_swa_layers
    n_full = facts.n_layers - n_swa_layers
    return int(per_cell * (n_full * full_cells + n_swa_layers * swa_cells))


def compute_bytes(facts: ModelFacts, ctx: int, s: RuntimeSettings = RuntimeSettings()) -> int:
    n_ctx = pad(ctx)
    n_ub = min(s.n_ubatch, s.n_batch, n_ctx)
    E, F = facts.n_embd, facts.n_ff
    q_dim = facts.n_head * facts.head_dim_k
    logits = 4 * n_ub * (facts.n_vocab + 3 * E)
    activations = 4 * n_ub * (3 * E + q_dim + 2 * facts.n_embd_k_gqa)
    if s.flash_attn:
        attention = 2 * n_ub * n_ctx + activations  # only the f16 mask grows with context
    else:
        attention = 4 * n_ub * n_ctx * (facts.n_head + 1) + activations  # f32 KQ per head + mask
    ffn = 4 * n_ub * (3 * F + 2 * E)
    return max(logits, attention, ffn)


def output_bytes(facts: ModelFacts, s: RuntimeSettings = RuntimeSettings()) -> int:
    return 4 * facts.n_vocab * s.n_seq


def extra_buffers(facts: ModelFacts, quant: str, s: RuntimeSettings = RuntimeSettings(),
                  cpu_features: Iterable[str] | None = None, backend: str = "cpu") -> ExtraBuffers:
    """The weights llama.cpp copies into its CPU extra buffer types (None features: unknown)."""
    types = extra_buffer_types(cpu_features, backend, s.repack)
    if quant in NON_GGUF_FORMATS:
        return ExtraBuffers({}, ())
    return extra_buffer_bytes(facts, quant, types, cpu_features or ())


def estimate_memory(facts: ModelFacts, quant: str, ctx: int, budget_bytes: int,
                    s: RuntimeSettings = RuntimeSettings(), cpu_features: Iterable[str] | None = None,
                    backend: str = "cpu") -> MemoryEstimate:
    """Memory llama.cpp allocates for ``facts`` at ``quant`` with a ``ctx``-token context.

    ``cpu_features`` (e.g. ``["avx2", "avx512f"]``, ``["asimd", "asimddp", "i8mm"]``) decide which
    weights llama.cpp repacks into an extra copy on a CPU backend; None means unknown."""
    if quant == "ONNX-INT4":
        # ONNX Runtime GenAI (CPU): an fp32 KV cache, allocated for the whole max_length up front
        s = replace(s, type_k="f32", type_v="f32")
    weights = facts.weights_bytes(quant)
    weights_method = ("exact: sum of tensor sizes in the GGUF header" if facts.exact_tensors is not None
                      else f"estimate: {quant} quant mix applied to the architecture's tensors")
    kv = kv_cache_bytes(facts, ctx, s)
    comp = compute_bytes(facts, ctx, s)
    out = output_bytes(facts, s)
    extra = extra_buffers(facts, quant, s, cpu_features, backend)
    rep = extra.total_bytes
    overhead = s.baseline_bytes
    total = weights + rep + kv + comp + out + overhead
    full_cells, swa_cells = kv_cells(facts, ctx, s)
    notes = []
    if rep:
        kinds = ", ".join(f"{k} {v / MIB:.0f} MiB" for k, v in sorted(extra.bytes_by_type.items()))
        notes.append(f"llama.cpp's CPU backend keeps a repacked copy of some weights ({kinds}; counted in the total); "
                     f"{extra.copied_from_mapping_bytes / MIB:.0f} MiB of the mapped originals are then reclaimable. "
                     "--repack 0 (use_extra_bufts off) avoids the copy at some speed cost")
    elif extra.types is None and backend == "cpu" and s.repack and quant not in NON_GGUF_FORMATS:
        unknown = extra_buffer_bytes(facts, quant, ("CPU_REPACK",), ("avx2", "avx512f", "asimddp", "i8mm")).total_bytes
        if unknown:
            notes.append(f"the device's CPU features are unknown: llama.cpp may also keep a repacked copy of up to "
                         f"{unknown / MIB:.0f} MiB of weights (not counted)")
    if quant == "ONNX-INT4":
        notes.append("ONNX Runtime GenAI: fp32 KV cache allocated for the full context up front; compute buffers "
                     "follow llama.cpp's model (an estimate for ONNX Runtime)")
    if facts.n_swa and s.swa_full:
        notes.append("full-size sliding-window KV cache (llama-cpp-python default; swa_full=false saves memory)")
    if ctx > facts.n_ctx_train:
        notes.append(f"ctx {ctx} exceeds the model's trained context {facts.n_ctx_train}")
    return MemoryEstimate(
        weights_bytes=weights, kv_cache_bytes=kv, compute_bytes=comp + out, overhead_bytes=overhead,
        total_bytes=total, budget_bytes=budget_bytes, output_bytes=out, repack_bytes=rep,
        extra_buffers=dict(extra.bytes_by_type), reclaimable_bytes=extra.copied_from_mapping_bytes,
        weights_method=weights_method, kv_cells=full_cells if full_cells == swa_cells else swa_cells,
        notes=notes,
    )
