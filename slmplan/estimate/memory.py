"""Memory estimate that follows what llama.cpp allocates.

Checked against llama.cpp's own reported buffer sizes (``tests/test_memory_vs_llamacpp.py``):

* weights: the sum of tensor bytes (llama.cpp's ``CPU_Mapped model buffer``). Tensors that the CPU
  backend repacks for faster matmuls (Q4_0, Q4_K, IQ4_NL on x86 AVX2 and ARM) get a second,
  anonymous copy of the same size (``CPU_REPACK model buffer``); after loading, the mapped pages
  of those tensors are clean file pages the OS reclaims, so the steady-state total counts them
  once. ``repack_bytes`` is reported apart (it is extra only while loading).
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

from dataclasses import dataclass, replace

from slmplan.model import ModelFacts
from slmplan.schema.estimate import MemoryEstimate

MIB = 1 << 20
KV_PAD = 256  # llama.cpp pads n_ctx (and the SWA cache) to a multiple of 256
# A process running llama.cpp before any model is loaded: measured 48 MiB RSS for Python with
# llama_cpp imported on the reference machine; native apps are in the same range. Rounded up.
RUNTIME_BASELINE_BYTES = 64 * MIB
REPACK_TYPES = {"Q4_0", "Q4_K", "IQ4_NL"}
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
    repack: bool = True  # CPU backend repacks Q4_0/Q4_K/IQ4_NL (x86 AVX2, ARM NEON)
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


def repack_bytes(facts: ModelFacts, quant: str, s: RuntimeSettings = RuntimeSettings()) -> int:
    if not s.repack:
        return 0
    return sum(t.n_bytes for t in facts.weight_tensors(quant)
               if t.ggml_type in REPACK_TYPES and t.role not in ("token_embd",))


def estimate_memory(facts: ModelFacts, quant: str, ctx: int, budget_bytes: int,
                    s: RuntimeSettings = RuntimeSettings()) -> MemoryEstimate:
    """Bytes llama.cpp allocates for ``facts`` at ``quant`` with a ``ctx``-token context (an estimate, by part)."""
    if quant == "ONNX-INT4":
        # ONNX Runtime GenAI (CPU): an fp32 KV cache, allocated for the whole max_length up front
        s = replace(s, type_k="f32", type_v="f32")
    weights = facts.weights_bytes(quant)
    weights_method = ("exact: sum of tensor sizes in the GGUF header" if facts.exact_tensors is not None
                      else f"estimate: {quant} quant mix applied to the architecture's tensors")
    kv = kv_cache_bytes(facts, ctx, s)
    comp = compute_bytes(facts, ctx, s)
    out = output_bytes(facts, s)
    rep = repack_bytes(facts, quant, s)
    overhead = s.baseline_bytes
    total = weights + kv + comp + out + overhead
    full_cells, swa_cells = kv_cells(facts, ctx, s)
    notes = []
    if rep:
        notes.append(f"{rep / MIB:.0f} MiB of weights are repacked by llama.cpp's CPU backend "
                     "(a second copy while loading; the mapped originals are then reclaimable)")
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
        weights_method=weights_method, kv_cells=full_cells if full_cells == swa_cells else swa_cells,
        notes=notes,
    )
