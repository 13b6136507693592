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
    # Gemma 3n text decoders as llama.cpp's GGUF holds them: Ollama's gemma3n:e2b "4.46B", LM Studio's gemma-3n-e4b "6.9B"
    ("gemma-3n-e2b", 4.46e9, None, 0.01), ("gemma-3n-e4b", 6.9e9, None, 0.01),
    # Google: Gemma 4 E4B "4.5B effective" (without the per-layer embeddings); ours is 3.2% above that rounded figure
    ("gemma-4-e4b", None, 4.5e9, 0.04),
    # llama.cpp's own count for unsloth's Qwen3.5-2B-BF16.gguf (model_parameters in a published graph capture)
    ("qwen3.5-2b", 1_881_825_088, None, 1e-9),
    # Qwen model cards: Qwen3.5-9B "9B"; Qwen3.5-35B-A3B 35B total, 3B activated (ours adds the untied input embedding)
    ("qwen3.5-9b", 9e9, None, 0.01), ("qwen3.5-35b-a3b", 35e9, 3e9 + 248320 * 2048, 0.02),
    # IBM: Granite 4.0 H Tiny 7B total
    ("granite-4.0-h-tiny", 7e9, None, 0.02),
    # IBM: Granite 4.0 H Micro and Micro "3B" (rounded; ours 3.19B and 3.40B, Ollama lists the Micro as 3.4B)
    ("granite-4.0-h-micro", 3e9, None, 0.07), ("granite-4.0-micro", 3.4e9, None, 0.01),
    # LiquidAI model card: LFM2-8B-A1B 8.3B total (its "1.5B active" is rounded: ours is 1.56B with the embedding)
    ("lfm2-8b-a1b", 8.3e9, None, 0.01),
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


@pytest.mark.parametrize("model_id, quants", [
    # IBM's GGUF files: every quant is the same header plus tensor data (llama.cpp's quant mix per tensor)
    ("granite-4.0-h-micro", ["Q3_K_M", "Q4_K_M", "Q5_K_M", "Q8_0"]),
    ("granite-4.0-h-1b", ["Q4_0", "Q4_K_M", "Q5_K_M"]),
])
def test_published_sizes_are_one_header_plus_the_quant_mix(model_id, quants):
    """The header of a GGUF does not depend on the quant type, so file size minus the estimated tensor data
    must be the same for every published file of a model: the quant mix is exact, not just close."""
    m = get_model(load_catalog(), model_id)
    f = facts(m)
    sizes = {v.quant: v.size_bytes for v in m.variants if v.size_bytes}
    assert set(quants) <= set(sizes)
    headers = {q: sizes[q] - f.weights_bytes(q) for q in quants}
    assert len(set(headers.values())) == 1, headers
    assert 0 < next(iter(headers.values())) < 8 << 20  # the tokenizer of a 100k vocabulary and the tensor table


def _qwen35_mtp_params(f):
    """Parameters of one Qwen3.5 MTP block from its shapes: a gated full-attention layer, the FFN (dense or
    MoE with a shared expert), and nextn.eh_proj (2E x E); norms apart."""
    E, q, kv = f.n_embd, f.n_head * f.head_dim_k, f.n_head_kv * f.head_dim_k
    attn = E * 2 * q + 2 * E * kv + q * E
    ffn = (f.n_expert * 3 * E * f.n_ff_exp + E * f.n_expert + 3 * E * f.n_ff_shexp) if f.is_moe else 3 * E * f.n_ff
    return attn + ffn + 2 * E * E


def test_qwen35_mtp_block_counts_in_the_file_not_in_memory():
    cat = load_catalog()
    headers = {}
    for m in cat.models:
        if m.architecture not in ("qwen35", "qwen35moe"):
            continue
        f = facts(m)
        assert f.n_layer_nextn == 1
        mtp = f.mtp_tensors("BF16")
        assert mtp and all(t.layer == f.n_layers for t in mtp)
        assert sum(t.n_elements for t in mtp if t.role != "norm") == _qwen35_mtp_params(f)
        assert not any(t.layer >= f.n_layers for t in f.weight_tensors("Q8_0"))  # skipped by llama.cpp at load
        assert f.file_weights_bytes("Q8_0", with_mtp=True) == f.weights_bytes("Q8_0") + f.mtp_bytes("Q8_0")
        for v in m.variants:
            if v.size_bytes and v.quant in ("Q8_0", "BF16"):
                assert v.includes_mtp is not None
                headers[(m.id, v.includes_mtp)] = v.size_bytes - f.file_weights_bytes(v.quant, bool(v.includes_mtp))
    # one file with the MTP block (ggml-org's 0.8B), four without: all leave the same ~11 MB Qwen3.5 header
    assert sum(1 for _, mtp in headers if mtp) == 1 and len(headers) >= 5
    assert all(10.9e6 < h < 11.1e6 for h in headers.values()), headers
    # counting the 0.8B file without its MTP block would leave 21.7 MB unexplained
    f08 = facts(get_model(cat, "qwen3.5-0.8b"))
    assert f08.mtp_bytes("Q8_0") > 20e6


def test_mtp_memory_note():
    e = estimate_memory(_f("qwen3.5-0.8b"), "Q8_0", 4096, 8 << 30)
    assert any("multi-token-prediction block" in n and "not loaded" in n for n in e.notes)
    assert e.weights_bytes == _f("qwen3.5-0.8b").weights_bytes("Q8_0")


MTP_ENTRY = """schema_version: 1
models:
  - {id: x, name: X, family: x, architecture: ARCH, layers: 4, hidden_size: 64, intermediate_size: 128,
     heads: 4, kv_heads: 2, head_dim: 16, vocab_size: 256, context_length: 512, tied_embeddings: true,
     layer_types: [linear_attention, linear_attention, linear_attention, full_attention],
     ssm_conv_kernel: 4, ssm_state_size: 16, ssm_inner_size: 64, ssm_heads: 4, ssm_groups: 2,
     MTP license: mit, source: "https://example.org/config.json", variants: [VARIANT]}
"""


@pytest.mark.parametrize("arch, mtp, variant, message", [
    ("qwen35", "mtp_layers: 1,", "{quant: Q8_0, format: GGUF, size_bytes: 1000000, source: s}", "needs includes_mtp"),
    ("qwen35", "", "{quant: Q8_0, format: GGUF, size_bytes: 1000000, source: s, includes_mtp: true}",
     "includes_mtp needs the model's mtp_layers"),
    ("lfm2", "conv_l_cache: 3, mtp_layers: 1,", "{quant: Q8_0, format: GGUF}", "mtp_layers for architecture 'lfm2' is not modelled"),
])
def test_catalog_mtp_fields_are_checked(tmp_path, arch, mtp, variant, message):
    p = tmp_path / "c.yaml"
    text = MTP_ENTRY.replace("ARCH", arch).replace("MTP ", mtp + " ").replace("VARIANT", variant)
    if arch == "lfm2":
        text = text.replace("linear_attention", "conv").replace("ssm_conv_kernel: 4, ssm_state_size: 16, ssm_inner_size: 64, "
                                                                "ssm_heads: 4, ssm_groups: 2,", "")
    p.write_text(text)
    with pytest.raises(CatalogError, match=message):
        load_catalog(p)
    ok = tmp_path / "ok.yaml"
    ok.write_text(MTP_ENTRY.replace("ARCH", "qwen35").replace("MTP ", "mtp_layers: 1, ").replace(
        "VARIANT", "{quant: Q8_0, format: GGUF, size_bytes: 1000000, source: s, includes_mtp: false}"))
    assert facts(load_catalog(ok).models[0]).n_layer_nextn == 1
