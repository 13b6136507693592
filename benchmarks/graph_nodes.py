"""Count the nodes of the graph llama.cpp builds for each catalog model, and write slmplan/data/graph_nodes.json.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/graph_nodes.py          # measure and write
    PYTHONPATH=$PWD .venv/bin/python benchmarks/graph_nodes.py --check  # measure and compare, exit 1 if different

Decode's fixed cost per token is mostly per graph node (a kernel launch on a GPU, a thread barrier on a
CPU), and architectures differ a lot in nodes per layer: a Llama layer is 31 nodes, a Qwen3 MoE layer
about 51 (router, top-k, expert gather and the weighted sum of the used experts), a Gemma 3n layer about
100 (AltUp predict/correct, Laurel, the per-layer input). The count does not depend on the widths, so
each catalog model's structure (layer kinds, SWA, KV sharing, experts used) is written as a tiny
synthetic GGUF (tests/synthgguf.py), loaded with llama-cpp-python, and llama.cpp's own
``graph: nodes = N`` line is read. No weights are downloaded.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

OUT = ROOT / "slmplan" / "data" / "graph_nodes.json"

PROBE = r"""
import sys
import llama_cpp as L
from slmplan.bench.backends.llama_cpp import LogCapture
cap = LogCapture()
L.llama_backend_init()
mp = L.llama_model_default_params()
mp.use_extra_bufts = False
model = L.llama_model_load_from_file(sys.argv[1].encode(), mp)
if not model:
    print("load failed:", *cap.lines[-5:], sep="\n"); sys.exit(3)
cp = L.llama_context_default_params()
cp.n_ctx = 512; cp.n_batch = 512; cp.n_ubatch = 512; cp.n_threads = 1; cp.n_threads_batch = 1
ctx = L.llama_init_from_model(model, cp)
if not ctx:
    print("context failed:", *cap.lines[-5:], sep="\n"); sys.exit(3)
print("\n".join(cap.lines))
"""


def structure(f):
    """The catalog model's structure at tiny widths; experts used kept (the graph sums each used expert)."""
    from test_architectures import _shrunk

    g = _shrunk(f)
    if f.architecture in ("qwen2", "phi3"):  # llama.cpp derives their head size from n_embd / n_head
        g = replace(g, n_embd=g.n_head * g.head_dim_k)
    if f.n_expert:
        g = replace(g, n_expert=max(f.n_expert_used, min(f.n_expert, 16)), n_expert_used=f.n_expert_used)
    return g


def _dense_layout(f):
    """Tensor layouts of the dense architectures slmplan/arch.py does not write (test files only)."""
    from slmplan.arch import _ffn, _head, _qkv, _t

    out: list = []
    a = f.architecture
    _head(f, out)
    q = f.n_head * f.head_dim_k
    for i in range(f.n_layers):
        if a == "phi3":
            k, v = f.kv_dims(i)
            out.append(_t(f"blk.{i}.attn_norm.weight", (f.n_embd,), "norm", i))
            out.append(_t(f"blk.{i}.attn_qkv.weight", (f.n_embd, q + k + v), "attn_qkv", i))
            out.append(_t(f"blk.{i}.attn_output.weight", (q, f.n_embd), "attn_output", i))
            out.append(_t(f"blk.{i}.ffn_norm.weight", (f.n_embd,), "norm", i))
            out.append(_t(f"blk.{i}.ffn_up.weight", (f.n_embd, 2 * f.ff(i)), "ffn_up", i))
            out.append(_t(f"blk.{i}.ffn_down.weight", (f.ff(i), f.n_embd), "ffn_down", i))
            continue
        _qkv(f, out, i, q, qk_norm=a == "gemma3", post_norm=a in ("gemma2", "gemma3"))
        if a == "qwen2":
            k, v = f.kv_dims(i)
            out += [_t(f"blk.{i}.attn_q.bias", (q,), "other", i), _t(f"blk.{i}.attn_k.bias", (k,), "other", i),
                    _t(f"blk.{i}.attn_v.bias", (v,), "other", i)]
        out.append(_t(f"blk.{i}.attn_output.weight", (q, f.n_embd), "attn_output", i))
        _ffn(f, out, i)
        if a in ("gemma2", "gemma3"):
            out.append(_t(f"blk.{i}.post_ffw_norm.weight", (f.n_embd,), "norm", i))
    return out


def count_nodes(model_id: str, tmp: Path) -> int:
    from synthgguf import write

    from slmplan.catalog import facts, get_model, load_catalog

    f = facts(get_model(load_catalog(), model_id))
    g = structure(f)
    kv, as_written = {}, g
    if g.architecture.startswith("qwen35"):  # keys llama.cpp requires that the catalog does not carry
        kv = {"{arch}.full_attention_interval": 4, "{arch}.rope.dimension_sections": [4, 6, 6, 0]}
        as_written = replace(g, layer_kv_heads=None)
    if g.architecture == "granite":  # llama.cpp requires Granite's scaling keys
        kv.update({f"{{arch}}.{k}": 1.0 for k in ("logit_scale", "residual_scale", "embedding_scale", "attention.scale")})
    tensors = None
    if g.architecture in ("gemma2", "gemma3", "qwen2", "phi3"):
        tensors = _dense_layout(g)
        if g.architecture == "phi3":
            kv["{arch}.rope.dimension_count"] = g.head_dim_k
    path = write(tmp / f"{model_id}.gguf", as_written, kv, tensors)
    r = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, timeout=300,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    path.unlink()
    found = re.findall(r"graph: nodes = (\d+)", r.stdout + r.stderr)
    if r.returncode != 0 or not found:
        raise RuntimeError(f"{model_id}: llama.cpp did not report its graph (exit {r.returncode}): "
                           f"{(r.stdout + r.stderr)[-400:]}")
    return int(found[-1])


def measure() -> dict:
    import importlib.metadata

    from slmplan.catalog import facts, load_catalog

    cat = load_catalog()
    models = {}
    with tempfile.TemporaryDirectory() as d:
        for m in cat.models:
            f = facts(m)
            if not f.modelled:
                continue
            n = count_nodes(m.id, Path(d))
            models[m.id] = n
            print(f"{m.id:22} {f.architecture:14} {f.n_layers:3} layers {n:5} nodes  {n / f.n_layers:6.1f} per layer",
                  file=sys.stderr)
    return {
        "source": "llama.cpp's 'graph: nodes = N' when creating a context (n_ubatch 512) for each catalog model's "
                  "structure written as a tiny synthetic GGUF; measured by benchmarks/graph_nodes.py",
        "llama_cpp_python": importlib.metadata.version("llama_cpp_python"),
        "models": models,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the shipped table instead of writing it")
    args = ap.parse_args()
    got = measure()
    if args.check:
        shipped = json.loads(OUT.read_text())
        diff = {k: (shipped["models"].get(k), v) for k, v in got["models"].items() if shipped["models"].get(k) != v}
        print("same as shipped" if not diff else f"differs from shipped (shipped, measured): {diff}")
        return 1 if diff else 0
    from slmplan.fileio import write_atomic

    write_atomic(OUT, json.dumps(got, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)} ({len(got['models'])} models)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
