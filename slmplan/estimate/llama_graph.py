"""llama.cpp's compute graphs, rebuilt shape by shape, for the size of its compute buffer.

At context creation llama.cpp builds the graph of a worst-case ubatch (n_ubatch tokens, every cache
cell in view, one output row per token) and of a one-token ubatch, and reserves a CPU compute buffer
as large as ggml-alloc needs for the larger of the two ("CPU compute buffer size = X MiB"). This module
rebuilds those graphs with slmplan.estimate.ggml_sim, transcribing the graph builders of the vendored
llama.cpp (llama-cpp-python 0.3.36: src/llama-graph.cpp, src/llama-kv-cache.cpp, src/models/*.cpp)
call by call, in the same order, since the allocator's result depends on the order of every tensor.

Covered: the dense decoders ``llama``, ``qwen3``, ``smollm3``, ``gemma3`` and the layouts of
slmplan/arch.py (``qwen3moe``, ``gpt-oss``, ``lfm2``, ``lfm2moe``, ``granitehybrid``, ``qwen35``,
``qwen35moe``, ``gemma3n``, ``gemma4``), one sequence, an f16/f32 or block-quantized KV cache (with the
Hadamard rotations llama.cpp applies to a quantized one). Not represented: scalar multipliers some
files carry (embedding/residual/logit scales, final logit soft-capping of gemma3), in-place element-wise
ops that do not change the buffer, and LoRA adapters. ``compute_buffer_bytes`` returns None for
anything else (several sequences, Gemma 4 MoE, LFM2 with a sliding window, other architectures), and
the caller falls back to a coarser estimate.

Checked against llama.cpp itself: tests/test_architectures.py loads synthetic GGUFs of every covered
architecture (two sets of dimensions, several context sizes, flash attention on and off, quantized
caches) and compares with the compute buffer llama.cpp reports; tests/test_compute_graph.py records
the graph llama.cpp runs and compares it node by node (op, type, shape, offset in the buffer).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from slmplan.estimate import ggml_sim as g
from slmplan.estimate.ggml_sim import Graph, Tensor, set_input, set_output

DENSE_ARCHS = frozenset({"llama", "qwen3", "smollm3", "granite"})
GRAPH_ARCHS = DENSE_ARCHS | {"gemma3", "qwen3moe", "gpt-oss", "lfm2", "lfm2moe", "granitehybrid", "qwen35",
                             "qwen35moe", "gemma3n", "gemma4"}
GEMMA3N_ALTUP, GEMMA3N_ALTUP_ACT, GEMMA3N_EMBD_ALTUP, GEMMA3N_SPARSE_LAYERS = 4, 0, 256, 10  # llama_hparams / models.h
GEMMA3N_LAUREL_RANK = 64
# llama.cpp also reserves the one-token graph; it has the prompt graph's topology with every activation
# n_tokens times smaller (the recurrent states, the same size), so it only matters for tiny ubatches
TG_GRAPH_BELOW = 32


@dataclass(frozen=True)
class Batch:
    """The ubatch a graph is reserved for, and the cache sizes it sees."""

    n_tokens: int
    n_outputs: int
    n_kv: int  # cells of the full-attention cache (all of them at reservation)
    n_kv_swa: int  # cells of the sliding-window cache
    flash_attn: bool
    type_k: str = "f16"
    type_v: str = "f16"


def _req(t: Tensor | None) -> Tensor:
    assert t is not None
    return t


def _hadamard(cur: Tensor, rot: Tensor) -> Tensor:
    """llama_mul_mat_hadamard (src/llama-impl.h)."""
    n = rot.ne[0]
    if g.is_contiguous(cur):
        res = g.reshape(cur, n, cur.nelements() // n)
    else:
        res = g.cont(cur, n, cur.nelements() // n)
    return g.reshape(g.mul_mat(rot, res), *cur.ne)


class _Builder:
    """llm_graph_context for one graph: inputs, attention, FFN, MoE and recurrent-state helpers."""

    def __init__(self, f, names: frozenset[str], b: Batch):
        self.f, self.names, self.b = f, names, b
        self.gf = Graph()
        self.n_tokens = b.n_tokens
        self.n_embd = f.n_embd
        self._w: dict[str, Tensor] = {}
        self._kv: dict[tuple[str, int], Tensor] = {}
        self._v_max = max((f.kv_dims(i)[1] for i in range(f.n_layers) if not f.is_recurrent(i)), default=0)
        self.iswa = f.architecture in ("gpt-oss", "gemma3n", "gemma4") or (f.architecture == "gemma3" and bool(f.n_swa))
        self.inp_attn: dict[str, Tensor | None] | None = None
        self.inp_rs: dict[str, Tensor] | None = None

    # -- weights and caches (outside the compute buffer) --------------------------------------

    def has(self, name: str) -> bool:
        return name in self.names

    def w(self, name: str, *ne: int) -> Tensor:
        t = self._w.get(name)
        if t is None:
            t = self._w[name] = g.weight(*ne, name=name)
        return t

    def wo(self, name: str, *ne: int) -> Tensor | None:
        return self.w(name, *ne) if self.has(name) else None

    def cache(self, kind: str, il: int) -> Tensor:
        """cache_k/v_l{il} of the KV cache (layer il's own or, for KV-sharing layers, any of the same kind:
        the views only need its shape), cache_r/s_l{il} of the recurrent memory."""
        key = (kind, il)
        t = self._kv.get(key)
        if t is None:
            f = self.f
            if kind in ("k", "v"):
                n = self.b.n_kv_swa if (self.iswa and f.is_swa_layer(il)) else self.b.n_kv
                dim = f.kv_dims(il)[0] if kind == "k" else (f.kv_dims(il)[1] if self.b.flash_attn else self._v_max)
                t = g.external(self.b.type_k if kind == "k" else self.b.type_v, dim, n, 1, name=f"cache_{kind}_l{il}")
            else:
                r, s = f.state_elements()
                t = g.external("f32", r if kind == "r" else s, 1, name=f"cache_{kind}_l{il}")
            self._kv[key] = t
        return t

    # -- inputs ---------------------------------------------------------------------------------

    def build_inp_embd(self) -> Tensor:
        tokens = set_input(g.new_tensor("i32", self.n_tokens, name="inp_tokens"))
        embd = set_input(g.new_tensor("f32", self.n_embd, self.n_tokens, name="inp_embd"))
        cur = g.get_rows(self.w("token_embd.weight", self.n_embd, self.f.n_vocab), tokens)
        self.gf.expand(cur)  # ggml_build_forward_select: both branches join the graph
        self.gf.expand(embd)
        self.gf.expand(cur)
        return cur

    def build_inp_pos(self, n_pos_per_embd: int = 1) -> Tensor:
        return set_input(g.new_tensor("i32", self.n_tokens * n_pos_per_embd, name="inp_pos"))

    def build_inp_out_ids(self) -> Tensor:
        return set_input(g.new_tensor("i32", self.b.n_outputs, name="out_ids"))

    def _kv_inputs(self, n_kv: int, suffix: str = "") -> dict[str, Tensor]:
        n_v = self.n_tokens if self.b.flash_attn else self.n_tokens * self._v_max
        return {"k_idxs" + suffix: set_input(g.new_tensor("i64", self.n_tokens, name="attn_inp_k_idxs")),
                "v_idxs" + suffix: set_input(g.new_tensor("i64", n_v, name="attn_inp_v_idxs")),
                "mask" + suffix: set_input(g.new_tensor("f16" if self.b.flash_attn else "f32", n_kv, self.n_tokens,
                                                        name="attn_inp_kq_mask"))}

    def build_attn_inp(self) -> dict[str, Tensor | None]:
        inp: dict[str, Tensor | None] = {**self._kv_inputs(self.b.n_kv)}
        inp["k_rot"], inp["v_rot"] = self._rotations("")
        if self.iswa:
            inp.update(self._kv_inputs(self.b.n_kv_swa, "_swa"))
            inp["k_rot_swa"], inp["v_rot_swa"] = self._rotations("_swa")
        self.inp_attn = inp
        return inp

    def build_rs_inp(self) -> dict[str, Tensor]:
        n_rs, n_seqs = 1, 1
        s_copy = set_input(g.new_tensor("i32", n_rs, name="rs_s_copy"))
        self.inp_rs = {"main": g.view_1d(s_copy, n_seqs, 0), "extra": g.view_1d(s_copy, n_rs - n_seqs, n_seqs * 4)}
        return self.inp_rs

    # -- blocks -----------------------------------------------------------------------------------

    def build_norm(self, cur: Tensor, mw: Tensor | None) -> Tensor:
        cur = g.rms_norm(cur)
        if mw is not None:
            cur = g.mul(cur, mw)
        return cur

    def mm(self, w: Tensor, cur: Tensor) -> Tensor:
        return g.mul_mat(w, cur)

    def build_qkv(self, il: int, cur: Tensor, hd_q: int, n_head_q: int, hd_k: int, n_head_k: int,
                  hd_v: int, n_head_v: int, reshape: bool = True):
        """llm_graph_context::build_qkv, separate Q/K/V path (optional biases)."""
        E, T = self.n_embd, self.n_tokens
        p = f"blk.{il}."
        q = self.mm(self.w(p + "attn_q.weight", E, hd_q * n_head_q), cur)
        if self.has(p + "attn_q.bias"):
            q = g.add(q, self.w(p + "attn_q.bias", hd_q * n_head_q))
        k = self.mm(self.w(p + "attn_k.weight", E, hd_k * n_head_k), cur)
        if self.has(p + "attn_k.bias"):
            k = g.add(k, self.w(p + "attn_k.bias", hd_k * n_head_k))
        v = self.mm(self.w(p + "attn_v.weight", E, hd_v * n_head_v), cur)
        if self.has(p + "attn_v.bias"):
            v = g.add(v, self.w(p + "attn_v.bias", hd_v * n_head_v))
        if reshape:
            q, k, v = g.reshape(q, hd_q, n_head_q, T), g.reshape(k, hd_k, n_head_k, T), g.reshape(v, hd_v, n_head_v, T)
        return q, k, v

    def cpy_k(self, k_cur: Tensor, k_idxs: Tensor, il: int) -> Tensor:
        k = self.cache("k", il)
        k_cur = g.view_2d(k_cur, k_cur.ne[0] * k_cur.ne[1], k_cur.ne[2], k_cur.nb[2], 0)
        return g.set_rows(k, k_cur, k_idxs)

    def cpy_v(self, v_cur: Tensor, v_idxs: Tensor, il: int) -> Tensor:
        v = self.cache("v", il)
        n_gqa, T = v_cur.ne[0] * v_cur.ne[1], v_cur.ne[2]
        if self.b.flash_attn:
            v_cur = g.view_2d(v_cur, n_gqa, T, v_cur.nb[2], 0)
            return g.set_rows(v, v_cur, v_idxs)
        if g.row_size(v_cur.type, n_gqa) == v_cur.nb[2]:
            v_cur = g.reshape(v_cur, n_gqa, T)
        else:
            v_cur = g.cont(v_cur, n_gqa, T)
        if n_gqa < v.ne[0]:
            v_cur = g.pad(v_cur, v.ne[0] - n_gqa)
        v_view = g.reshape(v, 1, v.nelements())
        v_cur = g.reshape(v_cur, 1, v_cur.nelements())
        return g.set_rows(v_view, v_cur, v_idxs)

    def get_k(self, il: int) -> Tensor:
        k = self.cache("k", il)
        hd, nkv, n = self.f.head_dim(il), self.f.kv_heads(il), k.ne[1]
        rs = g.row_size
        return g.view_4d(k, hd, nkv, n, 1, rs(k.type, hd), rs(k.type, k.ne[0]), rs(k.type, k.ne[0] * n), 0)

    def get_v(self, il: int) -> Tensor:
        v = self.cache("v", il)
        nkv = self.f.kv_heads(il)
        hd = self.f.kv_dims(il)[1] // nkv
        n, rs = v.ne[1], g.row_size
        if self.b.flash_attn:
            return g.view_4d(v, hd, nkv, n, 1, rs(v.type, hd), rs(v.type, v.ne[0]), rs(v.type, v.ne[0] * n), 0)
        return g.view_4d(v, n, nkv, hd, 1, rs(v.type, n * hd), rs(v.type, n), rs(v.type, n * v.ne[0]), 0)

    def _rotations(self, suffix: str) -> tuple[Tensor | None, Tensor | None]:
        """llama_kv_cache::build_input_k_rot / _v_rot: Hadamard rotations of a quantized cache's heads, when
        every layer of that cache has the same head size (a multiple of 64); LLAMA_ATTN_ROT_DISABLE is not
        modelled."""
        f, b = self.f, self.b
        layers = [i for i in range(f.n_layers) if f.has_kv(i) and (suffix == "_swa") == (self.iswa and f.is_swa_layer(i))]
        rot: list[Tensor | None] = [None, None]
        for j, (type_, dims, full) in enumerate(((b.type_k, [f.head_dim(i) for i in layers], f.head_dim_k),
                                                  (b.type_v, [f.kv_dims(i)[1] // f.kv_heads(i) for i in layers],
                                                   f.head_dim_v))):
            if type_ in g.BLOCK_TYPES and dims and len(set(dims)) == 1 and full % 64 == 0:
                n = 64
                if j == 0:  # K: the largest power-of-two multiple of 64 dividing the head size; V: 64
                    while dims[0] % (n * 2) == 0:
                        n *= 2
                rot[j] = set_input(g.new_tensor("f32", n, n, name="attn_inp_k_rot" if j == 0 else "attn_inp_v_rot"))
        return rot[0], rot[1]

    def build_attn_mha(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor, sinks: Tensor | None) -> Tensor:
        v_trans = v.nb[1] > v.nb[2]
        q = g.view_4d(q, q.ne[0], q.ne[1], q.ne[2], 1, q.nb[1], q.nb[2], q.nb[2] * q.ne[2], 0)
        q, k, v = g.permute(q, 0, 2, 1, 3), g.permute(k, 0, 2, 1, 3), g.permute(v, 0, 2, 1, 3)
        if self.b.flash_attn:
            if v_trans:
                v = g.transpose(v)
            cur = g.flash_attn_ext(q, k, v, mask, sinks)
            return self.gf.expand(g.reshape(cur, cur.ne[0] * cur.ne[1], cur.ne[2] * cur.ne[3]))
        kq = g.mul_mat(k, q)
        kq = g.soft_max(kq, mask, sinks)
        if not v_trans:
            v = g.cont(g.transpose(v))
        kqv = g.mul_mat(v, kq)
        cur = g.permute(kqv, 0, 2, 1, 3)
        return self.gf.expand(g.cont(cur, cur.ne[0] * cur.ne[1], cur.ne[2] * cur.ne[3]))

    def build_attn(self, il: int, wo: Tensor | None, wo_b: Tensor | None, q: Tensor, k: Tensor | None,
                   v: Tensor | None, sinks: Tensor | None = None) -> Tensor:
        inp = self.inp_attn
        assert inp is not None
        gf = self.gf
        suffix = "_swa" if (self.iswa and self.f.is_swa_layer(il)) else ""
        k_rot, v_rot = inp["k_rot" + suffix], inp["v_rot" + suffix]
        if k_rot is not None:
            q = _hadamard(q, k_rot)
            if k is not None:
                k = _hadamard(k, k_rot)
        if v_rot is not None and v is not None:
            v = _hadamard(v, v_rot)
        if self.iswa:  # build_attn(llm_graph_input_attn_kv_iswa *): q, k, v
            gf.expand(q)
            if k is not None:
                gf.expand(k)
            if v is not None:
                gf.expand(v)
        else:  # build_attn(llm_graph_input_attn_kv *): q, v, then k
            assert k is not None and v is not None
            gf.expand(q)
            gf.expand(v)
            gf.expand(k)
        if k is not None:
            gf.expand(self.cpy_k(k, _req(inp["k_idxs" + suffix]), il))
        if v is not None:
            gf.expand(self.cpy_v(v, _req(inp["v_idxs" + suffix]), il))
        cur = self.build_attn_mha(q, self.get_k(il), self.get_v(il), _req(inp["mask" + suffix]), sinks)
        if v_rot is not None:
            cur = _hadamard(cur, v_rot)
        if wo is not None:
            cur = self.mm(wo, cur)
        if wo_b is not None:
            cur = g.add(cur, wo_b)
        return cur

    def build_ffn(self, cur: Tensor, il: int, act: str = "silu", prefix: str = "ffn", suffix: str = "",
                  width: int | None = None) -> Tensor:
        """A gated FFN, LLM_FFN_PAR: up, gate, act(gate)*up (GLU), down; biases when the file has them."""
        E, F = self.n_embd, width or self.f.ff(il)
        p = f"blk.{il}.{prefix}"
        tmp = self.mm(self.w(f"{p}_up{suffix}.weight", E, F), cur)
        if self.has(f"{p}_up{suffix}.bias"):
            tmp = g.add(tmp, self.w(f"{p}_up{suffix}.bias", F))
        gate = self.mm(self.w(f"{p}_gate{suffix}.weight", E, F), cur)
        if self.has(f"{p}_gate{suffix}.bias"):
            gate = g.add(gate, self.w(f"{p}_gate{suffix}.bias", F))
        cur = g.glu_split(gate, tmp)
        cur = self.mm(self.w(f"{p}_down{suffix}.weight", F, E), cur)
        if self.has(f"{p}_down{suffix}.bias"):
            cur = g.add(cur, self.w(f"{p}_down{suffix}.bias", E))
        return cur

    def build_moe_ffn(self, cur: Tensor, il: int, gating: str, norm_w: bool, exp_probs_b: Tensor | None = None,
                      biases: bool = False, width: int | None = None, logits: Tensor | None = None) -> Tensor:
        """llm_graph_context::build_moe_ffn: router, top-k, the experts' mul_mat_id, weighted sum."""
        f, gf = self.f, self.gf
        E, T, X, k = self.n_embd, cur.ne[1], f.n_expert, f.n_expert_used
        Fx = width or f.n_ff_exp
        p = f"blk.{il}."
        if logits is None:
            logits = self.mm(self.w(p + "ffn_gate_inp.weight", E, X), cur)
        if biases:
            logits = g.add(logits, self.w(p + "ffn_gate_inp.bias", X))
        if gating == "softmax":
            probs = g.soft_max(logits)
        elif gating == "sigmoid":
            probs = g.unary(logits)
        else:  # softmax_weight: the softmax comes after the selection
            probs = logits
        selection = probs
        if exp_probs_b is not None:
            selection = g.add(probs, exp_probs_b)
        selected = g.argsort_top_k(selection, k)
        probs = g.reshape(probs, 1, X, T)
        weights = g.get_rows(probs, selected)
        if gating == "softmax_weight":
            weights = g.reshape(weights, k, T)
            weights = g.soft_max(weights)
            weights = g.reshape(weights, 1, k, T)
        if norm_w:
            weights = g.reshape(weights, k, T)
            wsum = g.clamp(g.sum_rows(weights))
            weights = g.div(weights, wsum)
            weights = g.reshape(weights, 1, k, T)
        gf.expand(weights)
        cur = g.reshape(cur, E, 1, T)
        up = g.mul_mat_id(self.w(p + "ffn_up_exps.weight", E, Fx, X), cur, selected)
        if biases:
            up = g.add_id(up, self.w(p + "ffn_up_exps.bias", Fx, X), selected)
        gate = g.mul_mat_id(self.w(p + "ffn_gate_exps.weight", E, Fx, X), cur, selected)
        if biases:
            gate = g.add_id(gate, self.w(p + "ffn_gate_exps.bias", Fx, X), selected)
        cur = g.glu_split(gate, up)
        experts = g.mul_mat_id(self.w(p + "ffn_down_exps.weight", Fx, E, X), cur, selected)
        if biases:
            experts = g.add_id(experts, self.w(p + "ffn_down_exps.bias", E, X), selected)
        experts = g.mul(experts, weights)
        gf.expand(experts)
        views = [g.view_2d(experts, E, T, experts.nb[2], i * experts.nb[1]) for i in range(k)]
        for v in views:
            gf.expand(v)
        out = views[0]
        for v in views[1:]:
            out = g.add(out, v)
            gf.expand(out)
        if k == 1:
            out = g.cont(out)
        return out

    def build_rs(self, s: Tensor, state_size: int, get_rows=None) -> Tensor:
        """llm_graph_context::build_rs for one sequence at reservation (n_rs = 1, head 0, rs_z 0)."""
        inp, gf = self.inp_rs, self.gf
        assert inp is not None
        states = g.reshape(s, state_size, s.ne[1])
        gf.expand(g.scale_inplace(g.view_1d(states, state_size, 0)))
        out = get_rows(states, inp["main"]) if get_rows else g.get_rows(states, inp["main"])
        gf.expand(out)
        extra = g.get_rows(states, inp["extra"])
        gf.expand(g.cpy(extra, g.view_2d(s, state_size, 0, s.nb[1], s.nb[1])))
        return out

    def finish(self, cur: Tensor, *outputs: Tensor) -> Graph:
        for t in outputs:
            set_output(t)
        self.gf.expand(cur)
        return self.gf

    def lm_head(self, cur: Tensor) -> Tensor:
        out = self.w("output.weight", self.n_embd, self.f.n_vocab) if self.has("output.weight") else \
            self.w("token_embd.weight", self.n_embd, self.f.n_vocab)
        return self.mm(out, cur)


# -- architectures --------------------------------------------------------------------------------

def _dense(bd: _Builder) -> Graph:
    """llama.cpp src/models/llama.cpp (qwen3: q/k norms before RoPE; smollm3: some layers without RoPE)."""
    f = bd.f
    E, hd = f.n_embd, f.head_dim_k
    inpL = bd.build_inp_embd()
    inp_pos = bd.build_inp_pos()
    bd.build_attn_inp()
    out_ids = bd.build_inp_out_ids()
    qk_norm = f.architecture == "qwen3"
    cur = inpL
    for il in range(f.n_layers):
        p = f"blk.{il}."
        inpSA = inpL
        cur = bd.build_norm(inpL, bd.w(p + "attn_norm.weight", E))
        q, k, v = bd.build_qkv(il, cur, hd, f.n_head, hd, f.kv_heads(il), f.head_dim_v, f.kv_heads(il))
        if qk_norm:
            q = g.rope(bd.build_norm(q, bd.w(p + "attn_q_norm.weight", hd)), inp_pos)
            k = g.rope(bd.build_norm(k, bd.w(p + "attn_k_norm.weight", hd)), inp_pos)
        elif f.architecture != "smollm3" or (il + 1) % 4 != 0:  # smollm3: n_no_rope_layer_step 4
            q, k = g.rope(q, inp_pos), g.rope(k, inp_pos)
        cur = bd.build_attn(il, bd.w(p + "attn_output.weight", f.n_head * hd, E), bd.wo(p + "attn_output.bias", E), q, k, v)
        if il == f.n_layers - 1:
            cur, inpSA = g.get_rows(cur, out_ids), g.get_rows(inpSA, out_ids)
        ffn_inp = g.add(cur, inpSA)
        cur = bd.build_norm(ffn_inp, bd.w(p + "ffn_norm.weight", E))
        cur = bd.build_ffn(cur, il)
        cur = g.add(cur, ffn_inp)
        inpL = cur
    cur = bd.build_norm(cur, bd.w("output_norm.weight", E))
    embd = cur
    cur = bd.lm_head(cur)
    return bd.finish(cur, embd, cur)


def _gemma3(bd: _Builder) -> Graph:
    """src/models/gemma3.cpp: scaled embeddings, q/k norms, post-attention and post-FFN norms, GELU FFN,
    sliding-window layers in their own cache. (A final logit soft-capping some files ask for is in place.)"""
    f = bd.f
    E, hd = f.n_embd, f.head_dim_k
    inpL = g.scale(bd.build_inp_embd())
    inp_pos = bd.build_inp_pos()
    bd.build_attn_inp()
    out_ids = bd.build_inp_out_ids()
    cur = inpL
    for il in range(f.n_layers):
        p = f"blk.{il}."
        cur = bd.build_norm(inpL, bd.w(p + "attn_norm.weight", E))
        q, k, v = bd.build_qkv(il, cur, hd, f.n_head, hd, f.kv_heads(il), f.head_dim_v, f.kv_heads(il))
        q = g.rope(bd.build_norm(q, bd.w(p + "attn_q_norm.weight", hd)), inp_pos)
        k = g.rope(bd.build_norm(k, bd.w(p + "attn_k_norm.weight", hd)), inp_pos)
        q = g.scale(q)
        cur = bd.build_attn(il, bd.w(p + "attn_output.weight", f.n_head * hd, E), None, q, k, v)
        if il == f.n_layers - 1:
            cur, inpL = g.get_rows(cur, out_ids), g.get_rows(inpL, out_ids)
        cur = bd.build_norm(cur, bd.w(p + "post_attention_norm.weight", E))
        sa_out = g.add(cur, inpL)
        cur = bd.build_norm(sa_out, bd.w(p + "ffn_norm.weight", E))
        cur = bd.build_ffn(cur, il)
        cur = bd.build_norm(cur, bd.w(p + "post_ffw_norm.weight", E))
        cur = g.add(cur, sa_out)
        inpL = cur
    cur = bd.build_norm(cur, bd.w("output_norm.weight", E))
    embd = cur
    cur = bd.lm_head(cur)
    return bd.finish(cur, embd, cur)


def _qwen3moe(bd: _Builder) -> Graph:
    f = bd.f
    E, hd = f.n_embd, f.head_dim_k
    inpL = bd.build_inp_embd()
    inp_pos = bd.build_inp_pos()
    bd.build_attn_inp()
    out_ids = bd.build_inp_out_ids()
    cur = inpL
    for il in range(f.n_layers):
        p = f"blk.{il}."
        inpSA = inpL
        cur = bd.build_norm(inpL, bd.w(p + "attn_norm.weight", E))
        q, k, v = bd.build_qkv(il, cur, hd, f.n_head, hd, f.kv_heads(il), f.head_dim_v, f.kv_heads(il))
        q = g.rope(bd.build_norm(q, bd.w(p + "attn_q_norm.weight", hd)), inp_pos)
        k = g.rope(bd.build_norm(k, bd.w(p + "attn_k_norm.weight", hd)), inp_pos)
        cur = bd.build_attn(il, bd.w(p + "attn_output.weight", f.n_head * hd, E), None, q, k, v)
        if il == f.n_layers - 1:
            cur, inpSA = g.get_rows(cur, out_ids), g.get_rows(inpSA, out_ids)
        ffn_inp = g.add(cur, inpSA)
        cur = bd.build_norm(ffn_inp, bd.w(p + "ffn_norm.weight", E))
        cur = bd.build_moe_ffn(cur, il, "softmax", True)
        cur = g.add(cur, ffn_inp)
        inpL = cur
    cur = bd.build_norm(cur, bd.w("output_norm.weight", E))
    embd = cur
    cur = bd.lm_head(cur)
    return bd.finish(cur, embd, cur)


def _gpt_oss(bd: _Builder) -> Graph:
    """src/models/openai-moe.cpp: biases, attention sinks, SWA/full alternation, softmax-after-top-k MoE."""
    f = bd.f
    E, hd = f.n_embd, f.head_dim_k
    inpL = bd.build_inp_embd()
    inp_pos = bd.build_inp_pos()
    bd.build_attn_inp()
    out_ids = bd.build_inp_out_ids()
    cur = inpL
    for il in range(f.n_layers):
        p = f"blk.{il}."
        inpSA = inpL
        cur = bd.build_norm(inpL, bd.w(p + "attn_norm.weight", E))
        q, k, v = bd.build_qkv(il, cur, hd, f.n_head, hd, f.kv_heads(il), f.head_dim_v, f.kv_heads(il))
        q, k = g.rope(q, inp_pos), g.rope(k, inp_pos)
        cur = bd.build_attn(il, bd.w(p + "attn_output.weight", f.n_head * hd, E), bd.wo(p + "attn_output.bias", E),
                            q, k, v, sinks=bd.w(p + "attn_sinks.weight", f.n_head))
        ffn_inp = g.add(cur, inpSA)
        cur = bd.build_norm(ffn_inp, bd.w(p + "post_attention_norm.weight", E))
        cur = bd.build_moe_ffn(cur, il, "softmax_weight", False, biases=True)
        cur = g.add(cur, ffn_inp)
        inpL = cur
    h_nextn = cur
    cur = g.get_rows(cur, out_ids)
    cur = bd.build_norm(cur, bd.w("output_norm.weight", E))
    embd = cur
    cur = bd.lm_head(cur)
    return bd.finish(cur, h_nextn, embd, cur)


def _lfm2(bd: _Builder) -> Graph:
    """src/models/lfm2.cpp (LFM2 and LFM2-MoE): short-conv blocks and attention blocks."""
    f, gf = bd.f, bd.gf
    E, T = f.n_embd, bd.n_tokens
    cur = bd.build_inp_embd()
    gf.expand(cur)
    bd.build_rs_inp()
    bd.build_attn_inp()
    inp_pos = bd.build_inp_pos()
    out_ids = bd.build_inp_out_ids()
    n_dense = f.n_layer_dense_lead if f.is_moe else f.n_layers
    for il in range(f.n_layers):
        p = f"blk.{il}."
        prev = cur
        cur = bd.build_norm(cur, bd.w(p + "attn_norm.weight", E))
        if f.is_recurrent(il):
            d_conv = f.shortconv_l_cache - 1
            cur = g.reshape(cur, E, T, 1)
            bcx = bd.mm(bd.w(p + "shortconv.in_proj.weight", E, 3 * E), cur)
            cs = bcx.ne[0] // 3
            b_ = g.view_3d(bcx, cs, bcx.ne[1], bcx.ne[2], bcx.nb[1], bcx.nb[2], 0)
            c_ = g.view_3d(bcx, cs, bcx.ne[1], bcx.ne[2], bcx.nb[1], bcx.nb[2], cs * 4)
            x_ = g.view_3d(bcx, cs, bcx.ne[1], bcx.ne[2], bcx.nb[1], bcx.nb[2], 2 * cs * 4)
            bx = g.transpose(g.mul(b_, x_))
            state = bd.cache("r", il)
            conv = g.reshape(bd.build_rs(state, d_conv * E), d_conv, E, 1)
            bx = g.concat(conv, bx, 0)
            snap = g.view_3d(bx, d_conv, bx.ne[1], bx.ne[2], bx.nb[1], bx.nb[2], (bx.ne[0] - d_conv) * 4)
            gf.expand(g.cpy(snap, g.view_2d(state, d_conv * E, 1, state.nb[1], 0)))
            conv_out = g.ssm_conv(bx, bd.w(p + "shortconv.conv.weight", f.shortconv_l_cache, E))
            y = g.mul(c_, conv_out)
            y = bd.mm(bd.w(p + "shortconv.out_proj.weight", E, E), y)
            cur = g.reshape(y, y.ne[0], T)
        else:
            hd, nkv = f.head_dim_v, f.kv_heads(il)
            q, k, v = bd.build_qkv(il, cur, hd, f.n_head, hd, nkv, hd, nkv)
            q = bd.build_norm(q, bd.w(p + "attn_q_norm.weight", hd))
            k = bd.build_norm(k, bd.w(p + "attn_k_norm.weight", hd))
            q, k = g.rope(q, inp_pos), g.rope(k, inp_pos)
            cur = bd.build_attn(il, bd.w(p + "attn_output.weight", E, E), None, q, k, v)
        if il == f.n_layers - 1:
            cur, prev = g.get_rows(cur, out_ids), g.get_rows(prev, out_ids)
        cur = g.add(prev, cur)
        ffn_in = bd.build_norm(cur, bd.w(p + "ffn_norm.weight", E))
        if il >= n_dense:
            ffn_out = bd.build_moe_ffn(ffn_in, il, "sigmoid", True, exp_probs_b=bd.w(p + "exp_probs_b.bias", f.n_expert))
        else:
            ffn_out = bd.build_ffn(ffn_in, il)
        cur = g.add(cur, ffn_out)
    cur = bd.build_norm(cur, bd.w("token_embd_norm.weight", E))
    embd = cur
    cur = bd.lm_head(cur)
    return bd.finish(cur, embd, cur)


def _granitehybrid(bd: _Builder) -> Graph:
    """src/models/granite-hybrid.cpp with mamba-base.cpp's build_mamba2_layer."""
    f, gf = bd.f, bd.gf
    E, T = f.n_embd, bd.n_tokens
    d_conv, d_inner, d_state, n_head, n_group = f.ssm_d_conv, f.ssm_d_inner, f.ssm_d_state, f.ssm_dt_rank, f.ssm_n_group
    head_dim = d_inner // n_head
    ch = d_inner + 2 * n_group * d_state
    d_in_proj = 2 * d_inner + 2 * n_group * d_state + n_head
    inpL = bd.build_inp_embd()
    bd.build_rs_inp()
    bd.build_attn_inp()
    out_ids = bd.build_inp_out_ids()
    inp_pos = bd.build_inp_pos()
    rs = bd.inp_rs
    assert rs is not None
    cur = inpL
    for il in range(f.n_layers):
        p = f"blk.{il}."
        inpSA = inpL
        cur = bd.build_norm(inpL, bd.w(p + "attn_norm.weight", E))
        if f.is_recurrent(il):
            conv_all, ssm_all = bd.cache("r", il), bd.cache("s", il)
            conv = bd.build_rs(conv_all, (d_conv - 1) * ch)
            conv = g.reshape(conv, d_conv - 1, ch, 1)
            zxBCdt = bd.mm(bd.w(p + "ssm_in.weight", E, d_in_proj), cur)
            zxBCdt = g.reshape(zxBCdt, zxBCdt.ne[0], T, 1)
            z = g.view_4d(zxBCdt, head_dim, n_head, T, 1, head_dim * 4, zxBCdt.nb[1], zxBCdt.nb[2], 0)
            xBC = g.view_3d(zxBCdt, ch, T, 1, zxBCdt.nb[1], zxBCdt.nb[2], d_inner * 4)
            dt = g.view_3d(zxBCdt, n_head, T, 1, zxBCdt.nb[1], zxBCdt.nb[2], (2 * d_inner + 2 * n_group * d_state) * 4)
            conv_x = g.concat(conv, g.transpose(xBC), 0)
            last = g.view_3d(conv_x, d_conv - 1, ch, 1, conv_x.nb[1], conv_x.nb[2], T * conv_x.nb[0])
            gf.expand(g.cpy(last, g.view_2d(conv_all, (d_conv - 1) * ch, 1, conv_all.nb[1], 0)))
            xBC = g.ssm_conv(conv_x, bd.w(p + "ssm_conv1d.weight", d_conv, ch))
            if bd.has(p + "ssm_conv1d.bias"):
                xBC = g.add(xBC, bd.w(p + "ssm_conv1d.bias", ch))
            xBC = g.unary(xBC)
            x = g.view_4d(xBC, head_dim, n_head, T, 1, head_dim * 4, xBC.nb[1], xBC.nb[2], 0)
            B = g.view_4d(xBC, d_state, n_group, T, 1, d_state * 4, xBC.nb[1], xBC.nb[2], d_inner * 4)
            C = g.view_4d(xBC, d_state, n_group, T, 1, d_state * 4, xBC.nb[1], xBC.nb[2], (d_inner + n_group * d_state) * 4)
            dt = g.add(g.cont(dt), bd.w(p + "ssm_dt.bias", n_head))
            A = bd.w(p + "ssm_a", 1, n_head)

            def ssm_rows(states, ids, x=x, dt=dt, A=A, B=B, C=C, slots=ssm_all.ne[1]):
                ssm = g.reshape(states, d_state, head_dim, n_head, slots)
                return g.ssm_scan(ssm, x, dt, A, B, C, ids)

            y_ssm = bd.build_rs(ssm_all, d_state * d_inner, ssm_rows)
            D = d_state * d_inner
            gf.expand(g.cpy(g.view_3d(y_ssm, D, 1, 1, D * 4, D * 4, x.nelements() * 4),
                            g.view_3d(ssm_all, D, 1, 1, ssm_all.nb[1], ssm_all.nb[1], 0)))
            y = g.view_4d(y_ssm, head_dim, n_head, T, 1, x.nb[1], n_head * x.nb[1], T * n_head * x.nb[1], 0)
            y = g.add(y, g.mul(x, bd.w(p + "ssm_d", 1, n_head)))
            y = g.glu_split(g.cont(z), y)
            if bd.has(p + "ssm_norm.weight"):
                y = g.reshape(y, d_inner // n_group, n_group, T, 1)
                y = bd.build_norm(y, bd.w(p + "ssm_norm.weight", d_inner // n_group, n_group))
            y = g.reshape(y, d_inner, T)
            cur = bd.mm(bd.w(p + "ssm_out.weight", d_inner, E), y)
        else:
            hd, nkv = f.head_dim_k, f.kv_heads(il)
            q, k, v = bd.build_qkv(il, cur, hd, f.n_head, hd, nkv, hd, nkv)
            q, k = g.rope(q, inp_pos), g.rope(k, inp_pos)
            cur = bd.build_attn(il, bd.w(p + "attn_output.weight", f.n_head * hd, E), bd.wo(p + "attn_output.bias", E),
                                q, k, v)
        if il == f.n_layers - 1:
            cur, inpSA = g.get_rows(cur, out_ids), g.get_rows(inpSA, out_ids)
        ffn_inp = g.add(cur, inpSA)
        cur = bd.build_norm(ffn_inp, bd.w(p + "ffn_norm.weight", E))
        if f.is_moe:
            moe = bd.build_moe_ffn(cur, il, "softmax", True, width=f.n_ff)
            if f.n_ff_shexp:
                sh = bd.build_ffn(cur, il, suffix="_shexp", width=f.n_ff_shexp)
                cur = g.add(moe, sh)
            else:
                cur = moe
        else:
            cur = bd.build_ffn(cur, il)
        cur = g.add(cur, ffn_inp)
        inpL = cur
    cur = bd.build_norm(cur, bd.w("output_norm.weight", E))
    embd = cur
    cur = bd.lm_head(cur)
    return bd.finish(cur, embd, cur)


def _qwen35(bd: _Builder) -> Graph:
    """src/models/qwen35.cpp / qwen35moe.cpp: gated delta-net layers (fused GATED_DELTA_NET op, which the
    CPU backend supports) and gated full-attention layers with M-RoPE."""
    f, gf = bd.f, bd.gf
    E, T = f.n_embd, bd.n_tokens
    inpL = bd.build_inp_embd()
    bd.build_rs_inp()
    bd.build_attn_inp()
    inp_pos = bd.build_inp_pos(4)
    out_ids = bd.build_inp_out_ids()
    hk, nk, nv = f.ssm_d_state, f.ssm_n_group, f.ssm_dt_rank
    d_inner = f.ssm_d_inner or hk * nv
    hv = d_inner // nv
    cur = inpL
    # multi-token-prediction layers (nextn) are loaded but not run in the main graph
    for il in range(f.n_layer_kv_from_start if f.n_layer_kv_from_start is not None else f.n_layers):
        p = f"blk.{il}."
        inpSA = inpL
        cur = bd.build_norm(inpL, bd.w(p + "attn_norm.weight", E))
        gf.expand(cur)
        if f.is_recurrent(il):
            qkv_dim = 2 * hk * nk + hv * nv
            qkv_mixed = g.reshape(bd.mm(bd.w(p + "attn_qkv.weight", E, qkv_dim), cur), qkv_dim, T, 1)
            z = bd.mm(bd.w(p + "attn_gate.weight", E, d_inner), cur)
            beta = g.unary(g.reshape(bd.mm(bd.w(p + "ssm_beta.weight", E, nv), cur), 1, nv, T, 1))
            alpha = g.reshape(bd.mm(bd.w(p + "ssm_alpha.weight", E, nv), cur), nv, T, 1)
            gate = g.mul(g.unary(g.add(alpha, bd.w(p + "ssm_dt.bias", nv))), bd.w(p + "ssm_a", nv))
            gate = g.reshape(gate, 1, nv, T, 1)
            conv_all, ssm_all = bd.cache("r", il), bd.cache("s", il)
            ks = f.ssm_d_conv
            conv_states = g.reshape(bd.build_rs(conv_all, (ks - 1) * qkv_dim), ks - 1, qkv_dim, 1)
            conv_input = g.concat(conv_states, g.transpose(qkv_mixed), 0)
            last = g.view_3d(conv_input, ks - 1, qkv_dim, 1, conv_input.nb[1], conv_input.nb[2], T * 4)
            gf.expand(g.cpy(last, g.view_2d(conv_all, (ks - 1) * qkv_dim, 1, conv_all.nb[1], 0)))
            state = g.reshape(bd.build_rs(ssm_all, hv * hv * nv), hv, hv, nv, 1)
            conv_out = g.unary(g.ssm_conv(conv_input, bd.w(p + "ssm_conv1d.weight", ks, qkv_dim)))
            nb1 = qkv_dim * 4
            q_c = g.view_4d(conv_out, hk, nk, T, 1, hk * 4, nb1, nb1 * T, 0)
            k_c = g.view_4d(conv_out, hk, nk, T, 1, hk * 4, nb1, nb1 * T, hk * nk * 4)
            v_c = g.view_4d(conv_out, hv, nv, T, 1, hv * 4, nb1, nb1 * T, 2 * hk * nk * 4)
            q_c, k_c = g.scale(g.rms_norm(q_c)), g.scale(g.rms_norm(k_c))
            out = g.gated_delta_net(q_c, k_c, v_c, gate, beta, state)
            output = g.view_4d(out, hv, nv, T, 1, hv * 4, hv * nv * 4, hv * nv * T * 4, 0)
            new_state = g.view_4d(out, hv, hv, nv, 1, hv * 4, hv * hv * 4, hv * hv * nv * 4, hv * nv * T * 4)
            gf.expand(g.cpy(new_state, g.view_2d(ssm_all, ssm_all.ne[0], 1, ssm_all.nb[1], 0)))
            z2 = g.reshape(z, hv, nv, T, 1)
            normed = g.mul(bd.build_norm(output, bd.w(p + "ssm_norm.weight", hk)), g.unary(z2))
            cur = bd.mm(bd.w(p + "ssm_out.weight", d_inner, E), g.reshape(normed, hv * nv, T, 1))
            cur = g.reshape(cur, E, T)
        else:
            hd, nkv = f.head_dim_k, f.kv_heads(il)
            q_full, k, v = bd.build_qkv(il, cur, 2 * hd, f.n_head, hd, nkv, hd, nkv, reshape=False)
            es = 4
            q = g.view_3d(q_full, hd, f.n_head, T, es * hd * 2, es * hd * 2 * f.n_head, 0)
            q = bd.build_norm(q, bd.w(p + "attn_q_norm.weight", hd))
            k = bd.build_norm(g.reshape(k, hd, nkv, T), bd.w(p + "attn_k_norm.weight", hd))
            gate = g.view_3d(q_full, hd, f.n_head, T, es * hd * 2, es * hd * 2 * f.n_head, es * hd)
            gate = g.cont(gate, hd * f.n_head, T)
            v = g.reshape(v, hd, nkv, T)
            q, k = g.rope(q, inp_pos), g.rope(k, inp_pos)
            cur = bd.build_attn(il, None, None, q, k, v)
            cur = g.mul(cur, g.unary(gate))
            cur = bd.mm(bd.w(p + "attn_output.weight", f.n_head * hd, E), cur)
        cur = g.add(cur, inpSA)
        ffn_residual = cur
        post = bd.build_norm(cur, bd.w(p + "post_attention_norm.weight", E))
        if f.is_moe:
            moe = bd.build_moe_ffn(post, il, "softmax", True)
            if bd.has(p + "ffn_up_shexp.weight"):
                sh = bd.build_ffn(post, il, suffix="_shexp", width=f.n_ff_shexp)
                sg = g.unary(bd.mm(bd.w(p + "ffn_gate_inp_shexp.weight", E), post))
                cur = g.add(moe, g.mul(sh, sg))
            else:
                cur = moe
        else:
            cur = bd.build_ffn(post, il)
        cur = g.add(cur, ffn_residual)
        inpL = cur
    cur = bd.build_norm(cur, bd.w("output_norm.weight", E))
    h_nextn = cur
    cur = g.get_rows(cur, out_ids)
    embd = cur
    cur = bd.lm_head(cur)
    return bd.finish(cur, h_nextn, embd, cur)


def _per_layer_inputs(bd: _Builder, inpL: Tensor, P: int) -> Tensor:
    """build_inp_per_layer + project_per_layer_inputs of gemma3n.cpp / gemma4.cpp: [P, n_tokens, n_layer]."""
    f, T, L = bd.f, bd.n_tokens, bd.f.n_layers
    tokens = set_input(g.new_tensor("i32", T, name="inp_tokens_ple"))
    ple = g.get_rows(bd.w("per_layer_token_embd.weight", P * L, f.n_vocab), tokens)
    ple = g.scale(g.reshape(ple, P, L, T))
    bd.gf.expand(ple)
    proj = g.scale(bd.mm(bd.w("per_layer_model_proj.weight", f.n_embd, P * L), inpL))
    proj = bd.build_norm(g.reshape(proj, P, L, T), bd.w("per_layer_proj_norm.weight", P))
    ple = g.scale(g.add(proj, ple))
    return g.cont(g.permute(ple, 0, 2, 1, 3))


def _slice(x: Tensor, i: int) -> Tensor:
    return g.view_2d(x, x.ne[0], x.ne[1], x.nb[1], i * x.ne[0] * x.ne[1] * x.esize())


def _gemma4(bd: _Builder) -> Graph:
    """src/models/gemma4.cpp: per-layer embeddings, SWA/full layers of different head sizes, KV sharing."""
    f = bd.f
    E, T, L, P = f.n_embd, bd.n_tokens, f.n_layers, f.n_embd_per_layer
    inpL = g.scale(bd.build_inp_embd())
    inp_pos = bd.build_inp_pos()
    bd.build_attn_inp()
    out_ids = bd.build_inp_out_ids()
    inp_per_layer = _per_layer_inputs(bd, inpL, P) if P else None
    rope_freqs = bd.wo("rope_freqs.weight", 1)
    cur = inpL
    for il in range(L):
        p = f"blk.{il}."
        hd = f.head_dim(il)
        nkv = f.kv_heads(il)
        cur = bd.build_norm(inpL, bd.w(p + "attn_norm.weight", E))
        ff = None if f.is_swa_layer(il) else rope_freqs
        q = bd.mm(bd.w(p + "attn_q.weight", E, hd * f.n_head), cur)
        q = g.reshape(q, hd, f.n_head, T)
        q = g.rope(bd.build_norm(q, bd.w(p + "attn_q_norm.weight", hd)), inp_pos, ff)
        wo = bd.w(p + "attn_output.weight", hd * f.n_head, E)
        if f.has_kv(il):
            k = bd.mm(bd.w(p + "attn_k.weight", E, hd * nkv), cur)
            v = bd.mm(bd.w(p + "attn_v.weight", E, hd * nkv), cur) if bd.has(p + "attn_v.weight") else k
            k, v = g.reshape(k, hd, nkv, T), g.reshape(v, hd, nkv, T)
            k = bd.build_norm(k, bd.w(p + "attn_k_norm.weight", hd))
            v = g.rms_norm(v)
            k = g.rope(k, inp_pos, ff)
            cur = bd.build_attn(il, wo, None, q, k, v)
        else:
            cur = bd.build_attn(il, wo, None, q, None, None)
        cur = bd.build_norm(cur, bd.w(p + "post_attention_norm.weight", E))
        attn_out = g.add(cur, inpL)
        cur = bd.build_norm(attn_out, bd.w(p + "ffn_norm.weight", E))
        cur = bd.build_ffn(cur, il)
        cur = bd.build_norm(cur, bd.w(p + "post_ffw_norm.weight", E))
        cur = g.add(cur, attn_out)
        if inp_per_layer is not None:
            pe_in = cur
            cur = g.unary(bd.mm(bd.w(p + "inp_gate.weight", E, P), cur))
            cur = g.mul(cur, _slice(inp_per_layer, il))
            cur = bd.mm(bd.w(p + "proj.weight", P, E), cur)
            cur = bd.build_norm(cur, bd.w(p + "post_norm.weight", E))
            cur = g.add(pe_in, cur)
        if bd.has(p + "layer_output_scale.weight"):
            cur = g.mul(cur, bd.w(p + "layer_output_scale.weight", 1))
        inpL = cur
    cur = bd.build_norm(cur, bd.w("output_norm.weight", E))
    h_nextn = cur
    cur = g.get_rows(cur, out_ids)
    embd = cur
    cur = g.scale(g.unary(g.scale(bd.lm_head(cur))))  # final logit soft-capping (30 unless the file says 0)
    return bd.finish(cur, h_nextn, embd, cur)


def _gemma3n(bd: _Builder) -> Graph:
    """src/models/gemma3n.cpp: AltUp (4 streams of the hidden state), Laurel, per-layer embeddings,
    activation sparsity in the first 10 layers, KV sharing from layer 20."""
    f, gf = bd.f, bd.gf
    E, T, L, A, P = f.n_embd, bd.n_tokens, f.n_layers, GEMMA3N_ALTUP, GEMMA3N_EMBD_ALTUP
    R = GEMMA3N_LAUREL_RANK

    def magnitude(x):
        return g.sqrt(g.sum_rows(g.sqr(x)))

    def router(x, il):
        x = bd.build_norm(x, bd.w(f"blk.{il}.altup_router_norm.weight", E))
        return g.unary(g.mul_mat(bd.w(f"blk.{il}.altup_router.weight", E, A), g.scale(x)))

    inpL = g.scale(bd.build_inp_embd())
    inp_pos = bd.build_inp_pos()
    bd.build_attn_inp()
    inp_per_layer = _per_layer_inputs(bd, inpL, P)
    target = magnitude(inpL)
    altup_added = g.mul_mat(bd.w("altup_proj.weight", E, E, A - 1), g.repeat_4d(inpL, E, T, A - 1, 1))
    new_mag = magnitude(altup_added)
    altup_added = g.div(g.mul(altup_added, target), new_mag)
    inpL = g.concat(inpL, altup_added, 2)
    hd = f.head_dim_k
    for il in range(L):
        p = f"blk.{il}."
        cur = inpL
        # altup_predict
        modalities = router(_slice(cur, GEMMA3N_ALTUP_ACT), il)
        coefs = g.reshape(bd.mm(bd.w(p + "altup_predict_coef.weight", A, A * A), modalities), A, A, T)
        permuted = g.cont(g.permute(cur, 1, 2, 0, 3))
        predictions = g.cont(g.permute(g.mul_mat(permuted, coefs), 0, 2, 1, 3))
        predictions = g.add(predictions, cur)
        active = _slice(predictions, GEMMA3N_ALTUP_ACT)
        cur = bd.build_norm(active, bd.w(p + "attn_norm.weight", E))
        # laurel
        lt = bd.mm(bd.w(p + "laurel_r.weight", R, E), bd.mm(bd.w(p + "laurel_l.weight", E, R), cur))
        laurel_out = g.add(bd.build_norm(lt, bd.w(p + "laurel_post_norm.weight", E)), cur)
        nkv = f.kv_heads(il)
        wo = bd.w(p + "attn_output.weight", hd * f.n_head, E)
        if f.has_kv(il):
            q, k, v = bd.build_qkv(il, cur, hd, f.n_head, hd, nkv, hd, nkv)
            q = bd.build_norm(q, bd.w(p + "attn_q_norm.weight", hd))
            k = bd.build_norm(k, bd.w(p + "attn_k_norm.weight", hd))
            v = g.rms_norm(v)
            q, k = g.rope(q, inp_pos), g.rope(k, inp_pos)
            cur = bd.build_attn(il, wo, None, q, k, v)
        else:
            q = g.reshape(bd.mm(bd.w(p + "attn_q.weight", E, hd * f.n_head), cur), hd, f.n_head, T)
            q = g.rope(bd.build_norm(q, bd.w(p + "attn_q_norm.weight", hd)), inp_pos)
            cur = bd.build_attn(il, wo, None, q, None, None)
        cur = bd.build_norm(cur, bd.w(p + "post_attention_norm.weight", E))
        cur = g.add(cur, active)
        attn_laurel = g.scale(g.add(cur, laurel_out))
        cur = bd.build_norm(attn_laurel, bd.w(p + "ffn_norm.weight", E))
        F = f.ff(il)
        up = bd.mm(bd.w(p + "ffn_up.weight", E, F), cur)
        gate = bd.mm(bd.w(p + "ffn_gate.weight", E, F), cur)
        if il < GEMMA3N_SPARSE_LAYERS:  # gaussian_topk
            m = g.mean(gate)
            std = g.sqrt(g.scale(g.sum_rows(g.sqr(g.sub(gate, m)))))
            cutoff = g.add(m, g.scale(std))
            gate = g.unary(g.sub(gate, cutoff))
        gate = g.unary(gate)
        cur = bd.mm(bd.w(p + "ffn_down.weight", F, E), g.mul(up, gate))
        cur = bd.build_norm(cur, bd.w(p + "post_ffw_norm.weight", E))
        gated = g.add(cur, attn_laurel)
        # altup_correct
        modalities = router(gated, il)
        innovation = g.sub(gated, _slice(predictions, GEMMA3N_ALTUP_ACT))
        coefs = g.scale(bd.mm(bd.w(p + "altup_correct_coef.weight", A, A), modalities))
        coefs = g.cont(g.transpose(coefs), 1, T, A)
        innovation = g.repeat_4d(innovation, E, T, A, 1)
        corrected = g.add(g.mul(innovation, coefs), predictions)
        first = g.mul(_slice(corrected, GEMMA3N_ALTUP_ACT), bd.w(p + "altup_correct_scale.weight", E))
        first = g.unary(bd.mm(bd.w(p + "inp_gate.weight", E, P), first))
        first = g.mul(first, _slice(inp_per_layer, il))
        first = bd.build_norm(bd.mm(bd.w(p + "proj.weight", P, E), first), bd.w(p + "post_norm.weight", E))
        es = corrected.esize()
        rest = g.view_3d(corrected, E, T, A - 1, E * es, E * T * es, E * T * es)
        corrected = g.concat(_slice(corrected, 0), g.add(rest, first), 2)
        inpL = corrected
    cur = inpL
    target = magnitude(_slice(cur, GEMMA3N_ALTUP_ACT))
    es = cur.esize()
    alt = g.view_3d(cur, E, T, A - 1, E * es, E * T * es, E * T * es)
    unembd = g.mul_mat(bd.w("altup_unembd_proj.weight", E, E, A - 1), alt)
    new_mag = magnitude(unembd)
    unembd = g.div(g.mul(unembd, target), new_mag)
    cur = _slice(cur, 0)
    for i in range(A - 1):
        cur = g.add(cur, _slice(unembd, i))
    cur = g.scale(cur)
    out_ids = bd.build_inp_out_ids()
    cur = g.get_rows(cur, out_ids)
    cur = bd.build_norm(cur, bd.w("output_norm.weight", E))
    embd = cur
    cur = g.scale(bd.lm_head(cur))
    cur = g.scale(g.unary(cur))
    gf.expand(cur)
    return bd.finish(cur, embd, cur)


BUILDERS = {"gemma3": _gemma3, "qwen3moe": _qwen3moe, "gpt-oss": _gpt_oss, "lfm2": _lfm2, "lfm2moe": _lfm2,
            "granitehybrid": _granitehybrid, "qwen35": _qwen35, "qwen35moe": _qwen35, "gemma3n": _gemma3n,
            "gemma4": _gemma4, **{a: _dense for a in DENSE_ARCHS}}


def build_graph(f, names: frozenset[str], b: Batch) -> Graph:
    return BUILDERS[f.architecture](_Builder(f, names, b))


def tensor_names(f) -> frozenset[str]:
    """The weights the graph can use: the file's tensors, else the architecture's layout; a catalog entry of
    an architecture without one (gemma3) has none of the optional tensors (biases) the graphs ask for."""
    if f.exact_tensors is not None:
        return frozenset(t.name for t in f.exact_tensors)
    from slmplan.arch import has_layout, layout

    if has_layout(f.architecture) or f.architecture in DENSE_ARCHS:
        return frozenset(t.name for t in layout(f))
    return frozenset()


def supported(f, n_seq: int, type_k: str, type_v: str, flash_attn: bool = False) -> bool:
    """The graph is rebuilt for one sequence and f16/f32/bf16 or block-quantized K/V (a quantized V cache
    needs flash attention: llama.cpp refuses it otherwise)."""
    plain = ("f16", "f32", "bf16")
    if f.architecture == "gemma4" and f.n_expert:  # Gemma 4's MoE layers (26B-A4B) are not rebuilt
        return False
    if f.architecture in ("lfm2", "lfm2moe") and f.n_swa:  # LFM2 with a sliding window: not rebuilt
        return False
    return (f.architecture in GRAPH_ARCHS and n_seq == 1 and (type_k in plain or type_k in g.BLOCK_TYPES)
            and (type_v in plain or (type_v in g.BLOCK_TYPES and flash_attn)))


@lru_cache(maxsize=512)
def compute_buffer_bytes(f, n_ctx: int, n_ctx_swa: int, n_ubatch: int, flash_attn: bool,
                         type_k: str = "f16", type_v: str = "f16") -> int | None:
    """llama.cpp's CPU compute buffer for ``f`` (one sequence; ``n_ctx`` cells padded as llama.cpp pads them):
    the larger of the prompt graph (min(n_ctx, n_ubatch) tokens, one output each) and the one-token graph
    (built only for ubatches under TG_GRAPH_BELOW tokens, the only ones where it can be the larger)."""
    if not supported(f, 1, type_k, type_v, flash_attn):
        return None
    names = tensor_names(f)
    n_tokens = min(n_ctx, n_ubatch)
    size = g.allocate(build_graph(f, names, Batch(n_tokens, n_tokens, n_ctx, n_ctx_swa, flash_attn, type_k, type_v)))
    if n_tokens < TG_GRAPH_BELOW:
        size = max(size, g.allocate(build_graph(f, names, Batch(1, 1, n_ctx, n_ctx_swa, flash_attn, type_k, type_v))))
    return size
