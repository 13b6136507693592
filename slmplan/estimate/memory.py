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
* compute: what ggml-alloc reserves for the graph of a worst-case ubatch. For the architectures of
  ``slmplan.estimate.llama_graph`` (dense llama-like decoders and the arch.py layouts) the graph is
  rebuilt as llama.cpp builds it and its allocation replayed (``slmplan.estimate.ggml_sim``): exact on
  every synthetic file of tests/test_architectures.py. Otherwise the largest of the logits stage (f32
  logits for a whole ubatch, which dominates for big vocabularies: Gemma 3 needs 512 MiB at n_ubatch
  512), the attention stage (f32 KQ scores for every head unless flash attention is on) and the FFN
  stage.
* output: one f32 logits row per sequence.
* recurrent state (hybrid models: LFM2, Granite 4 hybrid, Qwen3.5; llama.cpp's ``RS buffer``): per
  recurrent layer and sequence an f32 conv state R and SSM state S (``llama_hparams::n_embd_r/s``),
  fixed in size whatever the context. Those layers keep no KV cache; nor do the Gemma 3n/4 layers
  that reuse an earlier layer's cache. KV is sized per layer (Gemma 4: other head size on SWA layers).
* mixture of experts: every expert is in memory (weights_bytes); only the active ones are read per
  token (``WeightTensor.active_fraction``, used by the speed estimate).
* per-layer embeddings (Gemma 3n/4): llama.cpp maps the whole file on CPU and reports the table in
  its model buffer, so the default counts it (``per_layer_embd="resident"``); a table read one row per
  token from storage, as Google's on-device runtime does, leaves it out (``"mapped"``).
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
    per_layer_embd: str = "resident"  # Gemma 3n/4 PLE table: "resident" (llama.cpp CPU) or "mapped"
    baseline_bytes: int = RUNTIME_BASELINE_BYTES


def pad(n: int, to: int = KV_PAD) -> int:
    return (n + to - 1) // to * to


def kv_cells(facts: ModelFacts, ctx: int, s: RuntimeSettings) -> tuple[int, int]:
    """(cells of full-attention layers, cells of sliding-window layers)."""
    n_ctx = pad(ctx)
    if facts.n_swa and facts.n_swa_layers and not s.swa_full:
        swa = min(n_ctx, pad(facts.n_swa * s.n_seq + s.n_ubatch))
    else:
        swa = n_ctx
    return n_ctx, swa


def kv_cache_bytes(facts: ModelFacts, ctx: int, s: RuntimeSettings = RuntimeSettings()) -> int:
    full_cells, swa_cells = kv_cells(facts, ctx, s)
    total = 0.0
    # without flash attention V is stored transposed, every layer at the widest V (llama-kv-cache.cpp)
    v_max = max(facts.kv_dims(i)[1] for i in range(facts.n_layers))
    for i in range(facts.n_layers):
        if not facts.has_kv(i):
            continue
        k, v = facts.kv_dims(i)
        if not s.flash_attn:
            v = v_max
        cells = swa_cells if facts.is_swa_layer(i) else full_cells
        total += cells * (k * KV_TYPE_BYTES[s.type_k] + v * KV_TYPE_BYTES[s.type_v])
    return int(total)


def state_bytes(facts: ModelFacts, s: RuntimeSettings = RuntimeSettings()) -> int:
    """llama.cpp's RS buffer: f32 R and S rows per recurrent layer, one set per sequence."""
    if not facts.n_recurrent_layers:
        return 0
    r, st = facts.state_elements()
    return 4 * (r + st) * max(1, s.n_seq) * facts.n_recurrent_layers


def per_layer_embd_bytes(facts: ModelFacts, quant: str) -> int:
    return sum(t.n_bytes for t in facts.weight_tensors(quant) if t.name.startswith("per_layer_token_embd"))


def compute_bytes(facts: ModelFacts, ctx: int, s: RuntimeSettings = RuntimeSettings()) -> int:
    """llama.cpp's CPU compute buffer: what ggml-alloc reserves for the graph of a worst-case ubatch.

    For the architectures slmplan.estimate.llama_graph rebuilds (one sequence) this is that graph's
    allocation, replayed exactly; otherwise :func:`compute_bytes_formula`."""
    from slmplan.estimate.llama_graph import compute_buffer_bytes, supported

    if supported(facts, s.n_seq, s.type_k, s.type_v, s.flash_attn):
        full_cells, swa_cells = kv_cells(facts, ctx, s)
        got = compute_buffer_bytes(facts, full_cells, swa_cells, min(s.n_ubatch, s.n_batch), s.flash_attn,
                                   s.type_k, s.type_v)
        if got is not None:
            return got
    return compute_bytes_formula(facts, ctx, s)


def compute_bytes_formula(facts: ModelFacts, ctx: int, s: RuntimeSettings = RuntimeSettings()) -> int:
    """A coarser estimate of the graph allocator's peak, for architectures without a rebuilt graph: the
    largest of the logits, attention and FFN stages (f32 tensors for one ubatch). Stage sizes fitted term
    by term on llama.cpp's own compute buffers for synthetic llama-like models; it does not know the
    recurrent scans of Mamba 2 / Gated DeltaNet layers nor Gemma 3n/4's AltUp and per-layer inputs."""
    n_ctx = pad(ctx)
    n_ub = min(s.n_ubatch, s.n_batch, n_ctx)
    E = facts.n_embd
    attn_layers = [i for i in range(facts.n_layers) if not facts.is_recurrent(i)] or [0]
    q_dim = max(facts.n_head * facts.head_dim(i) for i in attn_layers)
    k_dim = max(facts.kv_dims(i)[0] for i in attn_layers)
    logits = 4 * n_ub * (facts.n_vocab + 3 * E)
    activations = 4 * n_ub * (3 * E + 2 * q_dim + 2 * k_dim)
    if facts.architecture in ("qwen35", "qwen35moe", "gpt-oss"):
        activations += 4 * n_ub * q_dim  # the query's output gate (Qwen3.5) / query bias (gpt-oss)
    masks = 2 if facts.n_swa_layers else 1  # sliding-window models build a second mask
    if s.flash_attn:
        attention = 2 * n_ub * n_ctx * masks + activations  # only the f16 masks grow with context
    else:
        attention = 4 * n_ub * n_ctx * (facts.n_head + masks) + activations  # f32 KQ per head + masks
    ff = max(facts.ff(i) for i in range(facts.n_layers))
    if facts.is_moe:
        ff = max(ff if facts.n_layer_dense_lead else 0, facts.n_expert_used * facts.n_ff_exp + facts.n_ff_shexp)
    ffn = 4 * n_ub * (3 * ff + 5 * E + q_dim)
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
    rs = state_bytes(facts, s)
    ple = per_layer_embd_bytes(facts, quant)
    overhead = s.baseline_bytes
    if ple and s.per_layer_embd == "mapped":  # resident weights only; the table stays in storage
        weights -= ple
        weights_method += f"; without the {ple / MIB:.0f} MiB per-layer embedding table (mapped)"
    total = weights + rep + kv + rs + comp + out + overhead
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
    if rs:
        notes.append(f"{facts.n_recurrent_layers} of {facts.n_layers} layers are recurrent: a fixed "
                     f"{rs / MIB:.2f} MiB conv/SSM state instead of a KV cache that grows with context")
    if facts.is_moe:
        notes.append(f"mixture of experts: all {facts.n_expert} experts in memory, {facts.n_expert_used} "
                     "read per token")
    if ple:
        notes.append(f"per-layer embeddings: {ple / MIB:.0f} MiB table "
                     + ("left out of the total (mapped, read from storage one row per token, as on-device "
                        "runtimes do)" if s.per_layer_embd == "mapped" else
                        "counted as resident (llama.cpp on CPU maps it with the model; a mobile runtime "
                        "keeps it in storage: --per-layer-embd mapped)"))
    if facts.n_layer_nextn and quant not in NON_GGUF_FORMATS:
        mtp = facts.mtp_bytes(quant)
        where = ("this file holds it" if facts.exact_tensors is not None
                 else "GGUF files converted by llama.cpp with MTP support hold it, older ones do not")
        notes.append(f"multi-token-prediction block ({facts.n_layer_nextn} layer, {mtp / MIB:.0f} MiB): not loaded "
                     f"and no cache, llama.cpp skips it unless MTP speculative decoding is on; {where} "
                     "(download size only)")
    if not facts.modelled:
        notes.append(f"architecture '{facts.architecture}' is not modelled: weights are exact from the file, "
                     "KV cache, state and compute follow a llama-style decoder and may be wrong")
    if ctx > facts.n_ctx_train:
        notes.append(f"ctx {ctx} exceeds the model's trained context {facts.n_ctx_train}")
    return MemoryEstimate(
        weights_bytes=weights, kv_cache_bytes=kv, compute_bytes=comp + out, overhead_bytes=overhead,
        total_bytes=total, budget_bytes=budget_bytes, output_bytes=out, repack_bytes=rep,
        extra_buffers=dict(extra.bytes_by_type), reclaimable_bytes=extra.copied_from_mapping_bytes,
        weights_method=weights_method, kv_cells=full_cells if full_cells == swa_cells else swa_cells,
        notes=notes, state_bytes=rs, per_layer_embd_bytes=ple, per_layer_embd=s.per_layer_embd if ple else "",
    )
