"""The 2025-2026 catalog entries against published figures, and architectures slmplan does not model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gguf import GGUFWriter

from slmplan.catalog import facts, get_model, load_catalog
from slmplan.errors import CatalogError
from slmplan.estimate.memory import estimate_memory


def _f(model_id):
    return facts(get_model(load_catalog(), model_id))


@pytest.mark.parametrize("model_id, total, active, rel", [
    # LiquidAI model cards: 354M, 742M, 1.17B, 2.57B parameters
    ("lfm2-350m", 354e6, None, 0.01), ("lfm2-700m", 742e6, None, 0.01),
    ("lfm2-1.2b", 1.17e9, None, 0.01), ("lfm2-2.6b", 2.57e9, None, 0.01),
    # Qwen3 technical report: 30.5B total, 3.3B activated
    ("qwen3-30b-a3b", 30.5e9, 3.3e9, 0.02),
    # OpenAI gpt-oss model card: 21B total (20.9B), 3.6B active (ours also counts the 0.58B untied input embedding)
    ("gpt-oss-20b", 20.9e9, 3.6e9 + 201088 * 2880, 0.03),
    # Google: Gemma 4 E2B "2.3B effective" (without the per-layer embeddings)
    ("gemma-4-e2b", None, 2.3e9, 0.03),
])
def test_parameter_counts_match_published(model_id, total, active, rel):
    f = _f(model_id)
    if total:
        assert f.params == pytest.approx(total, rel=rel)
    if active:
        assert f.active_params("F16") == pytest.approx(active, rel=rel)


def test_hybrid_and_moe_memory_structure():
    lfm = _f("lfm2-1.2b")
    assert lfm.n_kv_layers == 6 and lfm.n_recurrent_layers == 10
    e = estimate_memory(lfm, "Q4_K_M", 32768, 8 << 30)
    dense_like = 16 * 32768 * 2 * 512 * 2  # what 16 attention layers would need
    assert e.kv_cache_bytes == 6 * 32768 * 2 * 512 * 2 < dense_like
    assert e.state_bytes == 10 * 2048 * 2 * 4  # conv state: n_embd x (L_cache - 1) f32 per conv layer
    g = _f("gemma-4-e2b")
    assert g.n_kv_layers == 15 and g.kv_dims(4) == (512, 512) and g.kv_dims(0) == (256, 256)
    moe = _f("qwen3-30b-a3b")
    w = moe.weight_tensors("Q4_K_M")
    assert {round(t.active_fraction, 4) for t in w if "_exps" in t.name} == {8 / 128}


def _catalog_with(tmp_path, arch):
    text = (tmp_path / "c.yaml")
    text.write_text(f"""schema_version: 1
models:
  - {{id: x, name: X, family: x, architecture: {arch}, layers: 2, hidden_size: 64, intermediate_size: 128,
     heads: 4, kv_heads: 4, head_dim: 16, vocab_size: 100, context_length: 512, tied_embeddings: true,
     license: mit, source: "https://example.org/config.json", variants: [{{quant: Q8_0, format: GGUF}}]}}
""")
    return text


@pytest.mark.parametrize("arch", ["mamba", "bert", "rwkv7"])
def test_catalog_refuses_unmodelled_architecture(tmp_path, arch, cli):
    p = _catalog_with(tmp_path, arch)
    with pytest.raises(CatalogError, match="not modelled"):
        load_catalog(p)
    code, out, err = cli("plan", "--device", "pixel-8", "--catalog", str(p))
    assert code == 2 and err.startswith("Error:") and "not modelled" in err and not out


def _gguf(path, arch):
    w = GGUFWriter(str(path), arch)
    w.add_block_count(2)
    w.add_embedding_length(64)
    w.add_head_count(4)
    w.add_feed_forward_length(128)
    w.add_context_length(512)
    w.add_tensor("token_embd.weight", np.zeros((32, 64), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_encoder_gguf_is_refused(tmp_path, cli):
    p = _gguf(tmp_path / "enc.gguf", "bert")
    code, out, err = cli("fit", str(p), "--device", "pixel-8")
    assert code == 2 and err.startswith("Error:") and "not an autoregressive text decoder" in err and not out
    code, out, _ = cli("inspect", str(p))
    assert code == 0 and "bert" in out  # the file can still be described


def test_unmodelled_decoder_gguf_says_so(tmp_path, cli):
    p = _gguf(tmp_path / "rwkv.gguf", "rwkv7")
    code, out, err = cli("fit", str(p), "--device", "pixel-8", "--format", "json")
    assert code == 0
    notes = json.loads(out)[0]["memory"]["notes"]
    assert any("'rwkv7' is not modelled" in n for n in notes)


def _lfm2_gguf(path, **extra):
    w = GGUFWriter(str(path), "lfm2")
    w.add_block_count(2)
    w.add_embedding_length(64)
    w.add_head_count(4)
    w.add_feed_forward_length(128)
    w.add_context_length(512)
    for k, v in extra.items():
        w.add_array(k, v) if isinstance(v, list) else w.add_uint32(k, v)
    w.add_tensor("token_embd.weight", np.zeros((32, 64), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("extra, expect", [
    ({"lfm2.attention.head_count_kv": ["a", "b"]}, "is an array of STRING, not counts"),
    ({"lfm2.attention.head_count_kv": [1]}, "not a valid per-layer array"),  # shorter than block_count
    ({"lfm2.expert_count": 4, "lfm2.expert_used_count": 9}, "expert_used_count must be between"),
])
def test_crafted_per_layer_and_expert_keys(tmp_path, cli, extra, expect):
    p = _lfm2_gguf(tmp_path / "x.gguf", **extra)
    code, out, err = cli("fit", str(p), "--device", "pixel-8")
    assert code == 2 and err.startswith("Error:") and expect in err and not out


def test_hybrid_gguf_state_from_header(tmp_path, cli):
    p = _lfm2_gguf(tmp_path / "h.gguf", **{"lfm2.attention.head_count_kv": [0, 4], "lfm2.shortconv.l_cache": 3})
    code, out, _ = cli("fit", str(p), "--device", "pixel-8", "--format", "json", "--ctx", "4096")
    assert code == 0
    mem = json.loads(out)[0]["memory"]
    assert mem["state_bytes"] == 64 * 2 * 4  # one conv layer: n_embd x (L_cache - 1) f32
    assert mem["kv_cache_bytes"] == 4096 * 2 * (4 * 16) * 2  # one attention layer, 4 KV heads of 16
