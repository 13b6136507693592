"""The model catalog: loading, lookup, and turning entries into ModelFacts."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from slmplan.arch import DENSE, LAYOUTS, MTP_LAYOUTS, is_modelled
from slmplan.errors import CatalogError, UnknownIdError
from slmplan.estimate.quants import NON_GGUF_FORMATS, canonical_quant, is_gguf_quant
from slmplan.model import KV_FROM_START_BY_ARCH, ModelFacts
from slmplan.schema.catalog import (
    RECURRENT_LAYER_TYPES,
    Catalog,
    CatalogModel,
    CatalogVariant,
)
from slmplan.yamlio import read_yaml, validate

DEFAULT_CATALOG = Path(__file__).parent / "data" / "model_catalog.yaml"


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> Catalog:
    p = Path(path)
    data = read_yaml(p, "catalog", CatalogError)
    if not isinstance(data, dict):
        raise CatalogError(f"{p}: expected a mapping with 'schema_version' and 'models'", "See model_catalog.yaml for the shape")
    cat = validate(data, Catalog, p, CatalogError)
    for m in cat.models:
        if not is_modelled(m.architecture):
            # a llama-decoder estimate of a mamba/bert/... entry would be silently wrong
            raise CatalogError(f"{p}: model '{m.id}': architecture '{m.architecture}' is not modelled by slmplan",
                               f"Use one of: {', '.join(sorted(DENSE | set(LAYOUTS)))}")
        if m.mtp_layers and m.architecture not in MTP_LAYOUTS:
            raise CatalogError(f"{p}: model '{m.id}': mtp_layers for architecture '{m.architecture}' is not modelled",
                               f"MTP blocks are modelled for {', '.join(sorted(MTP_LAYOUTS))}; leave out mtp_layers")
        for v in m.variants:
            q = v.quant.upper()
            if not (is_gguf_quant(q) or q in NON_GGUF_FORMATS):
                raise CatalogError(f"{p}: model '{m.id}': unknown quant '{v.quant}'",
                                   f"Use one of the llama.cpp types or {', '.join(NON_GGUF_FORMATS)}")
    return cat


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The model catalog at ``path`` (default: the bundled one), validated; cached until the file changes."""
    p = Path(path) if path else DEFAULT_CATALOG
    if not p.exists():
        raise CatalogError(f"catalog file {p} does not exist", "Check the path in catalog_path", params=("catalog_path",))
    return _load(str(p.resolve()), p.stat().st_mtime)


def get_model(cat: Catalog, model_id: str) -> CatalogModel:
    for m in cat.models:
        if m.id == model_id:
            return m
    close = [m.id for m in cat.models if model_id.split("-")[0] in m.id][:5]
    hint = f"Did you mean: {', '.join(close)}?" if close else "Run 'slmplan catalog' to list the ids, or pass a .gguf path"
    raise UnknownIdError(f"unknown model '{model_id}'", hint)


def get_variant(m: CatalogModel, quant: str) -> CatalogVariant:
    for v in m.variants:
        if canonical_quant(v.quant) == canonical_quant(quant):
            return v
    raise UnknownIdError(f"model '{m.id}' has no quant '{quant}'",
                         f"Available: {', '.join(v.quant for v in m.variants)}, or any llama.cpp type "
                         "(Q4_0, IQ4_XS, Q3_K_S, ...), computed")


def _arch_kwargs(m: CatalogModel) -> dict:
    """The MoE / hybrid / per-layer facts, in llama.cpp's terms (what its GGUF converter writes)."""
    kw: dict = {}
    L = m.layers
    types = m.layer_types
    if types:
        rec = tuple(t in RECURRENT_LAYER_TYPES for t in types)
        if any(rec):
            kw["recurrent"] = rec
            kw["layer_kv_heads"] = tuple(0 if r else m.kv_heads for r in rec)
        if "sliding_attention" in types and m.sliding_window:
            kw["swa_layers"] = tuple(t == "sliding_attention" for t in types)
    if m.global_head_dim:  # head_dim is the sliding-window layers' size; llama.cpp's key_length is the full one
        kw["head_dim_k"] = kw["head_dim_v"] = m.global_head_dim
        kw["head_dim_swa"] = m.head_dim
    if m.kv_shared_layers:
        kw["n_layer_kv_from_start"] = L - m.kv_shared_layers
    elif m.architecture in KV_FROM_START_BY_ARCH:
        kw["n_layer_kv_from_start"] = KV_FROM_START_BY_ARCH[m.architecture]
    if m.per_layer_embedding_dim:
        kw["n_embd_per_layer"] = m.per_layer_embedding_dim
    if m.intermediate_size_kv_shared and m.kv_shared_layers:
        kw["layer_ff"] = tuple(m.intermediate_size_kv_shared if i >= L - m.kv_shared_layers else m.intermediate_size
                               for i in range(L))
    if m.experts:
        kw.update(n_expert=m.experts, n_expert_used=m.experts_used, n_ff_exp=m.expert_intermediate_size,
                  n_ff_shexp=m.shared_expert_intermediate_size or 0, n_layer_dense_lead=m.dense_leading_layers or 0)
    if m.conv_l_cache:
        kw["shortconv_l_cache"] = m.conv_l_cache
    if m.mtp_layers:
        kw["n_layer_nextn"] = m.mtp_layers
    if m.ssm_state_size:  # llama.cpp's ssm.* keys (Gated DeltaNet: inner = value heads x head size)
        kw.update(ssm_d_conv=m.ssm_conv_kernel, ssm_d_inner=m.ssm_inner_size, ssm_d_state=m.ssm_state_size,
                  ssm_n_group=m.ssm_groups, ssm_dt_rank=m.ssm_heads)
    return kw


def facts(m: CatalogModel) -> ModelFacts:
    base: dict[str, Any] = dict(
        id=m.id, name=m.name, architecture=m.architecture, n_layers=m.layers, n_embd=m.hidden_size,
        n_ff=m.intermediate_size, n_head=m.heads, n_head_kv=m.kv_heads, head_dim_k=m.head_dim,
        head_dim_v=m.head_dim, n_vocab=m.vocab_size, n_ctx_train=m.context_length,
        tied_embeddings=m.tied_embeddings, n_swa=m.sliding_window, swa_pattern=m.sliding_window_pattern,
        source=m.source, stated_params=m.params, license=m.license, hf_repo=m.hf_repo,
    )
    base.update(_arch_kwargs(m))
    return ModelFacts(**base)


def catalog_summary(cat: Catalog | None = None) -> list[dict]:
    """Every model as a dict (its catalog fields, ``params_computed``, and each variant with its
    ``weights_bytes_estimate``): the ``slmplan catalog --format json`` shape."""
    cat = cat or load_catalog()
    rows = []
    for m in cat.models:
        f = facts(m)
        d = m.model_dump(exclude_none=True)
        d["params_computed"] = f.params
        d["variants"] = [dict(v.model_dump(exclude_none=True), weights_bytes_estimate=f.weights_bytes(v.quant))
                         for v in m.variants]
        rows.append(d)
    return rows
