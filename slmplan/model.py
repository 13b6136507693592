"""ModelFacts: what the estimators need to know about a model, from the catalog or a GGUF header.

A catalog entry gives architecture numbers; the weights are then synthesized tensor by tensor and
quantized with llama.cpp's quant-mix rules. A GGUF file gives the exact tensor table instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from slmplan.errors import GGUFError
from slmplan.estimate.quants import NON_GGUF_FORMATS, TensorRole, canonical_quant, ggml_type_for, tensor_bytes
from slmplan.gguf import ArrayValue, GGUFHeader
from slmplan.ggufconst import Keys

# llama.cpp hard-codes the sliding-window layout of some architectures (src/llama-model.cpp):
# Gemma 2 alternates local/global (pattern 2), Gemma 3 has 5 local layers per global one (pattern 6).
SWA_PATTERN_BY_ARCH = {"gemma2": 2, "gemma3": 6, "gemma3n": 5, "cohere2": 4, "gpt-oss": 2}
# Layers from n_layer_kv_from_start on reuse an earlier layer's KV cache (Gemma 3n: hard-coded 20).
KV_FROM_START_BY_ARCH = {"gemma3n": 20}


@dataclass(frozen=True)
class WeightTensor:
    name: str
    role: str
    layer: int
    row: int
    n_elements: int
    n_bytes: int
    ggml_type: str
    # Share of this tensor read per generated token: 1.0 for dense weights, one row for a lookup table
    # (Gemma per-layer embeddings: 1 / n_vocab); for a mixture-of-experts
    # expert tensor, n_expert_used / n_expert (all experts stay in memory, only the active ones are read).
    active_fraction: float = 1.0


@dataclass(frozen=True)
class ModelFacts:
    id: str
    name: str
    architecture: str
    n_layers: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_vocab: int
    n_ctx_train: int
    tied_embeddings: bool
    n_swa: int | None = None
    swa_pattern: int | None = None  # every Nth layer is full attention
    source: str = ""
    path: str | None = None  # local GGUF file
    file_quant: str | None = None  # file type of a GGUF file
    file_size: int | None = None
    exact_tensors: tuple[WeightTensor, ...] | None = None
    stated_params: int | None = None
    license: str | None = None
    hf_repo: str | None = None
    # Architectures beyond the dense decoder (see slmplan/arch.py); the defaults describe one.
    n_expert: int = 0
    n_expert_used: int = 0
    n_ff_exp: int = 0  # expert FFN width
    n_ff_shexp: int = 0  # shared-expert FFN width
    n_layer_dense_lead: int = 0  # leading layers with a dense FFN in a MoE model (LFM2-MoE)
    layer_kv_heads: tuple[int, ...] | None = None  # per-layer KV heads; 0 marks a recurrent layer
    recurrent: tuple[bool, ...] | None = None  # per-layer: keeps a conv/SSM state instead of a KV cache
    swa_layers: tuple[bool, ...] | None = None  # explicit per-layer sliding-window flags (Gemma 4)
    head_dim_swa: int | None = None  # head size of sliding-window layers when it differs (Gemma 4)
    n_layer_kv_from_start: int | None = None  # later layers share an earlier layer's KV (Gemma 3n/4)
    n_embd_per_layer: int = 0  # per-layer embedding width (Gemma 3n/4 "PLE")
    layer_ff: tuple[int, ...] | None = None  # per-layer FFN width when it varies (Gemma 4 double-wide MLP)
    ssm_d_conv: int = 0
    ssm_d_inner: int = 0
    ssm_d_state: int = 0
    ssm_n_group: int = 0
    ssm_dt_rank: int = 0
    shortconv_l_cache: int = 0  # LFM2 short convolution length
    # Multi-token-prediction ("NextN") blocks after the n_layers trunk (Qwen3.5: config.json
    # mtp_num_hidden_layers; a GGUF file's {arch}.nextn_predict_layers). llama.cpp skips their tensors at
    # load unless MTP speculative decoding asks for them, and gives them no cache in the main context:
    # they count in the file size, not in the loaded weights.
    n_layer_nextn: int = 0
    exact_mtp_tensors: tuple[WeightTensor, ...] | None = None  # a GGUF file's MTP-block tensors
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def n_embd_k_gqa(self) -> int:
        return self.head_dim_k * self.n_head_kv

    @property
    def n_embd_v_gqa(self) -> int:
        return self.head_dim_v * self.n_head_kv

    def is_swa_layer(self, i: int) -> bool:
        """llama.cpp's rule: with pattern N, layer i is SWA unless (i+1) % N == 0."""
        if not self.n_swa:
            return False
        if self.swa_layers is not None:
            return bool(self.swa_layers[i]) and not self.is_recurrent(i)
        if not self.swa_pattern:
            return False
        return (i + 1) % self.swa_pattern != 0

    def is_recurrent(self, i: int) -> bool:
        return bool(self.recurrent[i]) if self.recurrent is not None else False

    def has_kv(self, i: int) -> bool:
        """Layer i keeps a KV cache (False for recurrent/SSM layers of hybrid models, which keep a
        fixed-size state instead, and for Gemma 3n/4 layers that reuse an earlier layer's cache)."""
        if self.is_recurrent(i):
            return False
        return self.n_layer_kv_from_start is None or i < self.n_layer_kv_from_start

    def kv_heads(self, i: int) -> int:
        return self.layer_kv_heads[i] if self.layer_kv_heads is not None else self.n_head_kv

    def head_dim(self, i: int) -> int:
        """llama.cpp's n_embd_head_k(il): the SWA head size on sliding-window layers when set."""
        if self.head_dim_swa and self.is_swa_layer(i):
            return self.head_dim_swa
        return self.head_dim_k

    def ff(self, i: int) -> int:
        return self.layer_ff[i] if self.layer_ff is not None else self.n_ff

    def kv_dims(self, i: int) -> tuple[int, int]:
        """(K, V) elements per cell of layer i (llama.cpp's n_embd_k_gqa(il) / n_embd_v_gqa(il))."""
        hk = self.head_dim(i)
        hv = self.head_dim_swa if (self.head_dim_swa and self.is_swa_layer(i)) else self.head_dim_v
        return hk * self.kv_heads(i), hv * self.kv_heads(i)

    @property
    def n_recurrent_layers(self) -> int:
        return sum(self.is_recurrent(i) for i in range(self.n_layers))

    @property
    def is_moe(self) -> bool:
        return self.n_expert > 0

    def state_elements(self) -> tuple[int, int]:
        """Per recurrent layer and sequence: (R, S) f32 elements, llama_hparams::n_embd_r()/n_embd_s()."""
        if self.shortconv_l_cache:
            return self.n_embd * (self.shortconv_l_cache - 1), 0
        r = max(self.ssm_d_conv - 1, 0) * (self.ssm_d_inner + 2 * self.ssm_n_group * self.ssm_d_state)
        return r, self.ssm_d_state * self.ssm_d_inner

    @property
    def n_kv_layers(self) -> int:
        return sum(self.has_kv(i) for i in range(self.n_layers))

    @property
    def n_swa_layers(self) -> int:
        return sum(self.is_swa_layer(i) for i in range(self.n_layers))

    @property
    def modelled(self) -> bool:
        from slmplan.arch import is_modelled

        return is_modelled(self.architecture)

    def roles(self) -> list[TensorRole]:
        """The 2-D weight tensors of a standard decoder (norms and biases are tiny and counted apart)."""
        L, E = self.n_layers, self.n_embd
        q = self.n_head * self.head_dim_k
        out = [TensorRole("token_embd", -1, L, E, self.n_vocab * E)]
        if not self.tied_embeddings:
            out.append(TensorRole("output", -1, L, E, self.n_vocab * E))
        for i in range(L):
            out += [
                TensorRole("attn_q", i, L, E, E * q),
                TensorRole("attn_k", i, L, E, E * self.n_embd_k_gqa),
                TensorRole("attn_v", i, L, E, E * self.n_embd_v_gqa),
                TensorRole("attn_output", i, L, self.n_head * self.head_dim_v, self.n_head * self.head_dim_v * E),
                TensorRole("ffn_gate", i, L, E, E * self.n_ff),
                TensorRole("ffn_up", i, L, E, E * self.n_ff),
                TensorRole("ffn_down", i, L, self.n_ff, self.n_ff * E),
            ]
        return out

    def _norm_params(self) -> int:
        per_layer = 2 * self.n_embd
        if self.architecture in ("gemma2", "gemma3"):
            per_layer = 4 * self.n_embd + 2 * self.head_dim_k  # post-norms and q/k norms
        elif self.architecture == "qwen3":
            per_layer += 2 * self.head_dim_k
        bias = 0
        if self.architecture == "qwen2":
            bias = self.n_head * self.head_dim_k + 2 * self.n_embd_k_gqa
        return self.n_layers * (per_layer + bias) + self.n_embd

    @property
    def params(self) -> int:
        if self.exact_tensors is not None:
            return sum(t.n_elements for t in self.exact_tensors)
        from slmplan.arch import has_layout, layout

        if has_layout(self.architecture):
            return sum(t.n_elements for t in layout(self))
        return sum(r.n_elements for r in self.roles()) + self._norm_params()

    def active_params(self, quant: str = "F16") -> int:
        """Parameters read per token: all dense ones plus n_expert_used / n_expert of the experts."""
        return int(sum(t.n_elements * t.active_fraction for t in self.weight_tensors(quant)))

    def weight_tensors(self, quant: str) -> tuple[WeightTensor, ...]:
        """The tensors llama.cpp loads, with their bytes: exact for a GGUF file, synthesized for a catalog
        entry (as llama.cpp's converter writes the model: with its MTP blocks, which are not loaded)."""
        if self.exact_tensors is not None:
            return self.exact_tensors
        return tuple(t for t in _synthesize(self, canonical_quant(quant), self.n_layer_nextn > 0) if t.layer < self.n_layers)

    def mtp_tensors(self, quant: str) -> tuple[WeightTensor, ...]:
        """The MTP blocks' tensors (in the file, skipped at load): exact for a GGUF file, else synthesized."""
        if self.exact_tensors is not None:
            return self.exact_mtp_tensors or ()
        if not self.n_layer_nextn:
            return ()
        return tuple(t for t in _synthesize(self, canonical_quant(quant), True) if t.layer >= self.n_layers)

    def mtp_bytes(self, quant: str) -> int:
        return sum(t.n_bytes for t in self.mtp_tensors(quant))

    def file_weights_bytes(self, quant: str, with_mtp: bool) -> int:
        """Tensor data of a GGUF file of this model (the header aside), with or without its MTP blocks.
        Without them the quantizer sees fewer layers, which can shift a few tensor types."""
        if self.exact_tensors is not None:
            return self.weights_bytes(quant) + (self.mtp_bytes(quant) if with_mtp else 0)
        return sum(t.n_bytes for t in _synthesize(self, canonical_quant(quant), with_mtp and self.n_layer_nextn > 0))

    def _synthesize(self, q: str, with_mtp: bool = False) -> tuple[WeightTensor, ...]:
        from slmplan.arch import has_layout, synthesize

        if has_layout(self.architecture):
            return synthesize(self, q, with_mtp)
        out = []
        if q in NON_GGUF_FORMATS:
            fmt = NON_GGUF_FORMATS[q]
            for r in self.roles():
                bpw = fmt["embed_bpw"] if r.role == "token_embd" else fmt["lm_head_bpw"] if r.role == "output" else fmt["linear_bpw"]
                out.append(WeightTensor(r.role, r.role, r.layer, r.row, r.n_elements, int(r.n_elements * bpw / 8), f"{bpw:g}bpw"))
            out.append(WeightTensor("norms", "norm", -1, self.n_embd, self._norm_params(), self._norm_params() * 2, "F16"))
            return tuple(out)
        for r in self.roles():
            t = ggml_type_for(q, r, self.tied_embeddings)
            out.append(WeightTensor(r.role, r.role, r.layer, r.row, r.n_elements, tensor_bytes(t, r.n_elements), t.name))
        out.append(WeightTensor("norms", "norm", -1, self.n_embd, self._norm_params(), self._norm_params() * 4, "F32"))
        return tuple(out)

    def weights_bytes(self, quant: str) -> int:
        return sum(t.n_bytes for t in self.weight_tensors(quant))


@lru_cache(maxsize=512)
def _synthesize(f: ModelFacts, quant: str, with_mtp: bool = False) -> tuple[WeightTensor, ...]:
    return f._synthesize(quant, with_mtp)


def _count(h: GGUFHeader, template: str, default: int) -> int:
    """A count with a fallback: never None."""
    v = _int(h, template, default=default)
    return default if v is None else v


def _int(h: GGUFHeader, template: str, default=None, required: bool = True) -> int | None:
    v = h.arch_key(template)
    if isinstance(v, ArrayValue):  # per-layer values (e.g. OpenELM); take the largest
        if not all(type(x) in (int, float) for x in v.head):  # an array of arrays/strings: crafted
            raise GGUFError(f"{h.source}: metadata '{template.format(arch=h.architecture)}' is an array of {v.type}, "
                            "not counts (corrupted header)", "The file is damaged; download it again")
        v = max(v.head) if v.head else None
    if v is None:
        if required and default is None:
            raise GGUFError(f"{h.source}: missing metadata key '{template.format(arch=h.architecture)}'",
                            "The file is not a complete llama.cpp model file")
        return default
    # `not 0 <= v <= 2**40` also refuses NaN; a fractional count is no count either
    if type(v) not in (int, float) or not 0 <= v <= 1 << 40 or v != int(v):
        raise GGUFError(f"{h.source}: metadata '{template.format(arch=h.architecture)}' = {v!r} is not a sane count (corrupted header)",
                        "The file is damaged; download it again")
    return int(v)


def _per_layer(h: GGUFHeader, key: str, n_layers: int, kind=int) -> tuple | None:
    """A per-layer metadata array (llama.cpp's get_key_or_arr), checked; None when absent or scalar."""
    v = h.metadata.get(key.format(arch=h.architecture))
    if not isinstance(v, ArrayValue):
        return None
    vals = v.head
    if not v.full() or len(vals) < n_layers or not all(isinstance(x, (int, bool)) and 0 <= x < 1 << 24 for x in vals):
        raise GGUFError(f"{h.source}: metadata '{key.format(arch=h.architecture)}' is not a valid per-layer array "
                        "(corrupted header)", "The file is damaged; download it again")
    return tuple(kind(x) for x in vals[:n_layers])


def _arch_facts(h: GGUFHeader, n_layers: int, n_ff: int) -> dict:
    """The MoE / hybrid / per-layer hyperparameters, read as llama.cpp's load_arch_hparams reads them."""
    arch = h.architecture
    def opt(key: str, d: int = 0) -> int:
        return _int(h, key, default=d, required=False) or d

    out: dict = {}
    n_expert = opt("{arch}.expert_count")
    if n_expert:
        used = _per_layer(h, "{arch}.expert_used_count", n_layers)
        out["n_expert"] = n_expert
        out["n_expert_used"] = max(used) if used else opt("{arch}.expert_used_count")
        if not out["n_expert_used"] or out["n_expert_used"] > n_expert:
            raise GGUFError(f"{h.source}: expert_used_count must be between 1 and expert_count ({n_expert})",
                            "The file is damaged; download it again")
        # granitehybrid has no expert key: llama.cpp sizes its experts with feed_forward_length
        out["n_ff_exp"] = opt("{arch}.expert_feed_forward_length",
                              n_ff if arch == "granitehybrid" else n_ff // out["n_expert_used"])
        out["n_ff_shexp"] = opt("{arch}.expert_shared_feed_forward_length")
        out["n_layer_dense_lead"] = opt("{arch}.leading_dense_block_count")
    kv_heads = _per_layer(h, Keys.Attention.HEAD_COUNT_KV, n_layers)
    if kv_heads is not None:
        out["layer_kv_heads"] = kv_heads
    ff = _per_layer(h, Keys.LLM.FEED_FORWARD_LENGTH, n_layers)
    if ff is not None:
        out["layer_ff"] = ff
    recurrent = None
    if arch in ("lfm2", "lfm2moe", "granitehybrid") and kv_heads is not None:
        recurrent = tuple(k == 0 for k in kv_heads)  # llama.cpp: a layer is recurrent iff its n_head_kv is 0
    elif arch in ("qwen35", "qwen35moe", "qwen3next"):
        recurrent = _per_layer(h, "{arch}.attention.recurrent_layers", n_layers, bool)
        if recurrent is None:
            interval = opt("{arch}.full_attention_interval", 4)
            recurrent = tuple((i + 1) % interval != 0 for i in range(n_layers))
    elif arch in ("mamba", "mamba2", "rwkv6", "rwkv7"):
        recurrent = (True,) * n_layers
    if recurrent is not None:
        out["recurrent"] = recurrent
    swa = _per_layer(h, "{arch}.attention.sliding_window_pattern", n_layers, bool)
    if swa is not None:
        out["swa_layers"] = swa
    out["head_dim_swa"] = opt("{arch}.attention.key_length_swa") or None
    if arch == "gemma4":
        out["n_layer_kv_from_start"] = n_layers - opt("{arch}.attention.shared_kv_layers")
    elif arch in KV_FROM_START_BY_ARCH:
        out["n_layer_kv_from_start"] = KV_FROM_START_BY_ARCH[arch]
    ple = h.tensor("per_layer_token_embd.weight")
    if ple is not None and ple.shape and ple.shape[0] % n_layers == 0:
        out["n_embd_per_layer"] = ple.shape[0] // n_layers
    for k in ("ssm_d_conv", "ssm_d_inner", "ssm_d_state", "ssm_n_group", "ssm_dt_rank"):
        key = {"ssm_d_conv": "conv_kernel", "ssm_d_inner": "inner_size", "ssm_d_state": "state_size",
               "ssm_n_group": "group_count", "ssm_dt_rank": "time_step_rank"}[k]
        out[k] = opt("{arch}.ssm." + key)
    out["shortconv_l_cache"] = opt("{arch}.shortconv.l_cache")
    return out


def _role_of(name: str) -> tuple[str, int]:
    parts = name.split(".")
    layer = int(parts[1]) if parts[0] == "blk" and len(parts) > 2 and parts[1].isdigit() else -1
    base = parts[2] if layer >= 0 else parts[0]
    if name.endswith(".bias") or "norm" in base:
        return "norm", layer
    return base, layer


def facts_from_gguf(h: GGUFHeader, model_id: str | None = None) -> ModelFacts:
    arch = h.architecture
    if arch == "unknown":
        raise GGUFError(f"{h.source}: no general.architecture key", "The file is not a llama.cpp model file")
    n_layers = _int(h, Keys.LLM.BLOCK_COUNT)
    n_embd = _int(h, Keys.LLM.EMBEDDING_LENGTH)
    n_head = _int(h, Keys.Attention.HEAD_COUNT)
    if not n_layers or not n_embd or not n_head:
        raise GGUFError(f"{h.source}: block_count/embedding_length/head_count must be positive (corrupted header)",
                        "The file is damaged; download it again")
    if n_layers > 4096 or n_embd > 1 << 20 or n_head > 1 << 14:
        raise GGUFError(f"{h.source}: absurd architecture values (layers={n_layers}, embedding={n_embd}, heads={n_head})",
                        "The file is damaged; download it again")
    n_head_kv = _int(h, Keys.Attention.HEAD_COUNT_KV, default=n_head) or n_head
    head_k = _count(h, Keys.Attention.KEY_LENGTH, default=n_embd // n_head)
    head_v = _count(h, Keys.Attention.VALUE_LENGTH, default=n_embd // n_head)
    n_ff = _count(h, Keys.LLM.FEED_FORWARD_LENGTH, default=4 * n_embd)
    tokens = h.metadata.get(Keys.Tokenizer.LIST)
    n_vocab = _int(h, Keys.LLM.VOCAB_SIZE, default=len(tokens) if tokens is not None else 0, required=False)
    embd = h.tensor("token_embd.weight")
    if embd is not None and len(embd.shape) == 2:
        n_vocab = embd.shape[1]
    if not n_vocab:
        raise GGUFError(f"{h.source}: cannot tell the vocabulary size", "The file is not a complete llama.cpp model file")
    # trailing multi-token-prediction blocks: outside llama.cpp's n_layer() (no cache, not run, not loaded)
    nextn = _int(h, "{arch}.nextn_predict_layers", default=0, required=False) or 0
    if 0 < nextn < n_layers:
        n_layers -= nextn
    else:
        nextn = 0
    n_ctx_train = _count(h, Keys.LLM.CONTEXT_LENGTH, default=2048)
    n_swa = _int(h, Keys.Attention.SLIDING_WINDOW, default=0, required=False) or None
    pattern = SWA_PATTERN_BY_ARCH.get(arch) if n_swa else None
    more = _arch_facts(h, n_layers, n_ff)
    if "swa_layers" in more and not n_swa:
        more.pop("swa_layers")
    active = more["n_expert_used"] / more["n_expert"] if more.get("n_expert") else 1.0
    tensors: list[WeightTensor] = []
    mtp: list[WeightTensor] = []
    for t in h.tensors:
        role, layer = _role_of(t.name)
        frac = active if "_exps." in t.name else 1.0
        if t.name == "per_layer_token_embd.weight" and len(t.shape) == 2 and t.shape[1]:
            frac = 1 / t.shape[1]  # a row lookup per token, like an untied token_embd
        w = WeightTensor(t.name, role, layer, t.shape[0], t.n_elements, t.n_bytes, t.type_name, frac)
        (mtp if nextn and layer >= n_layers else tensors).append(w)
    name = h.metadata.get(Keys.General.NAME) or h.source.rsplit("/", 1)[-1]
    return ModelFacts(
        id=model_id or h.source, name=str(name), architecture=arch, n_layers=n_layers, n_embd=n_embd,
        n_ff=n_ff, n_head=n_head, n_head_kv=n_head_kv, head_dim_k=head_k, head_dim_v=head_v,
        n_vocab=n_vocab, n_ctx_train=n_ctx_train, tied_embeddings=h.tensor("output.weight") is None,
        n_swa=n_swa, swa_pattern=pattern, source=f"GGUF header of {h.source}", path=h.source,
        file_quant=h.file_type_name, file_size=h.file_size, exact_tensors=tuple(tensors),
        n_layer_nextn=nextn, exact_mtp_tensors=tuple(mtp) if nextn else None,
        license=h.metadata.get(Keys.General.LICENSE), **more,
    )
