"""Which catalog model (and quant) a llama-bench row measured.

First the file name (``Llama-3.2-1B-Instruct-Q4_K_M.gguf`` -> llama-3.2-1b): a catalog id matches when
its parts appear in order as whole words (``qwen2.5-7b`` matches ``qwen2.5-7b-instruct-q4_k_m`` but
not ``Qwen2.5-Coder-7B`` or ``DeepSeek-R1-Distill-Qwen-7B``). Without a file name (the pasted table)
the architecture and parameter count llama.cpp printed (``llama 1B Q4_K - Medium``, ``1.24 B``) must
single out one catalog model. The quant comes from llama.cpp's file-type description when there is
one, else from the file name. Nothing is guessed: no match or several matches is an error that asks
for ``--model ID`` and names the closest catalog ids.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from pathlib import Path

from slmplan.errors import BadInputError
from slmplan.estimate.quants import canonical_quant, is_gguf_quant

# llama.cpp's llama_model_ftype_name() descriptions that differ from the file-type names
_KSIZE = {"small": "S", "medium": "M", "large": "L"}
PARAMS_TOLERANCE = 0.015  # llama.cpp counts every tensor; the catalog's count comes from config shapes
TABLE_PARAMS_TOLERANCE = 0.02  # the table prints 2 decimals ("1.10 B")
_QUANT_IN_NAME = re.compile(
    r"(?<![a-z0-9])(i?q\d_k_[sml]|iq\d_[a-z]+|q\d_k|q\d_\d|f16|bf16|f32|mxfp4)(?![a-z0-9])", re.I)


def quant_from_type(desc: str | None) -> str | None:
    """'llama 1B Q4_K - Medium' -> Q4_K_M; 'LLaMA 7B mostly Q4_0' -> Q4_0; 'IQ4_XS - 4.25 bpw' -> IQ4_XS."""
    if not desc or "(guessed)" in desc:  # llama.cpp could not read the file type and guessed: do not use it
        return None
    d = desc.replace("mostly ", "")
    m = re.search(r"\b(Q\d_K) - (Small|Medium|Large)\b", d, re.I)
    if m:
        base, size = m.group(1).upper(), _KSIZE[m.group(2).lower()]
        return base if base == "Q2_K" and size == "M" else f"{base}_{size}"  # Q2_K's description is 'Medium'
    m = re.search(r"\b(I?Q\d_[A-Z0-9]+|BF16|F16|F32|MXFP4)\b", d, re.I)
    if m:
        return m.group(1).upper()
    if re.search(r"\ball F32\b", d):
        return "F32"
    return None


def quant_from_name(filename: str | None) -> str | None:
    if not filename:
        return None
    found = _QUANT_IN_NAME.findall(Path(filename).name)
    return found[-1].upper() if found else None


def _norm(s: str) -> str:
    return Path(s).name.lower()


@lru_cache(maxsize=8)
def _id_patterns(catalog_path: str | None) -> tuple[tuple[str, re.Pattern], ...]:
    from slmplan.catalog import load_catalog

    out = []
    for m in load_catalog(catalog_path).models:
        parts = [re.escape(p).replace(r"\.", "[._]") for p in m.id.split("-")]
        out.append((m.id, re.compile(r"(?<![a-z0-9.])" + r"[-_. ]?".join(parts) + r"(?![a-z0-9])")))
    return tuple(out)


def match_name(filename: str, catalog_path: str | None = None) -> list[str]:
    """Catalog ids whose parts appear in the file name as whole words, longest id first."""
    n = _norm(filename)
    hits = [mid for mid, pat in _id_patterns(catalog_path) if pat.search(n)]
    return sorted(hits, key=len, reverse=True)


@lru_cache(maxsize=8)
def _shapes(catalog_path: str | None) -> tuple[tuple[str, str, int], ...]:
    from slmplan.catalog import facts, load_catalog

    return tuple((m.id, m.architecture, facts(m).params) for m in load_catalog(catalog_path).models)


def match_shape(arch: str | None, n_params: int | None, exact: bool, catalog_path: str | None = None) -> list[str]:
    if not n_params:
        return []
    tol = PARAMS_TOLERANCE if exact else TABLE_PARAMS_TOLERANCE
    return [mid for mid, a, p in _shapes(catalog_path)
            if (arch is None or a == arch) and abs(p - n_params) <= tol * p]


def _close(label: str, catalog_path: str | None, arch: str | None = None, n_params: int | None = None) -> list[str]:
    ids = [mid for mid, _, _ in _shapes(catalog_path)]
    close = difflib.get_close_matches(_norm(label).split(".gguf")[0], ids, n=3, cutoff=0.3)
    if n_params:
        by_size = sorted(_shapes(catalog_path), key=lambda s: abs(s[2] - n_params) + (0 if s[1] == arch else 1e12))
        close += [s[0] for s in by_size[:3]]
    return list(dict.fromkeys(close))[:4]


def _arch(model_type: str | None) -> str | None:
    return model_type.split()[0].lower() if model_type and model_type.split() else None


def identify(row, catalog_path: str | None = None, model: str | None = None, quant: str | None = None) -> tuple[str, str]:
    """(catalog id, quant) of one row; BadInputError when it cannot be told."""
    from slmplan.catalog import get_model, load_catalog

    label = row.model_label
    if model:
        mid = get_model(load_catalog(catalog_path), model).id
    else:
        mid = _identify_id(row, label, catalog_path)
    q = canonical_quant(quant or quant_from_type(row.model_type) or quant_from_name(row.model_filename) or row.quant or "")
    if not q:
        raise BadInputError(f"{row.source}: cannot tell the quant of '{label}'", "Name it with --quant, e.g. --quant Q4_K_M")
    if not is_gguf_quant(q):
        raise BadInputError(f"{row.source}: quant {q} of '{label}' is not one slmplan's estimators know",
                            "Use a row measuring a common GGUF type (Q4_K_M, Q4_0, Q8_0, F16, ...)")
    return mid, q


def _identify_id(row, label: str, catalog_path: str | None) -> str:
    arch = _arch(row.model_type)
    by_shape = match_shape(arch, row.model_n_params, row.params_exact, catalog_path)
    if row.model_filename:
        hits = match_name(row.model_filename, catalog_path)
        if len(hits) > 1:
            raise BadInputError(f"{row.source}: '{label}' matches several catalog models ({', '.join(hits)})",
                                f"Say which with --model ID (e.g. --model {hits[0]})")
        if hits:
            if row.model_n_params and by_shape and hits[0] not in by_shape:
                raise BadInputError(
                    f"{row.source}: the file name '{label}' says {hits[0]} but llama.cpp counted {row.model_n_params:,} "
                    f"parameters, which is {', '.join(by_shape)}", "Say which with --model ID")
            return hits[0]
    if len(by_shape) == 1:
        return by_shape[0]
    what = f"'{label}'" + (f" ({row.model_n_params / 1e9:.2f} B parameters)" if row.model_n_params else "")
    if len(by_shape) > 1:
        raise BadInputError(f"{row.source}: {what} matches several catalog models ({', '.join(by_shape)})",
                            f"Say which with --model ID (e.g. --model {by_shape[0]})")
    close = _close(label, catalog_path, arch, row.model_n_params)
    raise BadInputError(f"{row.source}: no catalog model matches {what}",
                        f"Say which with --model ID{' (closest: ' + ', '.join(close) + ')' if close else ''}, "
                        "or add the model to a --catalog file")


def identify_rows(rows, catalog_path: str | None = None, model: str | None = None, quant: str | None = None) -> None:
    """Set ``model_id`` and ``quant`` on every row (the first failure is raised)."""
    for r in rows:
        r.model_id, r.quant = identify(r, catalog_path, model, quant)
