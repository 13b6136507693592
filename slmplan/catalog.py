"""The model catalog: loading, lookup, and turning entries into ModelFacts."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from slmplan.errors import CatalogError, UnknownIdError
from slmplan.estimate.quants import NON_GGUF_FORMATS, is_gguf_quant
from slmplan.model import ModelFacts
from slmplan.schema.catalog import Catalog, CatalogModel, CatalogVariant
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
        if v.quant.upper() == quant.upper():
            return v
    raise UnknownIdError(f"model '{m.id}' has no quant '{quant}'",
                         f"Available: {', '.join(v.quant for v in m.variants)}")


def facts(m: CatalogModel) -> ModelFacts:
    return ModelFacts(
        id=m.id, name=m.name, architecture=m.architecture, n_layers=m.layers, n_embd=m.hidden_size,
        n_ff=m.intermediate_size, n_head=m.heads, n_head_kv=m.kv_heads, head_dim_k=m.head_dim,
        head_dim_v=m.head_dim, n_vocab=m.vocab_size, n_ctx_train=m.context_length,
        tied_embeddings=m.tied_embeddings, n_swa=m.sliding_window, swa_pattern=m.sliding_window_pattern,
        source=m.source, stated_params=m.params, license=m.license, hf_repo=m.hf_repo,
    )


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
