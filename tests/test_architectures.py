"""MoE, hybrid-recurrent and per-layer-embedding architectures against llama.cpp itself.

Each case writes a small GGUF of the architecture (real metadata keys, the tensor layout of
slmplan/arch.py, few layers, small dimensions: tests/synthgguf.py), loads it in llama.cpp through
llama-cpp-python (no CPU repack buffers) and compares every buffer llama.cpp reports with the estimate
slmplan makes from the same file's header: model weights, KV cache, recurrent state and the compute
buffer exactly (to the 0.01 MiB llama.cpp prints). The compute buffer comes from the ubatch graph
slmplan rebuilds (slmplan/estimate/llama_graph.py); a second table of other dimensions, with flash
attention on and off and a window-sized sliding-window cache, keeps it from matching one shape only.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from synthgguf import llama_cpp_buffers, write

from slmplan.estimate.memory import RuntimeSettings, estimate_memory
from slmplan.gguf import read_gguf
from slmplan.model import ModelFacts, facts_from_gguf

MIB = 2**20
PRINT_RES = 0.005 * MIB + 1  # llama.cpp prints MiB with two decimals
COMPUTE_RES = 2 * PRINT_RES  # compute and output buffers, each printed to 0.01 MiB


def _f(arch, L=6, E=256, **kw):
    base = dict(id=arch, name=arch, architecture=arch, n_layers=L, n_embd=E, n_ff=512, n_head=4, n_head_kv=2,
                head_dim_k=64, head_dim_v=64, n_vocab=512, n_ctx_train=8192, tied_embeddings=True)
    base.update(kw)
    return ModelFacts(**base)


def _hybrid(L, attn):
    rec = tuple(i not in attn for i in range(L))
    return dict(recurrent=rec, layer_kv_heads=tuple(0 if r else 2 for r in rec))


CASES = {
    # Qwen3-30B-A3B shape family: every layer MoE, q/k norms
    "qwen3moe": (_f("qwen3moe", n_expert=8, n_expert_used=2, n_ff_exp=128), {}),
    # gpt-oss: MoE with biases and attention sinks, alternating SWA (pattern 2), untied output
    "gpt-oss": (_f("gpt-oss", tied_embeddings=False, n_swa=128, swa_pattern=2, n_expert=8, n_expert_used=2,
                   n_ff_exp=128), {}),
    # LFM2: short-conv layers (R state only) and attention layers; KV heads 0 mark the conv layers
    "lfm2": (_f("lfm2", E=512, head_dim_k=128, head_dim_v=128, shortconv_l_cache=3, **_hybrid(6, {2, 5})), {}),
    # LFM2-MoE: the same with MoE FFNs after the leading dense layers
    "lfm2moe": (_f("lfm2moe", E=512, head_dim_k=128, head_dim_v=128, shortconv_l_cache=3, n_expert=8, n_expert_used=2, n_ff_exp=128,
                   n_layer_dense_lead=2, **_hybrid(6, {2, 5})),
                {"{arch}.leading_dense_block_count": 2, "{arch}.expert_gating_func": 2}),
    # Granite 4 hybrid: Mamba 2 layers (R conv + S SSM state) and attention layers
    "granitehybrid": (_f("granitehybrid", ssm_d_conv=4, ssm_d_inner=512, ssm_d_state=64, ssm_n_group=1,
                         ssm_dt_rank=8, **_hybrid(6, {3})), {}),
    # Qwen3.5: gated delta-net layers, every 4th layer full attention
    "qwen35": (_f("qwen35", L=8, ssm_d_conv=4, ssm_d_inner=512, ssm_d_state=64, ssm_n_group=4, ssm_dt_rank=8,
                  recurrent=tuple((i + 1) % 4 != 0 for i in range(8))),
               {"{arch}.full_attention_interval": 4, "{arch}.rope.dimension_sections": [8, 12, 12, 0]}),
    "qwen35moe": (_f("qwen35moe", L=8, ssm_d_conv=4, ssm_d_inner=512, ssm_d_state=64, ssm_n_group=4,
                     ssm_dt_rank=8, n_expert=8, n_expert_used=2, n_ff_exp=128, n_ff_shexp=256,
                     recurrent=tuple((i + 1) % 4 != 0 for i in range(8))),
                  {"{arch}.full_attention_interval": 4, "{arch}.rope.dimension_sections": [8, 12, 12, 0]}),
    # Gemma 3n: per-layer embeddings (256 wide), AltUp/Laurel, layers from 20 on reuse earlier KV
    "gemma3n": (_f("gemma3n", L=22, n_swa=128, swa_pattern=5, n_layer_kv_from_start=20, n_embd_per_layer=256), {}),
    # Gemma 4 (E2B-like): SWA and full layers with different head sizes, KV sharing, per-layer embeddings
    "gemma4": (_f("gemma4", L=10, head_dim_k=128, head_dim_v=128, head_dim_swa=64, n_swa=128,
                  swa_layers=tuple((i + 1) % 5 != 0 for i in range(10)), n_layer_kv_from_start=5,
                  n_embd_per_layer=64),
               {"{arch}.attention.shared_kv_layers": 5, "{arch}.embedding_length_per_layer_input": 64,
                "{arch}.rope.dimension_count_swa": 64,  # RoPE over the SWA head, as Gemma 4 files say
                "{arch}.attention.key_length_swa": 64, "{arch}.attention.value_length_swa": 64,
                "{arch}.attention.sliding_window_pattern": [(i + 1) % 5 != 0 for i in range(10)]}),
}


Q35 = {"{arch}.full_attention_interval": 4, "{arch}.rope.dimension_sections": [8, 12, 12, 0]}
# Other dimensions of every family (and the dense llama-like decoders): head counts and sizes, FFN and
# expert widths, SSM state/group/head counts, conv lengths, vocabularies, layer patterns.
SHAPES = {
    "llama": (_f("llama", L=4, E=384, n_head=6, n_head_kv=2, n_ff=1024, n_vocab=1024, tied_embeddings=False), {}),
    "qwen3": (_f("qwen3", L=4, E=512, n_head=8, n_head_kv=4, head_dim_k=128, head_dim_v=128, n_ff=768,
                 n_vocab=4096), {}),
    "smollm3": (_f("smollm3", L=8, E=256, n_head=4, n_head_kv=1, n_ff=640), {}),
    "qwen3moe": (_f("qwen3moe", L=4, E=384, n_head=6, n_head_kv=3, n_vocab=2048, n_expert=16, n_expert_used=4,
                    n_ff_exp=96), {}),
    "gpt-oss": (_f("gpt-oss", L=4, E=512, n_head=8, n_head_kv=2, tied_embeddings=False, n_swa=256, swa_pattern=2,
                   n_expert=4, n_expert_used=1, n_ff_exp=256, n_vocab=1024), {}),
    "lfm2": (_f("lfm2", L=7, E=768, n_head=6, n_head_kv=2, head_dim_k=128, head_dim_v=128, n_ff=1024,
                shortconv_l_cache=3, **_hybrid(7, {1, 4, 6})), {}),
    "lfm2moe": (_f("lfm2moe", L=5, E=384, head_dim_k=96, head_dim_v=96, shortconv_l_cache=4, n_expert=4,
                   n_expert_used=2, n_ff_exp=192, n_layer_dense_lead=1, n_vocab=2048, **_hybrid(5, {0, 3})), {}),
    "granitehybrid": (_f("granitehybrid", L=5, E=384, n_head=6, n_head_kv=2, ssm_d_conv=4, ssm_d_inner=768,
                         ssm_d_state=128, ssm_n_group=2, ssm_dt_rank=12, n_vocab=1024, **_hybrid(5, {1, 4})), {}),
    "granitehybrid-moe": (_f("granitehybrid", L=4, ssm_d_conv=4, ssm_d_inner=512, ssm_d_state=64, ssm_n_group=1,
                             ssm_dt_rank=8, n_ff=128, n_expert=8, n_expert_used=2, n_ff_exp=128, n_ff_shexp=256,
                             **_hybrid(4, {2})), {}),
    "qwen35": (_f("qwen35", L=8, E=384, ssm_d_conv=4, ssm_d_inner=512, ssm_d_state=128, ssm_n_group=2,
                  ssm_dt_rank=4, n_vocab=1024, recurrent=tuple((i + 1) % 4 != 0 for i in range(8))), Q35),
    "qwen35moe": (_f("qwen35moe", L=4, ssm_d_conv=4, ssm_d_inner=256, ssm_d_state=32, ssm_n_group=2, ssm_dt_rank=8,
                     n_expert=16, n_expert_used=4, n_ff_exp=64, n_ff_shexp=128, n_vocab=3000,
                     recurrent=tuple((i + 1) % 4 != 0 for i in range(4))), Q35),
    "gemma3n": (_f("gemma3n", L=24, E=384, n_head=6, n_head_kv=2, n_ff=768, n_vocab=1024, n_swa=256, swa_pattern=4,
                   n_layer_kv_from_start=20, n_embd_per_layer=256), {}),
    "gemma4": (_f("gemma4", L=12, E=384, head_dim_k=256, head_dim_v=256, head_dim_swa=128, n_swa=256, n_vocab=2048,
                  swa_layers=tuple((i + 1) % 6 != 0 for i in range(12)), n_layer_kv_from_start=6,
                  n_embd_per_layer=32), {"{arch}.rope.dimension_count_swa": 128}),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("arch")
    return {k: write(d / f"{k}.gguf", f, kv) for k, (f, kv) in CASES.items()}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    d = tmp_path_factory.mktemp("shapes")
    return {k: write(d / f"{k}.gguf", f, kv) for k, (f, kv) in SHAPES.items()}


def _measure(files, arch, ctx):
    pytest.importorskip("llama_cpp")
    path = files[arch]
    f = facts_from_gguf(read_gguf(path))
    assert f.architecture == arch and f.modelled
    est = estimate_memory(f, f.file_quant or "F32", ctx, budget_bytes=1 << 34, s=RuntimeSettings(repack=False))
    return f, est, llama_cpp_buffers(path, ctx)


@pytest.mark.runtime
@pytest.mark.parametrize("arch", list(CASES))
@pytest.mark.parametrize("ctx", [512, 2048, 8192])
def test_buffers_match_llamacpp(files, arch, ctx):
    """Every buffer llama.cpp reports: model weights, KV cache, recurrent state (RS) and compute exact."""
    f, est, got = _measure(files, arch, ctx)
    assert est.weights_bytes == pytest.approx(got["CPU_Mapped model"], abs=PRINT_RES)
    assert est.kv_cache_bytes == pytest.approx(got.get("CPU KV", 0.0), abs=PRINT_RES)
    assert est.state_bytes == pytest.approx(got.get("CPU RS", 0.0), abs=PRINT_RES)
    assert ("CPU RS" in got) == bool(f.n_recurrent_layers)  # a state buffer exactly when there are recurrent layers
    assert est.compute_bytes == pytest.approx(got["CPU compute"] + got.get("CPU output", 0.0), abs=COMPUTE_RES)


@pytest.mark.runtime
@pytest.mark.parametrize("case", list(SHAPES))
@pytest.mark.parametrize("ctx,flash_attn", [(512, False), (4096, False), (4096, True)])
def test_compute_buffer_other_shapes(shapes, case, ctx, flash_attn):
    """The compute buffer for other dimensions, with and without flash attention (its f16 mask, no f32
    scores): the graph is rebuilt, not a formula fitted to the shapes above."""
    pytest.importorskip("llama_cpp")
    f = facts_from_gguf(read_gguf(shapes[case]))
    s = RuntimeSettings(repack=False, flash_attn=flash_attn)
    est = estimate_memory(f, "F32", ctx, 1 << 34, s)
    got = llama_cpp_buffers(shapes[case], ctx, flash_attn=flash_attn)
    assert est.kv_cache_bytes == pytest.approx(got.get("CPU KV", 0.0), abs=PRINT_RES)
    assert est.compute_bytes == pytest.approx(got["CPU compute"] + got.get("CPU output", 0.0), abs=COMPUTE_RES)


@pytest.mark.runtime
@pytest.mark.parametrize("case", ["llama", "gpt-oss", "granitehybrid", "qwen35", "gemma3n", "gemma4"])
@pytest.mark.parametrize("type_k,type_v,flash_attn", [("q8_0", "f16", False), ("q4_0", "q4_0", True)])
def test_compute_buffer_quantized_cache(shapes, case, type_k, type_v, flash_attn):
    """A quantized KV cache: llama.cpp rotates Q, K (and V) by a Hadamard matrix before storing them."""
    pytest.importorskip("llama_cpp")
    f = facts_from_gguf(read_gguf(shapes[case]))
    s = RuntimeSettings(repack=False, flash_attn=flash_attn, type_k=type_k, type_v=type_v)
    est = estimate_memory(f, "F32", 2048, 1 << 34, s)
    got = llama_cpp_buffers(shapes[case], 2048, flash_attn=flash_attn, type_k=type_k, type_v=type_v)
    assert est.compute_bytes == pytest.approx(got["CPU compute"] + got.get("CPU output", 0.0), abs=COMPUTE_RES)


@pytest.mark.runtime
@pytest.mark.parametrize("case", ["gpt-oss", "gemma3n", "gemma4"])
@pytest.mark.parametrize("n_ubatch", [128, 1024])
def test_compute_buffer_window_cache_and_ubatch(shapes, case, n_ubatch):
    """llama-server's settings: a window-sized SWA cache (its own, smaller mask), other ubatch sizes."""
    pytest.importorskip("llama_cpp")
    f = facts_from_gguf(read_gguf(shapes[case]))
    s = RuntimeSettings(repack=False, swa_full=False, n_ubatch=n_ubatch, n_batch=n_ubatch)
    est = estimate_memory(f, "F32", 4096, 1 << 34, s)
    got = llama_cpp_buffers(shapes[case], 4096, swa_full=False, n_ubatch=n_ubatch)
    assert est.kv_cache_bytes == pytest.approx(got["CPU KV"], abs=PRINT_RES)
    assert est.compute_bytes == pytest.approx(got["CPU compute"] + got.get("CPU output", 0.0), abs=COMPUTE_RES)


def test_layer_structure_from_header(files):
    """What the header says about layer kinds, as llama.cpp derives it (no runtime needed)."""
    f = {k: facts_from_gguf(read_gguf(p)) for k, p in files.items()}
    assert f["lfm2"].n_recurrent_layers == 4 and f["lfm2"].n_kv_layers == 2
    assert f["granitehybrid"].n_kv_layers == 1 and f["granitehybrid"].state_elements() == (3 * (512 + 2 * 64), 64 * 512)
    assert [f["qwen35"].is_recurrent(i) for i in range(8)] == [True, True, True, False] * 2
    assert f["gemma3n"].n_kv_layers == 20  # llama.cpp: layers from 20 on reuse earlier caches
    g4 = f["gemma4"]
    assert g4.n_kv_layers == 5 and g4.kv_dims(0) == (128, 128) and g4.kv_dims(4) == (256, 256)
    moe = f["qwen3moe"]
    exps = [t for t in moe.exact_tensors if "_exps." in t.name]
    assert exps and all(t.active_fraction == 2 / 8 for t in exps)
    assert moe.active_params() < moe.params
    ple = next(t for t in g4.exact_tensors if t.name == "per_layer_token_embd.weight")
    assert ple.active_fraction == 1 / 512


def test_per_layer_embd_setting(files):
    f = facts_from_gguf(read_gguf(files["gemma4"]))
    res = estimate_memory(f, "F32", 512, 1 << 34, RuntimeSettings(repack=False))
    mapped = estimate_memory(f, "F32", 512, 1 << 34, RuntimeSettings(repack=False, per_layer_embd="mapped"))
    ple = 64 * 10 * 512 * 4  # [n_embd_per_layer x n_layer, n_vocab] f32
    assert res.per_layer_embd_bytes == mapped.per_layer_embd_bytes == ple
    assert res.total_bytes - mapped.total_bytes == ple and res.weights_bytes - mapped.weights_bytes == ple
    assert "mapped" in mapped.weights_method
    assert any("mapped" in n for n in mapped.notes) and res.per_layer_embd == "resident"


@pytest.mark.runtime
@pytest.mark.parametrize("arch", ["gpt-oss", "gemma3n", "gemma4"])
def test_swa_cache_without_swa_full(files, arch):
    """llama-server's default (swa_full off): sliding-window layers keep only window + ubatch cells."""
    pytest.importorskip("llama_cpp")
    f = facts_from_gguf(read_gguf(files[arch]))
    est = estimate_memory(f, "F32", 2048, 1 << 34, RuntimeSettings(repack=False, swa_full=False))
    full = estimate_memory(f, "F32", 2048, 1 << 34, RuntimeSettings(repack=False))
    assert est.kv_cache_bytes < full.kv_cache_bytes
    got = llama_cpp_buffers(files[arch], 2048, swa_full=False)
    assert est.kv_cache_bytes == pytest.approx(got["CPU KV"], abs=PRINT_RES)
    if arch == "gemma4":  # 4 SWA layers x pad(128 + 512) x (K 128 + V at the widest 256) + 1 full x 2048 x 512, f16
        assert est.kv_cache_bytes == 4 * 768 * 384 * 2 + 2048 * 512 * 2


@pytest.mark.runtime
@pytest.mark.parametrize("arch", ["lfm2", "granitehybrid", "qwen35"])
def test_recurrent_state_per_sequence(files, arch):
    """llama.cpp keeps one R/S state set per sequence (n_seq_max): the RS buffer scales with it."""
    pytest.importorskip("llama_cpp")
    f = facts_from_gguf(read_gguf(files[arch]))
    est = estimate_memory(f, "F32", 2048, 1 << 34, RuntimeSettings(repack=False, n_seq=8))
    got = llama_cpp_buffers(files[arch], 2048, n_seq=8)
    assert est.state_bytes == pytest.approx(got["CPU RS"], abs=PRINT_RES)
    r, s = f.state_elements()
    assert est.state_bytes == 4 * (r + s) * 8 * f.n_recurrent_layers


def _shrunk(f):
    """A catalog entry's structure (layer kinds, SWA flags, KV sharing, experts) at tiny widths."""
    from dataclasses import replace

    k = 8
    hd = max(f.head_dim_k // k, 8)
    kw = dict(n_embd=f.n_head * 16 if f.architecture in ("lfm2", "lfm2moe") else 128, n_ff=64, n_vocab=512,
              head_dim_k=hd, head_dim_v=hd, n_ctx_train=4096)
    if f.architecture in ("lfm2", "lfm2moe"):  # LFM2 attention projects n_embd = n_head x head_dim
        kw["head_dim_k"] = kw["head_dim_v"] = 16
    if f.head_dim_swa:
        kw["head_dim_swa"] = max(f.head_dim_swa // k, 8)
    if f.layer_ff is not None:
        kw["layer_ff"] = tuple(64 if x == f.n_ff else 128 for x in f.layer_ff)
    if f.n_embd_per_layer and f.architecture != "gemma3n":  # gemma3n: llama.cpp hard-codes n_embd_altup 256
        kw["n_embd_per_layer"] = 16
    if f.n_expert:
        kw.update(n_expert=min(f.n_expert, 8), n_expert_used=min(f.n_expert_used, 2), n_ff_exp=32)
    if f.architecture == "granitehybrid":  # llama.cpp asserts d_inner == 2 n_embd; 8 SSM heads keep tensors 32-byte sized
        kw.update(ssm_d_inner=2 * kw["n_embd"], ssm_dt_rank=8)
    return replace(f, **kw)


def _assert_buffers_match(est, got) -> None:
    """Model, KV, recurrent-state and compute buffers as llama.cpp printed them."""
    assert est.weights_bytes == pytest.approx(got["CPU_Mapped model"], abs=PRINT_RES)
    assert est.kv_cache_bytes == pytest.approx(got.get("CPU KV", 0.0), abs=PRINT_RES)
    assert est.state_bytes == pytest.approx(got.get("CPU RS", 0.0), abs=PRINT_RES)
    assert est.compute_bytes == pytest.approx(got["CPU compute"] + got.get("CPU output", 0.0), abs=COMPUTE_RES)


@pytest.mark.runtime
@pytest.mark.parametrize("model_id", ["lfm2-350m", "lfm2-2.6b", "gemma-4-e2b", "qwen3-30b-a3b", "gpt-oss-20b",
                                      "gemma-3n-e2b", "gemma-3n-e4b", "gemma-4-e4b", "qwen3.5-0.8b", "qwen3.5-4b",
                                      "qwen3.5-9b", "qwen3.5-35b-a3b", "granite-4.0-h-tiny", "granite-4.0-h-1b",
                                      "granite-4.0-h-micro", "granite-4.0-micro", "lfm2-8b-a1b"])
def test_catalog_structures_load_in_llamacpp(tmp_path, model_id):
    """The catalog's mapping of config.json facts to llama.cpp's (layer kinds, head sizes, KV sharing,
    double-wide FFN, experts), checked by loading a tiny file of the same structure."""
    pytest.importorskip("llama_cpp")
    from slmplan.catalog import facts, get_model, load_catalog

    f = _shrunk(facts(get_model(load_catalog(), model_id)))
    # keys llama.cpp requires that the catalog does not carry (Qwen3.5: M-RoPE sections for the shrunk head size)
    kv, as_written = {}, f
    if f.architecture.startswith("qwen35"):
        kv = {"{arch}.full_attention_interval": 4, "{arch}.rope.dimension_sections": [4, 6, 6, 0]}
        # llama.cpp's converter writes a scalar KV head count for Qwen3.5 (the interval marks the recurrent layers)
        as_written = replace(f, layer_kv_heads=None)
    elif f.architecture == "granite":  # llama.cpp's granite loader requires the logit scale
        kv = {"{arch}.logit_scale": 10.0}
    path = write(tmp_path / f"{model_id}.gguf", as_written, kv)
    g = facts_from_gguf(read_gguf(path))
    assert (g.n_kv_layers, g.n_recurrent_layers, g.n_swa_layers) == (f.n_kv_layers, f.n_recurrent_layers, f.n_swa_layers)
    est = estimate_memory(f, "F32", 1024, 1 << 34, RuntimeSettings(repack=False))
    got = llama_cpp_buffers(path, 1024)
    _assert_buffers_match(est, got)


@pytest.mark.parametrize("arch", ["qwen35", "qwen35moe"])
def test_mtp_block_from_header(tmp_path, arch):
    """A GGUF with Qwen3.5's multi-token-prediction block (one more layer, {arch}.nextn_predict_layers):
    the trunk keeps its layer kinds, the MTP tensors are counted for the file but not in the weights."""
    f0, kv = CASES[arch]
    f = replace(f0, n_layer_nextn=1)
    with_mtp = facts_from_gguf(read_gguf(write(tmp_path / "mtp.gguf", f, kv)))
    plain = facts_from_gguf(read_gguf(write(tmp_path / "plain.gguf", f0, kv)))
    assert (with_mtp.n_layers, with_mtp.n_layer_nextn) == (8, 1)
    assert [with_mtp.is_recurrent(i) for i in range(8)] == [True, True, True, False] * 2
    assert (with_mtp.n_kv_layers, with_mtp.n_recurrent_layers) == (plain.n_kv_layers, plain.n_recurrent_layers)
    assert with_mtp.weights_bytes("F32") == plain.weights_bytes("F32")
    assert with_mtp.mtp_bytes("F32") > 0 and all(t.layer == 8 for t in with_mtp.mtp_tensors("F32"))
    # the catalog path synthesizes the same MTP block the converter writes
    assert f.mtp_bytes("F32") == with_mtp.mtp_bytes("F32")
    assert f.file_weights_bytes("F32", with_mtp=True) == with_mtp.file_weights_bytes("F32", with_mtp=True)


@pytest.mark.runtime
@pytest.mark.parametrize("arch", ["qwen35", "qwen35moe"])
def test_mtp_block_is_not_loaded_by_llamacpp(tmp_path, arch):
    """llama.cpp (load_mtp off, its default) skips the MTP tensors and gives the block no cache: the model
    buffer, KV cache and recurrent state are those of the trunk, as slmplan estimates them."""
    pytest.importorskip("llama_cpp")
    f0, kv = CASES[arch]
    path = write(tmp_path / "mtp.gguf", replace(f0, n_layer_nextn=1), kv)
    f = facts_from_gguf(read_gguf(path))
    est = estimate_memory(f, "F32", 1024, 1 << 34, RuntimeSettings(repack=False))
    got = llama_cpp_buffers(path, 1024)
    _assert_buffers_match(est, got)
    assert got["CPU_Mapped model"] < f.file_weights_bytes("F32", with_mtp=True) - PRINT_RES  # the block is left out
