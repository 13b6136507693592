"""llama.cpp's quant-mix rules (which GGML type each tensor gets under a file type) against llama.cpp itself.

Each case writes a small F32 GGUF of an architecture (tests/synthgguf.py, the tensor layout of
slmplan/arch.py), quantizes it with llama.cpp's own ``llama_model_quantize`` (through llama-cpp-python,
in a subprocess) and compares the type of every tensor with the one slmplan's estimator assigns.
This covers the rules the file size depends on: output/tied-embedding (and Gemma's per-layer table,
quantized like the output in tied models), attn_v/attn_qkv bumps indexed by the tensor's rank among
those tensors (hybrid and KV-shared layers have none), ffn_down bumps, the 8-expert rules, and the
fallbacks for rows that are not a multiple of the block size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from synthgguf import write
from test_architectures import CASES, _f

from slmplan.arch import layout

FTYPES = {"Q4_0": 2, "Q8_0": 7, "Q3_K_M": 12, "Q4_K_S": 14, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18}

PROBE = r"""
import json, sys
import llama_cpp as L
from gguf import GGUFReader
src, out_dir = sys.argv[1], sys.argv[2]
res = {}
for name, ftype in json.loads(sys.argv[3]).items():
    p = L.llama_model_quantize_default_params()
    p.ftype = ftype
    p.nthread = 1
    out = f"{out_dir}/{name}.gguf"
    if L.llama_model_quantize(src.encode(), out.encode(), p) != 0:
        res[name] = None
        continue
    ts = GGUFReader(out).tensors
    res[name] = {"types": {t.name: t.tensor_type.name for t in ts}, "bytes": sum(int(t.n_bytes) for t in ts)}
print(json.dumps(res))
"""

DENSE = {"llama": (_f("llama", tied_embeddings=False), {}), "qwen3": (_f("qwen3"), {})}


def _quantize_all(src: Path, out_dir: Path) -> dict:
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", PROBE, str(src), str(out_dir), json.dumps(FTYPES)], capture_output=True,
                       text=True, timeout=300, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.runtime
@pytest.mark.parametrize("arch", sorted(CASES))
def test_tensor_types_match_llama_quantize(tmp_path, arch):
    pytest.importorskip("llama_cpp")
    f, kv = CASES[arch]
    got_all = _quantize_all(write(tmp_path / f"{arch}.gguf", f, kv), tmp_path)
    # llama.cpp leaves these as converted (F32 in this F32 source; slmplan assumes a 16-bit conversion)
    keep = {t.name for t in layout(f) if t.role == "keep"}
    for q, got in got_all.items():
        assert got is not None, f"llama.cpp could not quantize the {arch} file to {q}"
        types = got["types"]
        est = {t.name: t.ggml_type for t in f.weight_tensors(q)}
        assert set(est) == set(types), (q, set(est) ^ set(types))
        wrong = {n: (est[n], types[n]) for n in types if n not in keep and est[n] != types[n]}
        assert not wrong, f"{arch} {q}: (slmplan, llama.cpp) {sorted(wrong.items())[:8]}"
        assert all(types[n] == "F32" for n in keep)
        if not keep:
            assert f.weights_bytes(q) == got["bytes"], q


@pytest.mark.runtime
@pytest.mark.parametrize("arch", sorted(DENSE))
def test_dense_weight_bytes_match_llama_quantize(tmp_path, arch):
    """Dense decoders are estimated from role totals (slmplan/model.py), so the check is on bytes."""
    pytest.importorskip("llama_cpp")
    f, kv = DENSE[arch]
    got_all = _quantize_all(write(tmp_path / f"{arch}.gguf", f, kv), tmp_path)
    for q, got in got_all.items():
        assert got is not None, f"llama.cpp could not quantize the {arch} file to {q}"
        assert f.weights_bytes(q) == got["bytes"], q


def test_gpt_oss_mxfp4_moe_weights_are_what_llama_bench_prints():
    """llama.cpp's MXFP4_MOE (experts MXFP4, every other quantized tensor Q8_0, llama-quant.cpp): llama-bench
    prints 'gpt-oss 20B MXFP4 MoE | 11.27 GiB | 20.91 B' for ggml-org's file (kyuz0/amd-r9700-ai-toolboxes log)."""
    from collections import Counter

    from slmplan.catalog import facts, get_model, load_catalog

    f = facts(get_model(load_catalog(), "gpt-oss-20b"))
    ts = f.weight_tensors("MXFP4_MOE")
    assert round(sum(t.n_bytes for t in ts) / 2**30, 2) == 11.27
    assert round(sum(t.n_elements for t in ts) / 1e9, 2) == 20.91
    kinds = Counter(t.ggml_type for t in ts if t.n_elements > 10**6)
    assert set(kinds) == {"MXFP4", "Q8_0"} and kinds["MXFP4"] == 3 * f.n_layers  # gate/up/down experts per layer
    assert all(t.ggml_type == "MXFP4" for t in ts if "_exps" in t.name and not t.name.endswith("bias"))
    # the requantized standard types are larger: Q4_K falls back to Q5_0 on the 2880-wide rows
    assert f.weights_bytes("Q4_K_M") > 1.25 * f.weights_bytes("MXFP4_MOE")


def test_mxfp4_is_an_alias_of_llama_cpps_file_type(cli):
    from slmplan.estimate.quants import canonical_quant, is_gguf_quant
    from slmplan.importers.identify import quant_from_name, quant_from_type

    assert canonical_quant("mxfp4") == "MXFP4_MOE" and is_gguf_quant("MXFP4")
    assert canonical_quant(quant_from_type("gpt-oss 20B MXFP4 MoE")) == "MXFP4_MOE"
    assert canonical_quant(quant_from_name("gpt-oss-20b-mxfp4.gguf")) == "MXFP4_MOE"
    code, out, err = cli("fit", "gpt-oss-20b", "--device", "mac-mini-m4", "--quant", "mxfp4", "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["quant"] == "MXFP4_MOE" and not row["memory"]["weights_method"].startswith("computed")


def test_an_mxfp4_variant_in_a_catalog_and_on_the_hub_is_llama_cpps_mxfp4_moe():
    from slmplan.hub import RepoFile, pick_file, quant_fromsafe_name
    from slmplan.schema.catalog import CatalogVariant

    assert CatalogVariant(quant="mxfp4", format="GGUF").quant == "MXFP4_MOE"
    assert CatalogVariant(quant="Q4_K_M", format="GGUF").quant == "Q4_K_M"
    assert quant_fromsafe_name("gpt-oss-20b-mxfp4.gguf") == "MXFP4_MOE"
    files = [RepoFile("gpt-oss-20b-mxfp4.gguf", 12_100_000_000, "MXFP4_MOE", None)]
    assert pick_file(files, "mxfp4") == files == pick_file(files, "MXFP4_MOE")
