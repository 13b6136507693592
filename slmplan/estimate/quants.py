"""Quantization facts: bits per weight of each GGML type and llama.cpp's per-tensor quant mixes.

GGML type sizes are the ``gguf`` package's ``GGML_QUANT_SIZES`` (maintained with llama.cpp; copied in ``ggufconst``).
The mixes follow ``llama_tensor_get_type`` in llama.cpp's ``src/llama-quant.cpp``: which tensors a
file type such as ``Q4_K_M`` stores at higher precision (output/tied embeddings, half of ``attn_v``
and ``ffn_down``), and the fallback when a row length is not a multiple of the 256-wide K-quant
super-block. The rules are a simplification for the common types; ``tests/test_catalog.py`` checks
them against the real GGUF files the tests use and against published file sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from slmplan.ggufconst import GGML_QUANT_SIZES
from slmplan.ggufconst import GGMLQuantizationType as T
from slmplan.schema.catalog import QUANT_ALIASES

# Formats other than GGUF: (bits per weight of quantized linear layers, bits of embeddings/lm_head).
# AWQ/GPTQ (group 128) keep embeddings and lm_head in FP16; 4-bit weight + FP16 scale + 4-bit zero per
# 128 weights = 4 + 16/128 + 4/128 = 4.156 bits. ONNX Runtime GenAI's builder writes MatMulNBits with
# block 32 and f32 scales for CPU: 4 + 32/32 = 5 bits (measured). INT8: 8 bits + per-channel scales.
NON_GGUF_FORMATS: dict[str, dict] = {
    "AWQ-INT4": {"linear_bpw": 4.156, "embed_bpw": 16.0, "lm_head_bpw": 16.0,
                 "source": "AWQ/GPTQ group-128 packing: 4-bit weights + FP16 scale + 4-bit zero per group; embeddings and lm_head stay FP16 (AutoAWQ default)"},
    "GPTQ-INT4": {"linear_bpw": 4.156, "embed_bpw": 16.0, "lm_head_bpw": 16.0,
                  "source": "GPTQ group-128 packing (as AWQ); embeddings and lm_head stay FP16"},
    "INT8": {"linear_bpw": 8.0, "embed_bpw": 16.0, "lm_head_bpw": 16.0,
             "source": "per-channel INT8 weights (scales negligible); embeddings and lm_head FP16"},
    "ONNX-INT4": {"linear_bpw": 5.0, "embed_bpw": 5.0, "lm_head_bpw": 5.0,
                  "source": "onnxruntime-genai 0.18 builder, int4 for CPU: MatMulNBits block 32 with f32 scales "
                            "(4 + 32/32 bits per weight); a tied embedding is shared with the int4 lm_head. Measured: "
                            "SmolLM2-135M converts to 86.5 MB (slmplan convert, 2026-11-22); untied embeddings: estimate"},
}

# llama.cpp file type name -> base GGML type of the bulk of 2-D weights.
FTYPE_BASE: dict[str, T] = {
    "F32": T.F32, "F16": T.F16, "BF16": T.BF16,
    "Q8_0": T.Q8_0, "Q6_K": T.Q6_K,
    "Q5_K_M": T.Q5_K, "Q5_K_S": T.Q5_K, "Q5_0": T.Q5_0, "Q5_1": T.Q5_1,
    "Q4_K_M": T.Q4_K, "Q4_K_S": T.Q4_K, "Q4_0": T.Q4_0, "Q4_1": T.Q4_1,
    "IQ4_XS": T.IQ4_XS, "IQ4_NL": T.IQ4_NL,
    "Q3_K_L": T.Q3_K, "Q3_K_M": T.Q3_K, "Q3_K_S": T.Q3_K,
    "IQ3_XXS": T.IQ3_XXS, "IQ3_M": T.IQ3_S, "IQ3_S": T.IQ3_S,
    "Q2_K": T.Q2_K, "Q2_K_S": T.Q2_K, "IQ2_XXS": T.IQ2_XXS, "IQ2_XS": T.IQ2_XS, "IQ2_M": T.IQ2_S,
    # llama.cpp's MXFP4_MOE (llama-bench prints "MXFP4 MoE"): expert tensors MXFP4, every other quantized
    # tensor Q8_0, the file type OpenAI's gpt-oss weights ship in
    "MXFP4_MOE": T.MXFP4,
}

# When a K-quant tensor's row length is not a multiple of 256, llama.cpp falls back to these.
_K_FALLBACK = {
    T.Q2_K: T.Q4_0, T.Q3_K: T.Q4_0, T.IQ4_XS: T.IQ4_NL, T.Q4_K: T.Q5_0, T.Q5_K: T.Q5_1,
    T.Q6_K: T.Q8_0, T.IQ2_XXS: T.Q4_0, T.IQ2_XS: T.Q4_0, T.IQ2_S: T.Q4_0, T.IQ3_XXS: T.IQ4_NL,
    T.IQ3_S: T.IQ4_NL,
}

QUANT_NAMES = sorted(set(FTYPE_BASE) | set(NON_GGUF_FORMATS))


def type_bpw(t: T) -> float:
    block, size = GGML_QUANT_SIZES[t]
    return size * 8 / block


def tensor_bytes(t: T, n_elements: int) -> int:
    block, size = GGML_QUANT_SIZES[t]
    return (n_elements // block) * size


def canonical_quant(name: str) -> str:
    """``name`` upper-cased, an alias replaced by the llama.cpp file-type name (MXFP4 -> MXFP4_MOE)."""
    q = name.upper()
    return QUANT_ALIASES.get(q, q)


def is_gguf_quant(name: str) -> bool:
    return canonical_quant(name) in FTYPE_BASE


def _use_more_bits(i: int, n: int) -> bool:
    # llama.cpp: i_layer < n/8 || i_layer >= 7*n/8 || (i_layer - n/8) % 3 == 2
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


@dataclass(frozen=True)
class TensorRole:
    """One weight tensor of a transformer, for the quant-mix rules."""

    role: str  # token_embd | output | attn_q | attn_k | attn_v | attn_qkv | attn_output | ffn_up | ffn_gate | ffn_down | norm
    layer: int  # -1 for non-layer tensors
    n_layers: int
    row: int  # ne[0], the row length the quant block runs along
    n_elements: int
    expert: bool = False  # a 3-D tensor of all experts (ne[2] = n_expert > 1)


def ggml_type_for(ftype: str, t: TensorRole, tied: bool) -> T:
    """The GGML type llama.cpp's quantizer gives tensor ``t`` under file type ``ftype``."""
    ftype = canonical_quant(ftype)
    base = FTYPE_BASE[ftype]
    if t.role == "norm":
        return T.F32
    if base in (T.F32, T.F16, T.BF16):
        return base
    if ftype == "MXFP4_MOE":  # llama-quant.cpp: MoE tensors -> MXFP4, other tensors (output included) -> Q8_0
        return T.MXFP4 if t.expert else T.Q8_0
    new: T = base
    is_output = t.role == "output" or (tied and t.role == "token_embd")
    if is_output:
        if t.row % 256 != 0:
            new = T.Q8_0
        elif ftype.startswith(("IQ2", "IQ1")):
            new = T.Q5_K
        elif base != T.Q8_0:
            new = T.Q6_K
    elif t.role == "token_embd":
        if ftype.startswith(("IQ2", "IQ1")):
            new = T.Q2_K
    elif t.role in ("attn_v", "attn_qkv"):  # llama-quant.cpp counts fused QKV tensors as attn_v
        if ftype in ("Q4_K_M", "Q5_K_M") and _use_more_bits(t.layer, t.n_layers):
            new = T.Q6_K
        elif ftype == "Q3_K_M":
            new = T.Q5_K if t.layer < 2 else T.Q4_K
        elif ftype == "Q3_K_L":
            new = T.Q5_K
        elif ftype == "Q2_K":
            new = T.Q3_K
        elif ftype == "Q4_K_S" and t.layer < 4:
            new = T.Q5_K
    elif t.role == "ffn_down":
        if ftype in ("Q4_K_M", "Q5_K_M") and _use_more_bits(t.layer, t.n_layers):
            new = T.Q6_K
        elif ftype == "Q3_K_M":
            # llama-quant.cpp: `arch != FALCON || use_more_bits(...) ? Q4_K : Q3_K`, i.e. Q4_K for every non-Falcon model
            new = T.Q5_K if t.layer < t.n_layers // 16 else T.Q4_K
        elif ftype == "Q3_K_L":
            new = T.Q5_K
        elif ftype == "Q2_K":
            new = T.Q3_K
        elif ftype == "Q4_K_S" and t.layer < t.n_layers // 8:
            new = T.Q5_K
    elif t.role == "attn_output":
        if ftype == "Q3_K_M":
            new = T.Q4_K
        elif ftype == "Q3_K_L":
            new = T.Q5_K
        elif ftype == "Q2_K":
            new = T.Q3_K
    block = GGML_QUANT_SIZES[new][0]
    if t.row % block != 0:
        new = _K_FALLBACK.get(new, T.F16)
        if t.row % GGML_QUANT_SIZES[new][0] != 0:
            new = T.F16
    return new


@cache
def quant_quality_rank(quant: str) -> float:
    """Relative output quality, 1.0 = lossless. A heuristic for ranking only, shown as such.

    Ordered by bits per weight, with the knee llama.cpp's perplexity tables show: little loss down
    to ~5 bits, noticeable at 4, steep below 3.5.
    """
    q = canonical_quant(quant)
    table = {
        "F32": 1.0, "F16": 1.0, "BF16": 1.0, "Q8_0": 0.995, "INT8": 0.99, "Q6_K": 0.99,
        "Q5_K_M": 0.98, "Q5_K_S": 0.975, "Q5_0": 0.97, "Q5_1": 0.972, "Q4_K_M": 0.96,
        "Q4_K_S": 0.95, "IQ4_XS": 0.95, "IQ4_NL": 0.95, "AWQ-INT4": 0.955, "GPTQ-INT4": 0.95,
        "ONNX-INT4": 0.94, "Q4_1": 0.94, "Q4_0": 0.93, "Q3_K_L": 0.9, "Q3_K_M": 0.88,
        "IQ3_M": 0.88, "IQ3_S": 0.87, "Q3_K_S": 0.84, "IQ3_XXS": 0.84, "Q2_K": 0.75,
        "Q2_K_S": 0.72, "IQ2_M": 0.74, "IQ2_S": 0.72, "IQ2_XS": 0.7, "IQ2_XXS": 0.65,
        "MXFP4_MOE": 0.96,  # 4.25-bit experts (gpt-oss is trained and released so), the rest Q8_0
    }
    return table.get(q, 0.9)
