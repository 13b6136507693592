"""Tensor layouts of the architectures beyond the plain dense decoder, as llama.cpp creates them.

Each layout lists the tensors that llama.cpp's ``load_arch_tensors`` (src/models/<arch>.cpp) asks the
GGUF file for, with their shapes (ggml order: ne0 first). A catalog entry of one of these
architectures gets its weights from this list; tests/test_architectures.py writes GGUF files with
exactly these tensors and loads them in llama.cpp, which refuses a missing, extra or mis-shaped
tensor, so the layout is checked against the runtime itself.

Architectures that are neither here nor the dense decoders of ``DENSE`` are not modelled: the
planner refuses catalog entries of them and labels a GGUF file of them (its weights are exact from
the header, but KV/state and speed would be a guess).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

# Dense decoders the classic role list in slmplan/model.py describes (llama-like blocks).
DENSE = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "smollm3",
                   "granite", "olmo2", "exaone", "internlm2", "stablelm", "starcoder2", "cohere2"})


@dataclass(frozen=True)
class LayoutTensor:
    name: str
    ne: tuple[int, ...]
    role: str  # quant-rule role: token_embd/output/attn_*/ffn_*/norm/keep/other
    layer: int
    # share read per generated token: n_expert_used / n_expert for experts, one row of a lookup table
    active_fraction: float = 1.0

    @property
    def n_elements(self) -> int:
        return prod(self.ne)


def _t(name, ne, role, layer=-1, active=1.0):
    return LayoutTensor(name, tuple(int(x) for x in ne), role, layer, active)


def _head(f, out, output_norm="output_norm", output_required=False):
    E, V = f.n_embd, f.n_vocab
    out.append(_t("token_embd.weight", (E, V), "token_embd"))
    out.append(_t(f"{output_norm}.weight", (E,), "norm"))
    if output_required or not f.tied_embeddings:
        out.append(_t("output.weight", (E, V), "output"))


def _qkv(f, out, i, q_dim, qk_norm=False, post_norm=False):
    E = f.n_embd
    k, v = f.kv_dims(i)
    out.append(_t(f"blk.{i}.attn_norm.weight", (E,), "norm", i))
    out.append(_t(f"blk.{i}.attn_q.weight", (E, q_dim), "attn_q", i))
    out.append(_t(f"blk.{i}.attn_k.weight", (E, k), "attn_k", i))
    out.append(_t(f"blk.{i}.attn_v.weight", (E, v), "attn_v", i))
    if qk_norm:
        out.append(_t(f"blk.{i}.attn_q_norm.weight", (f.head_dim(i),), "norm", i))
        out.append(_t(f"blk.{i}.attn_k_norm.weight", (f.head_dim(i),), "norm", i))
    if post_norm:
        out.append(_t(f"blk.{i}.post_attention_norm.weight", (E,), "norm", i))


def _ffn(f, out, i, n_ff=None, norm=True):
    E, F = f.n_embd, n_ff or f.ff(i)
    if norm:
        out.append(_t(f"blk.{i}.ffn_norm.weight", (E,), "norm", i))
    out.append(_t(f"blk.{i}.ffn_gate.weight", (E, F), "ffn_gate", i))
    out.append(_t(f"blk.{i}.ffn_up.weight", (E, F), "ffn_up", i))
    out.append(_t(f"blk.{i}.ffn_down.weight", (F, E), "ffn_down", i))


def _experts(f, out, i, bias=False, width=None):
    E, Fx, X = f.n_embd, width or f.n_ff_exp, f.n_expert
    a = f.n_expert_used / f.n_expert
    out.append(_t(f"blk.{i}.ffn_gate_inp.weight", (E, X), "keep32", i))
    out.append(_t(f"blk.{i}.ffn_gate_exps.weight", (E, Fx, X), "ffn_gate", i, a))
    out.append(_t(f"blk.{i}.ffn_down_exps.weight", (Fx, E, X), "ffn_down", i, a))
    out.append(_t(f"blk.{i}.ffn_up_exps.weight", (E, Fx, X), "ffn_up", i, a))
    if bias:
        out.append(_t(f"blk.{i}.ffn_gate_inp.bias", (X,), "norm", i))
        out.append(_t(f"blk.{i}.ffn_gate_exps.bias", (Fx, X), "norm", i, a))
        out.append(_t(f"blk.{i}.ffn_down_exps.bias", (E, X), "norm", i, a))
        out.append(_t(f"blk.{i}.ffn_up_exps.bias", (Fx, X), "norm", i, a))


def _qwen3moe(f):
    out: list[LayoutTensor] = []
    _head(f, out)
    q = f.n_head * f.head_dim_k
    for i in range(f.n_layers):
        _qkv(f, out, i, q, qk_norm=True)
        out.append(_t(f"blk.{i}.attn_output.weight", (q, f.n_embd), "attn_output", i))
        out.append(_t(f"blk.{i}.ffn_norm.weight", (f.n_embd,), "norm", i))
        _experts(f, out, i)
    return out


def _gpt_oss(f):
    out: list[LayoutTensor] = []
    _head(f, out, output_required=True)
    q = f.n_head * f.head_dim_k
    for i in range(f.n_layers):
        _qkv(f, out, i, q, post_norm=True)
        out.append(_t(f"blk.{i}.attn_q.bias", (q,), "norm", i))
        out.append(_t(f"blk.{i}.attn_k.bias", (f.kv_dims(i)[0],), "norm", i))
        out.append(_t(f"blk.{i}.attn_v.bias", (f.kv_dims(i)[1],), "norm", i))
        out.append(_t(f"blk.{i}.attn_output.weight", (q, f.n_embd), "attn_output", i))
        out.append(_t(f"blk.{i}.attn_output.bias", (f.n_embd,), "norm", i))
        out.append(_t(f"blk.{i}.attn_sinks.weight", (f.n_head,), "norm", i))
        _experts(f, out, i, bias=True)
    return out


def _lfm2(f):
    E = f.n_embd
    out: list[LayoutTensor] = []
    _head(f, out, output_norm="token_embd_norm")
    for i in range(f.n_layers):
        out.append(_t(f"blk.{i}.ffn_norm.weight", (E,), "norm", i))
        if f.is_moe and i >= f.n_layer_dense_lead:
            _experts(f, out, i)
            out.append(_t(f"blk.{i}.exp_probs_b.bias", (f.n_expert,), "norm", i))
        else:
            _ffn(f, out, i, norm=False)
        if f.is_recurrent(i):
            out.append(_t(f"blk.{i}.attn_norm.weight", (E,), "norm", i))
            out.append(_t(f"blk.{i}.shortconv.conv.weight", (f.shortconv_l_cache, E), "keep32", i))
            out.append(_t(f"blk.{i}.shortconv.in_proj.weight", (E, 3 * E), "other", i))
            out.append(_t(f"blk.{i}.shortconv.out_proj.weight", (E, E), "other", i))
        else:
            _qkv(f, out, i, E, qk_norm=True)
            out.append(_t(f"blk.{i}.attn_output.weight", (E, E), "attn_output", i))
    return out


def _granitehybrid(f):
    E = f.n_embd
    d_inner, d_state, n_group, n_head, d_conv = f.ssm_d_inner, f.ssm_d_state, f.ssm_n_group, f.ssm_dt_rank, f.ssm_d_conv
    d_in_proj = 2 * d_inner + 2 * n_group * d_state + n_head
    out: list[LayoutTensor] = []
    _head(f, out)
    for i in range(f.n_layers):
        if f.is_recurrent(i):
            out.append(_t(f"blk.{i}.attn_norm.weight", (E,), "norm", i))
            out.append(_t(f"blk.{i}.ssm_in.weight", (E, d_in_proj), "other", i))
            out.append(_t(f"blk.{i}.ssm_conv1d.weight", (d_conv, d_inner + 2 * n_group * d_state), "keep32", i))
            out.append(_t(f"blk.{i}.ssm_conv1d.bias", (d_inner + 2 * n_group * d_state,), "norm", i))
            out.append(_t(f"blk.{i}.ssm_dt.bias", (n_head,), "norm", i))
            out.append(_t(f"blk.{i}.ssm_a", (1, n_head), "norm", i))
            out.append(_t(f"blk.{i}.ssm_d", (1, n_head), "norm", i))
            out.append(_t(f"blk.{i}.ssm_norm.weight", (d_inner // n_group, n_group), "norm", i))
            out.append(_t(f"blk.{i}.ssm_out.weight", (d_inner, E), "other", i))
        else:
            q = f.n_head * f.head_dim_k
            _qkv(f, out, i, q)
            out.append(_t(f"blk.{i}.attn_output.weight", (q, E), "attn_output", i))
        if f.is_moe:
            out.append(_t(f"blk.{i}.ffn_norm.weight", (E,), "norm", i))
            _experts(f, out, i, width=f.n_ff)  # granite-hybrid.cpp sizes the experts with n_ff
            if f.n_ff_shexp:
                S = f.n_ff_shexp
                out.append(_t(f"blk.{i}.ffn_gate_shexp.weight", (E, S), "ffn_gate", i))
                out.append(_t(f"blk.{i}.ffn_up_shexp.weight", (E, S), "ffn_up", i))
                out.append(_t(f"blk.{i}.ffn_down_shexp.weight", (S, E), "ffn_down", i))
        else:
            _ffn(f, out, i)
    return out


def _qwen35(f):
    E = f.n_embd
    hk, nk, nv = f.ssm_d_state, f.ssm_n_group, f.ssm_dt_rank
    key_dim, value_dim = hk * nk, hk * nv
    out: list[LayoutTensor] = []
    _head(f, out)
    for i in range(f.n_layers):
        out.append(_t(f"blk.{i}.attn_norm.weight", (E,), "norm", i))
        out.append(_t(f"blk.{i}.post_attention_norm.weight", (E,), "norm", i))
        if f.is_recurrent(i):
            out.append(_t(f"blk.{i}.attn_qkv.weight", (E, 2 * key_dim + value_dim), "attn_qkv", i))
            out.append(_t(f"blk.{i}.attn_gate.weight", (E, value_dim), "other", i))
            out.append(_t(f"blk.{i}.ssm_conv1d.weight", (f.ssm_d_conv, 2 * key_dim + value_dim), "keep32", i))
            out.append(_t(f"blk.{i}.ssm_dt.bias", (nv,), "norm", i))
            out.append(_t(f"blk.{i}.ssm_a", (nv,), "norm", i))
            out.append(_t(f"blk.{i}.ssm_beta.weight", (E, nv), "other", i))
            out.append(_t(f"blk.{i}.ssm_alpha.weight", (E, nv), "other", i))
            out.append(_t(f"blk.{i}.ssm_norm.weight", (hk,), "norm", i))
            out.append(_t(f"blk.{i}.ssm_out.weight", (value_dim, E), "other", i))
        else:
            q = f.n_head * f.head_dim_k
            k, v = f.kv_dims(i)
            out.append(_t(f"blk.{i}.attn_q.weight", (E, 2 * q), "attn_q", i))  # query and its output gate
            out.append(_t(f"blk.{i}.attn_k.weight", (E, k), "attn_k", i))
            out.append(_t(f"blk.{i}.attn_v.weight", (E, v), "attn_v", i))
            out.append(_t(f"blk.{i}.attn_output.weight", (q, E), "attn_output", i))
            out.append(_t(f"blk.{i}.attn_q_norm.weight", (f.head_dim_k,), "norm", i))
            out.append(_t(f"blk.{i}.attn_k_norm.weight", (f.head_dim_k,), "norm", i))
        if f.is_moe:
            _experts(f, out, i)
            S = f.n_ff_shexp
            out.append(_t(f"blk.{i}.ffn_gate_inp_shexp.weight", (E,), "norm", i))
            out.append(_t(f"blk.{i}.ffn_gate_shexp.weight", (E, S), "ffn_gate", i))
            out.append(_t(f"blk.{i}.ffn_up_shexp.weight", (E, S), "ffn_up", i))
            out.append(_t(f"blk.{i}.ffn_down_shexp.weight", (S, E), "ffn_down", i))
        else:
            _ffn(f, out, i, norm=False)
    return out


def _qwen35_mtp(f):
    """The multi-token-prediction (MTP, "NextN") block Qwen3.5 ships after its trunk (config.json
    ``mtp_num_hidden_layers``), as llama.cpp's converter writes it since MTP support (layer n_layers + k,
    ``{arch}.nextn_predict_layers``) and as ``load_block_mtp`` in src/models/qwen35.cpp / qwen35moe.cpp
    expects it: a full-attention decoder block plus ``nextn.eh_proj`` / ``enorm`` / ``hnorm`` /
    ``shared_head_norm``. llama.cpp skips these tensors at load unless MTP speculative decoding asks for
    them (``load_mtp``), so they count in the file, not in the loaded weights."""
    E = f.n_embd
    q = f.n_head * f.head_dim_k
    k, v = f.head_dim_k * f.n_head_kv, f.head_dim_v * f.n_head_kv
    out: list[LayoutTensor] = []
    for i in range(f.n_layers, f.n_layers + f.n_layer_nextn):
        out += [_t(f"blk.{i}.attn_norm.weight", (E,), "norm", i),
                _t(f"blk.{i}.post_attention_norm.weight", (E,), "norm", i),
                _t(f"blk.{i}.attn_q.weight", (E, 2 * q), "attn_q", i),  # query and its output gate
                _t(f"blk.{i}.attn_k.weight", (E, k), "attn_k", i),
                _t(f"blk.{i}.attn_v.weight", (E, v), "attn_v", i),
                _t(f"blk.{i}.attn_output.weight", (q, E), "attn_output", i),
                _t(f"blk.{i}.attn_q_norm.weight", (f.head_dim_k,), "norm", i),
                _t(f"blk.{i}.attn_k_norm.weight", (f.head_dim_k,), "norm", i)]
        if f.is_moe:
            _experts(f, out, i)
            S = f.n_ff_shexp
            out += [_t(f"blk.{i}.ffn_gate_inp_shexp.weight", (E,), "norm", i),
                    _t(f"blk.{i}.ffn_gate_shexp.weight", (E, S), "ffn_gate", i),
                    _t(f"blk.{i}.ffn_up_shexp.weight", (E, S), "ffn_up", i),
                    _t(f"blk.{i}.ffn_down_shexp.weight", (S, E), "ffn_down", i)]
        else:
            _ffn(f, out, i, n_ff=f.n_ff, norm=False)
        out += [_t(f"blk.{i}.nextn.eh_proj.weight", (2 * E, E), "other", i),
                _t(f"blk.{i}.nextn.enorm.weight", (E,), "norm", i),
                _t(f"blk.{i}.nextn.hnorm.weight", (E,), "norm", i),
                _t(f"blk.{i}.nextn.shared_head_norm.weight", (E,), "norm", i)]
    return out


GEMMA3N_ALTUP, GEMMA3N_LAUREL_RANK = 4, 64  # llama_hparams defaults (src/llama-hparams.h)


def _gemma3n(f):
    E, P, L, A = f.n_embd, f.n_embd_per_layer, f.n_layers, GEMMA3N_ALTUP
    out: list[LayoutTensor] = []
    _head(f, out)
    out += [_t("altup_proj.weight", (E, E, A - 1), "keep"), _t("altup_unembd_proj.weight", (E, E, A - 1), "keep"),
            _t("per_layer_token_embd.weight", (P * L, f.n_vocab), "per_layer_embd", -1, 1 / f.n_vocab),
            _t("per_layer_model_proj.weight", (E, P * L), "keep"), _t("per_layer_proj_norm.weight", (P,), "norm")]
    q = f.n_head * f.head_dim_k
    for i in range(L):
        _qkv(f, out, i, q, qk_norm=True, post_norm=True)
        out.append(_t(f"blk.{i}.attn_output.weight", (q, E), "attn_output", i))
        _ffn(f, out, i)
        out.append(_t(f"blk.{i}.post_ffw_norm.weight", (E,), "norm", i))
        out += [_t(f"blk.{i}.inp_gate.weight", (E, P), "other", i), _t(f"blk.{i}.proj.weight", (P, E), "other", i),
                _t(f"blk.{i}.post_norm.weight", (E,), "norm", i),
                _t(f"blk.{i}.altup_correct_coef.weight", (A, A), "keep", i),
                _t(f"blk.{i}.altup_correct_scale.weight", (E,), "norm", i),
                _t(f"blk.{i}.altup_predict_coef.weight", (A, A * A), "keep", i),
                _t(f"blk.{i}.altup_router.weight", (E, A), "keep", i),
                _t(f"blk.{i}.altup_router_norm.weight", (E,), "norm", i),
                _t(f"blk.{i}.laurel_l.weight", (E, GEMMA3N_LAUREL_RANK), "keep", i),
                _t(f"blk.{i}.laurel_r.weight", (GEMMA3N_LAUREL_RANK, E), "keep", i),
                _t(f"blk.{i}.laurel_post_norm.weight", (E,), "norm", i)]
    return out


def _gemma4(f):
    E, P, L = f.n_embd, f.n_embd_per_layer, f.n_layers
    out: list[LayoutTensor] = []
    _head(f, out)
    if P:
        out += [_t("per_layer_token_embd.weight", (P * L, f.n_vocab), "per_layer_embd", -1, 1 / f.n_vocab),
                _t("per_layer_model_proj.weight", (E, P * L), "keep"), _t("per_layer_proj_norm.weight", (P,), "norm")]
    first_full = True
    for i in range(L):
        hd = f.head_dim(i)
        q = f.n_head * hd
        k, v = f.kv_dims(i)
        out.append(_t(f"blk.{i}.attn_norm.weight", (E,), "norm", i))
        out.append(_t(f"blk.{i}.attn_q.weight", (E, q), "attn_q", i))
        if f.has_kv(i):  # KV-shared layers have no K/V projections of their own
            out.append(_t(f"blk.{i}.attn_k.weight", (E, k), "attn_k", i))
            out.append(_t(f"blk.{i}.attn_v.weight", (E, v), "attn_v", i))
        out.append(_t(f"blk.{i}.attn_output.weight", (q, E), "attn_output", i))
        out.append(_t(f"blk.{i}.attn_q_norm.weight", (hd,), "norm", i))
        if f.has_kv(i):
            out.append(_t(f"blk.{i}.attn_k_norm.weight", (hd,), "norm", i))
        out.append(_t(f"blk.{i}.post_attention_norm.weight", (E,), "norm", i))
        if not f.is_swa_layer(i) and first_full:  # one proportional-rope table, shared by the full layers
            out.append(_t("rope_freqs.weight", (hd // 2,), "norm", i))
            first_full = False
        _ffn(f, out, i)
        out.append(_t(f"blk.{i}.post_ffw_norm.weight", (E,), "norm", i))
        if P:
            out += [_t(f"blk.{i}.inp_gate.weight", (E, P), "other", i), _t(f"blk.{i}.proj.weight", (P, E), "other", i),
                    _t(f"blk.{i}.post_norm.weight", (E,), "norm", i)]
    return out


def _dense(f):
    """A llama-like block (llama, qwen3, smollm3, granite), for writing test files; catalog estimates of these
    architectures keep the role list of slmplan/model.py."""
    out: list[LayoutTensor] = []
    _head(f, out)
    q = f.n_head * f.head_dim_k
    for i in range(f.n_layers):
        _qkv(f, out, i, q, qk_norm=f.architecture == "qwen3")
        out.append(_t(f"blk.{i}.attn_output.weight", (q, f.n_embd), "attn_output", i))
        _ffn(f, out, i)
    return out


# Architectures whose GGUF files may carry trailing MTP blocks, and their layout (see _qwen35_mtp).
MTP_LAYOUTS = {"qwen35": _qwen35_mtp, "qwen35moe": _qwen35_mtp}

LAYOUTS = {"qwen3moe": _qwen3moe, "gpt-oss": _gpt_oss, "lfm2": _lfm2, "lfm2moe": _lfm2,
           "granitehybrid": _granitehybrid, "qwen35": _qwen35, "qwen35moe": _qwen35,
           "gemma3n": _gemma3n, "gemma4": _gemma4}


# Not autoregressive text decoders: encoders (embeddings), encoder-decoders and diffusion LMs. A
# decoder's KV/speed estimate of them would be meaningless, so they are refused, not estimated.
NOT_DECODERS = frozenset({"bert", "modern-bert", "nomic-bert", "nomic-bert-moe", "neo-bert", "jina-bert-v2",
                          "jina-bert-v3", "eurobert", "t5", "t5encoder", "clip", "wavtokenizer-dec",
                          "gemma-embedding", "llama-embed", "dream", "llada", "llada-moe", "rnd1"})


def check_estimable(f) -> None:
    """Refuse models whose memory and speed slmplan cannot estimate (one-line error, exit 2)."""
    from slmplan.errors import BadInputError

    if f.architecture in NOT_DECODERS:
        raise BadInputError(f"{f.id}: architecture '{f.architecture}' is not an autoregressive text decoder "
                            "(an encoder, encoder-decoder or diffusion model): slmplan's estimates do not apply",
                            "Plan a decoder model (llama, qwen3, gemma3, lfm2, ...); 'slmplan inspect' still shows the file")


def has_layout(arch: str) -> bool:
    return arch in LAYOUTS


def is_modelled(arch: str) -> bool:
    return arch in LAYOUTS or arch in DENSE


def layout(f) -> list[LayoutTensor]:
    if f.architecture in ("llama", "qwen3", "smollm3", "mistral", "granite"):
        return _dense(f)
    return LAYOUTS[f.architecture](f)


def mtp_layout(f) -> list[LayoutTensor]:
    """The tensors of the model's MTP blocks (layers n_layers .. n_layers + n_layer_nextn - 1), or none."""
    if not f.n_layer_nextn:
        return []
    if f.architecture not in MTP_LAYOUTS:
        from slmplan.errors import BadInputError

        raise BadInputError(f"{f.id}: multi-token-prediction layers of architecture '{f.architecture}' are not modelled",
                            f"Only {', '.join(sorted(MTP_LAYOUTS))} MTP blocks are; leave out mtp_layers")
    return MTP_LAYOUTS[f.architecture](f)


_IQ2_FAMILY = ("IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M")
# llama-quant.cpp bumps these for models with exactly 8 experts (Mixtral-like), after its other rules
_EIGHT_EXPERT_OUTPUT_Q5K = ("Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S",
                            "IQ3_M", "IQ4_XS")


def _eight_experts(q: str, role: str, gt):
    from slmplan.ggufconst import GGMLQuantizationType as T  # not gguf's: importing gguf loads numpy

    if q in _IQ2_FAMILY:
        return {"attn_k": T.Q4_K, "attn_output": T.Q5_K}.get(role, gt)
    if role in ("attn_k", "attn_v", "attn_qkv"):
        return T.Q8_0
    if role == "attn_output" and q in _EIGHT_EXPERT_OUTPUT_Q5K:
        return T.Q5_K
    return gt


def _ggml_type(q: str, t: LayoutTensor, f, v_index: tuple[int, int] | None = None, n_layer_all: int | None = None):
    from slmplan.estimate.quants import _K_FALLBACK, FTYPE_BASE, TensorRole, ggml_type_for
    from slmplan.ggufconst import GGML_QUANT_SIZES
    from slmplan.ggufconst import GGMLQuantizationType as T  # not gguf's: importing gguf loads numpy

    if t.role == "norm" or len([d for d in t.ne if d > 1]) <= 1 or t.role == "keep32":
        return T.F32
    base = FTYPE_BASE[q]
    if t.role == "keep":  # llama-quant.cpp leaves these as converted (F16 in a 16-bit conversion)
        return T.F16 if base not in (T.F32, T.BF16) else base
    role = {"per_layer_embd": "token_embd", "other": "ffn_up"}.get(t.role, t.role)
    # llama.cpp indexes attn_v/attn_qkv rules by the tensor's rank among those tensors, not by layer:
    # hybrid and KV-shared layers have none, so the two differ
    # the other layer rules use the layer index out of all blocks in the file (llama.cpp's n_layer_all, MTP included)
    layer, n = v_index if v_index is not None else (t.layer, n_layer_all or f.n_layers)
    # untied: the output tensor exists; tied: token_embd (and Gemma's per-layer table, the same
    # category in llama-quant.cpp) is quantized like the output
    gt = ggml_type_for(q, TensorRole(role, layer, n, t.ne[0], t.n_elements, len(t.ne) >= 3 and t.ne[2] > 1),
                       f.tied_embeddings and t.role in ("token_embd", "per_layer_embd"))
    if f.n_expert == 8 and base not in (T.F32, T.F16, T.BF16):
        gt = _eight_experts(q, role, gt)
        if t.ne[0] % GGML_QUANT_SIZES[gt][0]:
            gt = _K_FALLBACK.get(gt, T.F16)
    return gt


def synthesize(f, q: str, with_mtp: bool = False):
    """WeightTensors of a catalog entry of a layout architecture, quantized with llama.cpp's rules.

    ``with_mtp``: the file also holds the model's MTP blocks (returned after the trunk, layer >= n_layers);
    llama-quant.cpp then counts them in its attn_v rank and n_layer_all, which shifts a few trunk types."""
    from slmplan.estimate.quants import NON_GGUF_FORMATS, tensor_bytes
    from slmplan.model import WeightTensor

    out: list[WeightTensor] = []
    tensors = layout(f) + (mtp_layout(f) if with_mtp else [])
    n_all = f.n_layers + (f.n_layer_nextn if with_mtp else 0)
    v_like = [t.name for t in tensors if t.role in ("attn_v", "attn_qkv")]
    v_rank = {name: (i, len(v_like)) for i, name in enumerate(v_like)}
    for t in tensors:
        if q in NON_GGUF_FORMATS:
            fmt = NON_GGUF_FORMATS[q]
            bpw = 32 if t.role == "norm" else fmt["embed_bpw"] if t.role in ("token_embd", "per_layer_embd") else (
                fmt["lm_head_bpw"] if t.role == "output" else fmt["linear_bpw"])
            out.append(WeightTensor(t.name, _base_role(t), t.layer, t.ne[0], t.n_elements,
                                    int(t.n_elements * bpw / 8), f"{bpw:g}bpw", t.active_fraction))
            continue
        gt = _ggml_type(q, t, f, v_rank.get(t.name), n_all)
        out.append(WeightTensor(t.name, _base_role(t), t.layer, t.ne[0], t.n_elements,
                                tensor_bytes(gt, t.n_elements), gt.name, t.active_fraction))
    return tuple(out)


def _base_role(t: LayoutTensor) -> str:
    if t.role == "norm":
        return "norm"
    return t.name.split(".")[-2] if t.name.startswith("blk.") else t.name.split(".")[0]
