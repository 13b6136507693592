"""ModelFacts: what the estimators need to know about a model, from the catalog or a GGUF header.

A catalog entry gives architecture numbers; the weights are then synthesized tensor by tensor and
quantized with llama.cpp's quant-mix rules. A GGUF file gives the exact tensor table instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from slmplan.errors import GGUFError
from slmplan.estimate.quants import NON_GGUF_FORMATS, TensorRole, ggml_type_for, tensor_bytes
from slmplan.gguf import ArrayValue, GGUFHeader
from slmplan.ggufconst import Keys

# llama.cpp hard-codes the sliding-window layout of some architectures (src/llama-model.cpp):
# Gemma 2 alternates local/global (pattern 2), Gemma 3 has 5 local layers per global one (pattern 6).
SWA_PATTERN_BY_ARCH = {"gemma2": 2, "gemma3": 6, "gemma3n": 5, "cohere2": 4}


@dataclass(frozen=True)
class WeightTensor:
    name: str
    role: str
    layer: int
    row: int
    n_elements: int
    n_bytes: int
    ggml_type: str
    # Share of this tensor read per generated token: 1.0 for dense weights; for a mixture-of-experts
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
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def n_embd_k_gqa(self) -> int:
        return self.head_dim_k * self.n_head_kv

    @property
    def n_embd_v_gqa(self) -> int:
        return self.head_dim_v * self.n_head_kv

    def is_swa_layer(self, i: int) -> bool:
        """llama.cpp's rule: with pattern N, layer i is SWA unless (i+1) % N == 0."""
        if not self.n_swa or not self.swa_pattern:
            return False
        return (i + 1) % self.swa_pattern != 0

    def has_kv(self, i: int) -> bool:
        """Layer i keeps a KV cache (False for recurrent/SSM layers of hybrid models, which keep a
        fixed-size state instead)."""
        return True

    @property
    def n_kv_layers(self) -> int:
        return sum(self.has_kv(i) for i in range(self.n_layers))

    @property
    def n_swa_layers(self) -> int:
        return sum(self.is_swa_layer(i) for i in range(self.n_layers))

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
        return sum(r.n_elements for r in self.roles()) + self._norm_params()

    def weight_tensors(self, quant: str) -> tuple[WeightTensor, ...]:
        """Tensors with their bytes: exact for a GGUF file, synthesized for a catalog entry."""
        if self.exact_tensors is not None:
            return self.exact_tensors
        return _synthesize(self, quant.upper())

    def _synthesize(self, q: str) -> tuple[WeightTensor, ...]:
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
def _synthesize(f: ModelFacts, quant: str) -> tuple[WeightTensor, ...]:
    return f._synthesize(quant)


def _int(h: GGUFHeader, template: str, default=None, required: bool = True) -> int | None:
    v = h.arch_key(template)
    if isinstance(v, ArrayValue):  # per-layer values (e.g. OpenELM); take the largest
        v = max(v.head) if v.head else None
    if v is None:
        if required and default is None:
            raise GGUFError(f"{h.source}: missing metadata key '{template.format(arch=h.architecture)}'",
                            "The file is not a complete llama.cpp model file")
        return default
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0 or v > 1 << 40:
        raise GGUFError(f"{h.source}: metadata '{template.format(arch=h.architecture)}' = {v!r} is not a sane count (corrupted header)",
                        "The file is damaged; download it again")
    return int(v)


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
    head_k = _int(h, Keys.Attention.KEY_LENGTH, default=n_embd // n_head)
    head_v = _int(h, Keys.Attention.VALUE_LENGTH, default=n_embd // n_head)
    n_ff = _int(h, Keys.LLM.FEED_FORWARD_LENGTH, default=4 * n_embd)
    tokens = h.metadata.get(Keys.Tokenizer.LIST)
    n_vocab = _int(h, Keys.LLM.VOCAB_SIZE, default=len(tokens) if tokens is not None else 0, required=False)
    embd = h.tensor("token_embd.weight")
    if embd is not None and len(embd.shape) == 2:
        n_vocab = embd.shape[1]
    if not n_vocab:
        raise GGUFError(f"{h.source}: cannot tell the vocabulary size", "The file is not a complete llama.cpp model file")
    n_ctx_train = _int(h, Keys.LLM.CONTEXT_LENGTH, default=2048)
    n_swa = _int(h, Keys.Attention.SLIDING_WINDOW, default=0, required=False) or None
    pattern = SWA_PATTERN_BY_ARCH.get(arch) if n_swa else None
    tensors = []
    for t in h.tensors:
        role, layer = _role_of(t.name)
        tensors.append(WeightTensor(t.name, role, layer, t.shape[0], t.n_elements, t.n_bytes, t.type_name))
    name = h.metadata.get(Keys.General.NAME) or h.source.rsplit("/", 1)[-1]
    return ModelFacts(
        id=model_id or h.source, name=str(name), architecture=arch, n_layers=n_layers, n_embd=n_embd,
        n_ff=n_ff, n_head=n_head, n_head_kv=n_head_kv, head_dim_k=head_k, head_dim_v=head_v,
        n_vocab=n_vocab, n_ctx_train=n_ctx_train, tied_embeddings=h.tensor("output.weight") is None,
        n_swa=n_swa, swa_pattern=pattern, source=f"GGUF header of {h.source}", path=h.source,
        file_quant=h.file_type_name, file_size=h.file_size, exact_tensors=tuple(tensors),
        license=h.metadata.get(Keys.General.LICENSE),
    )
