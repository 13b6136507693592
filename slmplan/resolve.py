"""Turn a MODEL argument (catalog id or .gguf path) into facts and the quant variants to estimate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slmplan.catalog import facts, get_model, get_variant, load_catalog
from slmplan.errors import BadInputError
from slmplan.estimate.quants import FTYPE_BASE, canonical_quant, is_gguf_quant
from slmplan.model import ModelFacts


@dataclass(frozen=True)
class Candidate:
    facts: ModelFacts
    quant: str
    computed: bool = False  # a llama.cpp type the catalog lists no file for: sizes from the quant-mix rules


def is_gguf_path(spec: str) -> bool:
    try:
        return spec.lower().endswith(".gguf") or Path(spec).is_file()
    except OSError:  # e.g. a name too long for a path: then it is no file, and read as a catalog id
        return False


def resolve(spec: str, quant: str | None = None, catalog_path: str | None = None) -> list[Candidate]:
    if spec.startswith("hf://"):
        from slmplan.hub import remote_facts  # needs the 'hub' extra; says so if missing

        f = remote_facts(spec)
        return [Candidate(f, f.file_quant or "unknown")]
    if is_gguf_path(spec):
        from slmplan.gguf import read_gguf
        from slmplan.model import facts_from_gguf

        f = facts_from_gguf(read_gguf(spec))
        fq = f.file_quant or "unknown"
        if quant and canonical_quant(quant) != canonical_quant(fq):
            raise BadInputError(f"{spec} is a {fq} file; quant={quant} does not apply",
                                "Drop quant for a .gguf file", params=("quant",))
        return [Candidate(f, fq)]
    cat = load_catalog(catalog_path)
    m = get_model(cat, spec)
    f = facts(m)
    quant = canonical_quant(quant) if quant else quant
    if quant and not any(canonical_quant(v.quant) == quant for v in m.variants) and is_gguf_quant(quant):
        # any llama.cpp file type can be built for a catalog architecture: computed, not published
        return [Candidate(f, next(q for q in FTYPE_BASE if q == quant), computed=True)]
    variants = [get_variant(m, quant)] if quant else list(m.variants)
    return [Candidate(f, v.quant) for v in variants]
