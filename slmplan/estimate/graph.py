"""How many graph nodes llama.cpp runs per generated token, in Llama-layer equivalents.

Decode's fixed cost per token is mostly per graph node: a kernel launch on a GPU, a thread barrier
on a CPU. Architectures differ a lot in nodes per layer (llama.cpp, counted from its own
``graph: nodes = N`` line by ``benchmarks/graph_nodes.py``): a Llama layer is 31 nodes, Qwen3 35,
Gemma 3 40, a Qwen3 MoE layer 63 (router, top-k, and the weighted sum of each used expert), Qwen3.5's
gated delta-net mix 59, a Gemma 3n layer 90 (AltUp, Laurel, per-layer input). So the speed model's
per-layer fixed cost is quoted per Llama layer and multiplied by ``layer_units`` = nodes / 31.

Lookup order: the catalog model's own count; else the median nodes per layer of the catalog models
of the same architecture (dense or MoE) times the layers; else 31 per layer (Llama-like, assumed).
"""

from __future__ import annotations

import json
import statistics
from functools import lru_cache
from pathlib import Path

GRAPH_FILE = Path(__file__).resolve().parent.parent / "data" / "graph_nodes.json"
LLAMA_NODES_PER_LAYER = 31  # a Llama block in llama.cpp's graph (936 nodes for SmolLM2-135M's 30 layers)


@lru_cache(maxsize=1)
def _table() -> dict:
    return json.loads(GRAPH_FILE.read_text())


@lru_cache(maxsize=1)
def _catalog_shapes() -> dict[str, tuple[str, bool, int]]:
    """(architecture, has experts, layers) of each catalog model, read once."""
    from slmplan.catalog import facts, load_catalog

    out = {}
    for m in load_catalog().models:
        f = facts(m)
        out[m.id] = (f.architecture, bool(f.n_expert), f.n_layers)
    return out


@lru_cache(maxsize=1)
def _per_layer() -> dict[tuple[str, bool], float]:
    """Median nodes per layer of the catalog models by (architecture, has experts)."""
    counts = _table()["models"]
    groups: dict[tuple[str, bool], list[float]] = {}
    for mid, (arch, moe, layers) in _catalog_shapes().items():
        if mid in counts:
            groups.setdefault((arch, moe), []).append(counts[mid] / layers)
    return {k: statistics.median(v) for k, v in groups.items()}


def graph_nodes(facts) -> tuple[float, str]:
    """(nodes of llama.cpp's decode graph, how it was found) for ``facts``."""
    n = _table()["models"].get(facts.id)
    shape = _catalog_shapes().get(facts.id)
    if n is not None and shape is not None and shape[2] == facts.n_layers:
        return float(n), "counted by llama.cpp for this catalog model"
    per = _per_layer().get((facts.architecture, bool(facts.n_expert)))
    if per is not None:
        return per * facts.n_layers, f"median nodes per layer of the catalog's {facts.architecture} models"
    return float(LLAMA_NODES_PER_LAYER * facts.n_layers), "assumed Llama-like (31 nodes per layer)"


def layer_units(facts) -> float:
    """Decode's fixed-cost units: llama.cpp graph nodes per token / 31 (= layers for a Llama model)."""
    return graph_nodes(facts)[0] / LLAMA_NODES_PER_LAYER
