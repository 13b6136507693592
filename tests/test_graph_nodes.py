"""Decode's fixed cost counts llama.cpp graph nodes: the shipped per-model counts against llama.cpp itself."""

import importlib.util
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from slmplan.catalog import facts, get_model, load_catalog
from slmplan.estimate import graph
from slmplan.estimate.speed import decode_time_s, hardware_for, load_constants

ROOT = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("graph_nodes", ROOT / "benchmarks" / "graph_nodes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _f(model_id):
    return facts(get_model(load_catalog(), model_id))


def test_every_modelled_catalog_model_has_a_count():
    counts = graph._table()["models"]
    missing = [m.id for m in load_catalog().models if facts(m).modelled and m.id not in counts]
    assert not missing, f"run benchmarks/graph_nodes.py: no node count for {missing}"


def test_units_are_layers_for_llama_and_more_for_moe_and_altup():
    f = _f("smollm2-135m")
    assert graph.layer_units(f) == pytest.approx(936 / 31)  # 30 layers x 31 nodes + 6
    per_layer = {m: graph.graph_nodes(_f(m))[0] / _f(m).n_layers for m in ("llama-3.1-8b", "qwen3-30b-a3b", "gemma-3n-e4b")}
    assert per_layer["llama-3.1-8b"] < 32 < 1.5 * 32 < per_layer["qwen3-30b-a3b"] < per_layer["gemma-3n-e4b"]


def test_files_outside_the_catalog_fall_back_by_architecture():
    f = replace(_f("qwen3-30b-a3b"), id="my-finetune", n_layers=10)
    n, how = graph.graph_nodes(f)
    assert n == pytest.approx(3030 / 48 * 10) and "median nodes per layer" in how
    g = replace(_f("llama-3.2-1b"), id="x", architecture="starcoder2")
    n, how = graph.graph_nodes(g)
    assert n == 31 * g.n_layers and "assumed" in how


def test_moe_fixed_cost_scales_with_its_nodes():
    from slmplan.devices import get_device

    hw = hardware_for(get_device("jetson-orin-nano"))
    _, k = load_constants().for_backend(hw.backend)
    only_fixed = replace(k, eta_bw=1e12, kappa=None)  # streaming ~0: the fixed part alone
    t_moe, _ = decode_time_s(_f("qwen3-30b-a3b"), "Q4_K_M", hw, 0, only_fixed)
    t_dense, _ = decode_time_s(_f("llama-3.1-8b"), "Q4_K_M", hw, 0, only_fixed)
    expected = (k.c_token_s + k.c_layer_s * 3030 / 31) / (k.c_token_s + k.c_layer_s * 998 / 31)
    assert t_moe / t_dense == pytest.approx(expected, rel=1e-3)


@pytest.mark.runtime
def test_bundled_gguf_files_have_the_shipped_counts():
    """The real SmolLM2-135M and Gemma 3 270M files: llama.cpp's own node count equals the table's."""
    pytest.importorskip("llama_cpp")
    from slmplan import testmodels

    mod = _script()
    for model_id, path in (("smollm2-135m", testmodels.smollm2_path()), ("gemma-3-270m", testmodels.gemma3_path())):
        r = subprocess.run([sys.executable, "-c", mod.PROBE, str(path)], capture_output=True, text=True, timeout=300,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        found = re.findall(r"graph: nodes = (\d+)", r.stdout + r.stderr)
        assert found, r.stdout[-2000:] + r.stderr[-2000:]
        assert int(found[-1]) == graph._table()["models"][model_id]


@pytest.mark.runtime
@pytest.mark.parametrize("model_id", ["qwen3-30b-a3b", "gemma-3n-e2b", "qwen3.5-0.8b", "lfm2-8b-a1b"])
def test_shipped_counts_match_this_llama_cpp(tmp_path, model_id):
    pytest.importorskip("llama_cpp")
    assert _script().count_nodes(model_id, tmp_path) == graph._table()["models"][model_id]


def test_speed_method_names_what_is_assumed_of_moe_and_hybrid_models():
    from slmplan.devices import get_device
    from slmplan.estimate.speed import estimate_speed

    hw = hardware_for(get_device("pixel-9"))
    moe = estimate_speed(_f("qwen3-30b-a3b"), "Q4_K_M", hw, 4096).method
    assert "8 of 128 experts" in moe and "3030 llama.cpp graph nodes" in moe
    hybrid = estimate_speed(_f("lfm2-1.2b"), "Q4_K_M", hw, 4096).method
    assert "recurrent layers read a fixed-size state" in hybrid
    dense = estimate_speed(_f("llama-3.2-1b"), "Q4_K_M", hw, 4096).method
    assert "experts" not in dense and "graph nodes" not in dense
