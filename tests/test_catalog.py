import pytest

from slmplan.catalog import facts, get_model, get_variant, load_catalog
from slmplan.errors import CatalogError, UnknownIdError
from slmplan.gguf import read_gguf
from slmplan.model import facts_from_gguf

REQUIRED = """llama-2-7b llama-3.2-1b llama-3.2-3b llama-3.1-8b qwen2.5-0.5b qwen2.5-1.5b qwen2.5-3b qwen2.5-7b
qwen3-0.6b qwen3-1.7b qwen3-4b qwen3-8b gemma-2-2b gemma-3-270m gemma-3-1b gemma-3-4b phi-3-mini phi-3.5-mini
phi-4-mini smollm2-135m smollm2-360m smollm2-1.7b tinyllama-1.1b mistral-7b""".split()


def test_required_ids_and_sources():
    cat = load_catalog()
    ids = {m.id for m in cat.models}
    assert set(REQUIRED) <= ids
    for m in cat.models:
        assert m.source.startswith("http"), m.id
        assert m.hf_repo and m.license
        for v in m.variants:
            if v.size_bytes:
                assert v.source, (m.id, v.quant)


@pytest.mark.parametrize("model_id, fixture", [("smollm2-135m", "smollm2"), ("gemma-3-270m", "gemma3")])
def test_catalog_matches_real_gguf(request, model_id, fixture):
    g = facts_from_gguf(read_gguf(request.getfixturevalue(fixture)))
    m = get_model(load_catalog(), model_id)
    f = facts(m)
    for attr in ("n_layers", "n_embd", "n_ff", "n_head", "n_head_kv", "head_dim_k", "n_vocab", "n_ctx_train",
                 "tied_embeddings", "n_swa", "swa_pattern"):
        assert getattr(f, attr) == getattr(g, attr), attr
    # the synthesized quant mix reproduces the real file's tensors byte for byte
    assert f.params == g.params
    assert f.weights_bytes(g.file_quant) == g.weights_bytes(g.file_quant)


def test_weight_estimates_match_published_sizes():
    """Quant-mix estimate vs every published file size in the catalog (files add a few MB of header).
    A file that holds the model's MTP block (includes_mtp) is compared with the tensors it holds."""
    checked = 0
    for m in load_catalog().models:
        f = facts(m)
        for v in m.variants:
            if v.size_bytes:
                ratio = f.file_weights_bytes(v.quant, with_mtp=bool(v.includes_mtp)) / v.size_bytes
                assert 0.96 < ratio <= 1.006, (m.id, v.quant, ratio)
                checked += 1
    assert checked >= 15


def test_unknown_ids():
    cat = load_catalog()
    with pytest.raises(UnknownIdError, match="unknown model 'llama-9'"):
        get_model(cat, "llama-9")
    with pytest.raises(UnknownIdError, match="has no quant 'Q9_K'"):
        get_variant(get_model(cat, "llama-3.2-1b"), "Q9_K")


GOOD = """schema_version: 1
models:
  - id: tiny
    name: Tiny
    family: t
    architecture: llama
    layers: 2
    hidden_size: 64
    intermediate_size: 128
    heads: 4
    kv_heads: 2
    head_dim: 16
    vocab_size: 100
    context_length: 512
    tied_embeddings: true
    license: mit
    source: https://example.org/config.json
    variants:
      - {quant: Q4_K_M, format: GGUF}
"""


@pytest.mark.parametrize("text, message", [
    (GOOD, None),
    ("models: [\n  - id: x\n", "malformed YAML at line"),  # YAML syntax
    (GOOD.replace("layers: 2", "layers: -2"), "models[0] (id 'tiny').layers: Input should be greater than 0"),
    (GOOD.replace("layers: 2", "layers: two"), "models[0] (id 'tiny').layers"),  # wrong type
    (GOOD.replace("license: mit", "license: mit\n    licence: mit"), "models[0] (id 'tiny').licence: unknown key"),
    (GOOD.replace("kv_heads: 2", "kv_heads: 3"), "multiple of kv_heads"),  # impossible GQA
    (GOOD.replace("Q4_K_M", "Q9_Z"), "unknown quant 'Q9_Z'"),
    (GOOD.replace("{quant: Q4_K_M, format: GGUF}", "{quant: Q4_K_M, format: GGUF, size_bytes: 10}"), "need a 'source'"),
    ("- just\n- a list\n", "expected a mapping"),
    (GOOD + GOOD.split("models:\n")[1], "duplicate model ids: tiny"),
])
def test_catalog_validation(tmp_path, text, message):
    p = tmp_path / "cat.yaml"
    p.write_text(text)
    if message is None:
        assert load_catalog(p).models[0].id == "tiny"
    else:
        with pytest.raises(CatalogError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
            load_catalog(p)
