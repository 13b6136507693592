"""llama.cpp's CPU "extra buffer types": the weights it copies into a repacked layout at load time.

With ``use_extra_bufts`` on (llama.cpp's default; llama-bench ``--repack 1``) the CPU backend offers
extra buffer types before the plain CPU one, and the model loader puts each weight into the first
type whose ``supports_op`` accepts the op the weight is used in (``select_weight_buft`` in
``src/llama-model-loader.cpp``). A weight placed there is read from the mapped file once and kept as
a second, anonymous copy; the file pages of the original stay mapped (clean, reclaimable) and the
``CPU_Mapped model`` buffer still spans them. The rules below follow ggml's CPU backend as vendored
in llama-cpp-python 0.3.36 (``ggml/src/ggml-cpu``):

* ``AMX`` (``amx/amx.cpp``, x86 with AMX-INT8 and AVX512-VNNI, compiled in only when the build
  machine has them): MUL_MAT weights of type Q4_0/Q4_1/Q8_0 (row length a multiple of 32),
  Q4_K/Q5_K/Q6_K/IQ4_XS (multiple of 256) and F16 (multiple of 16), with an output width that
  is a multiple of 32. Its packed size adds per-block compensation terms (``get_row_size`` in
  ``amx/mmq.cpp``): +4 bytes per block for Q8_0, Q4_K and Q5_K, +2 for IQ4_XS.
* ``CPU_REPACK`` (``repack.cpp``, ``ggml_repack_get_optimal_repack_type``), same size as the
  original: on x86 with AVX2 Q4_0, Q4_K, IQ4_NL and MXFP4, plus Q2_K with AVX-512 (output width
  a multiple of 8); on ARM with dot-product (or i8mm) instructions also Q5_K, Q6_K and Q8_0.
  MoE expert tensors (MUL_MAT_ID) are repacked too; AMX takes only MUL_MAT.

A weight used by GET_ROWS (the input token embedding) is never moved. A tied embedding is loaded
twice: as input (mapped) and as the output head (a MUL_MAT, so it can land in an extra buffer).
The checks are verified against the buffers llama.cpp reports (tests/test_memory_vs_llamacpp.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

AMX = "AMX"
CPU_REPACK = "CPU_REPACK"

# ggml block sizes (elements, bytes) of the types the extra buffers take
_BLOCK = {"Q4_0": (32, 18), "Q4_1": (32, 20), "Q8_0": (32, 34), "Q4_K": (256, 144), "Q5_K": (256, 176),
          "Q6_K": (256, 210), "IQ4_XS": (256, 136), "F16": (1, 2)}
_AMX_ALIGN = {"Q4_0": 32, "Q4_1": 32, "Q8_0": 32, "Q4_K": 256, "Q5_K": 256, "Q6_K": 256, "IQ4_XS": 256, "F16": 16}
_AMX_EXTRA_PER_BLOCK = {"Q8_0": 4, "Q4_K": 4, "Q5_K": 4, "IQ4_XS": 2}
# type -> output-width multiple, for each ISA family (repack.cpp)
_REPACK_X86_AVX2 = {"Q4_0": 8, "Q4_K": 8, "IQ4_NL": 8, "MXFP4": 8}
_REPACK_X86_AVX512 = {"Q2_K": 8}
_REPACK_ARM_DOTPROD = {"Q4_0": 4, "Q4_K": 8, "Q5_K": 8, "Q6_K": 8, "IQ4_NL": 4, "MXFP4": 4, "Q8_0": 4}
_REPACK_ARM_I8MM = {"Q4_0": 4, "Q4_K": 8, "Q5_K": 8, "Q6_K": 8, "Q8_0": 4}
_GET_ROWS_ROLES = {"token_embd", "per_layer_token_embd", "token_types", "pos_embd"}


# other spellings of the same features (chip tables, llama.cpp's system info, ARM's names)
_ALIASES = {"neon": "asimd", "dotprod": "asimddp", "avx512": "avx512f", "amx": "amx_int8", "amx-int8": "amx_int8",
            "matmul_int8": "i8mm", "avx512vnni": "avx512_vnni"}


def normalize_features(features: Iterable[str]) -> set[str]:
    f = {_ALIASES.get(x.lower(), x.lower()) for x in features}
    if "amx_int8" in f:
        f.add("avx512_vnni")  # every CPU with AMX-INT8 (Sapphire Rapids and later) has AVX512-VNNI
    return f


def extra_buffer_types(features: Iterable[str] | None, backend: str = "cpu", repack: bool = True) -> tuple[str, ...] | None:
    """The extra buffer types llama.cpp's CPU backend offers for these CPU features, in its order.

    ``features`` are CPU feature names as Linux /proc/cpuinfo or llama.cpp's system info spell them
    (avx2, avx512f, avx512_vnni, amx_int8, asimd/neon, asimddp/dotprod, i8mm). None = unknown.
    Weights offloaded to a GPU backend are not repacked, so a GPU backend gets none."""
    if not repack or backend != "cpu":
        return ()
    if features is None:
        return None
    f = normalize_features(features)
    out = []
    if "amx_int8" in f and "avx512_vnni" in f:
        out.append(AMX)
    if "avx2" in f or f & {"asimddp", "dotprod", "i8mm"}:
        out.append(CPU_REPACK)
    return tuple(out)


def _repack_rules(features: set[str]) -> dict[str, int]:
    rules: dict[str, int] = {}
    if "avx2" in features:
        rules.update(_REPACK_X86_AVX2)
        if "avx512f" in features:
            rules.update(_REPACK_X86_AVX512)
    if features & {"asimddp", "dotprod"}:
        rules.update(_REPACK_ARM_DOTPROD)
    if "i8mm" in features:
        rules.update({k: v for k, v in _REPACK_ARM_I8MM.items() if k not in rules})
    return rules


def cpu_repack_types(features: Iterable[str] | None) -> frozenset[str] | None:
    """The weight types llama.cpp's CPU_REPACK buffer takes on a CPU with these features (the rules of the
    vendored ggml, above: on ARM with dot-product also Q5_K, Q6_K and Q8_0); None = features unknown."""
    if features is None:
        return None
    return frozenset(_repack_rules(normalize_features(features)))


def describe_extra_buffer_types(features: Iterable[str] | None, backend: str = "cpu") -> dict[str, list[str]] | None:
    """{buffer type: the GGML weight types it takes} for these CPU features (None: unknown)."""
    types = extra_buffer_types(features, backend)
    if types is None:
        return None
    feats = normalize_features(features or ())
    out: dict[str, list[str]] = {}
    if AMX in types:
        out[AMX] = sorted(_AMX_ALIGN)
    if CPU_REPACK in types:
        out[CPU_REPACK] = sorted(_repack_rules(feats))
    return out


@dataclass(frozen=True)
class ExtraBuffers:
    """Bytes llama.cpp puts in each extra buffer type for one model file."""

    bytes_by_type: dict[str, int]
    types: tuple[str, ...] | None  # None: the CPU's features are unknown
    # file bytes of the weights that were copied (their mapped pages become reclaimable)
    copied_from_mapping_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_by_type.values())


def _op(t) -> str | None:
    if t.role == "norm" or t.n_elements == t.row:
        return None  # norms, biases, 1-D tensors: element-wise ops, never in an extra buffer
    if t.role in _GET_ROWS_ROLES:
        return "GET_ROWS"
    if t.name.endswith("_exps.weight") or t.role.endswith("_exps"):
        return "MUL_MAT_ID"
    return "MUL_MAT"


def _amx_bytes(t) -> int | None:
    typ = t.ggml_type.upper()
    if typ not in _AMX_ALIGN or t.row % _AMX_ALIGN[typ]:
        return None
    ne1 = t.n_elements // t.row
    if ne1 % 32:
        return None
    if typ == "F16":
        return t.n_bytes
    blk, size = _BLOCK[typ]
    return ne1 * (t.row // blk) * (size + _AMX_EXTRA_PER_BLOCK.get(typ, 0))


def extra_buffer_bytes(facts, quant: str, types: tuple[str, ...] | None, features: Iterable[str] = ()) -> ExtraBuffers:
    """Which weights of ``facts`` (at ``quant``) llama.cpp moves into the extra buffer ``types``."""
    if not types:
        return ExtraBuffers({}, types)
    feats = normalize_features(features)
    rules = _repack_rules(feats) if CPU_REPACK in types else {}
    out: dict[str, int] = {}
    copied = 0
    tensors = list(facts.weight_tensors(quant))
    if facts.tied_embeddings:  # the tied embedding is also loaded as the output head (TENSOR_DUPLICATED)
        tensors += [replace_role(t, "output") for t in tensors if t.role == "token_embd"]
    for t in tensors:
        op = _op(t)
        if op not in ("MUL_MAT", "MUL_MAT_ID"):
            continue
        placed = None
        if AMX in types and op == "MUL_MAT":
            n = _amx_bytes(t)
            if n is not None:
                placed = (AMX, n)
        if placed is None and t.ggml_type.upper() in rules and (t.n_elements // t.row) % rules[t.ggml_type.upper()] == 0:
            placed = (CPU_REPACK, t.n_bytes)
        if placed:
            out[placed[0]] = out.get(placed[0], 0) + placed[1]
            copied += t.n_bytes
    return ExtraBuffers(out, types, copied)


def replace_role(t, role: str):
    from dataclasses import replace

    return replace(t, role=role, name=role + ".weight")
