import pytest

from slmplan.catalog import facts, get_model, load_catalog
from slmplan.estimate.memory import RuntimeSettings, compute_bytes, estimate_memory, kv_cache_bytes

MIB = 1 << 20


def f(model_id):
    return facts(get_model(load_catalog(), model_id))


@pytest.mark.parametrize("model, ctx, settings, expected_mib", [
    # 2 (K,V) x 16 layers x 8 KV heads x 64 dims x 2 bytes x 4096 cells
    ("llama-3.2-1b", 4096, RuntimeSettings(), 128.0),
    # ctx is padded to 256 cells, as llama.cpp does
    ("llama-3.2-1b", 4000, RuntimeSettings(), 128.0),
    # q8_0 K/V: 34 bytes per 32 values
    ("llama-3.2-1b", 4096, RuntimeSettings(type_k="q8_0", type_v="q8_0"), 128.0 * 34 / 64),
    # Llama 2 7B has no GQA: 2 x 32 x 4096 x 2 x 4096
    ("llama-2-7b", 4096, RuntimeSettings(), 2048.0),
    # Gemma 3 270M with llama-cpp-python's full-size SWA cache: all 18 layers x 256 dims x 2 x 2 bytes
    ("gemma-3-270m", 8192, RuntimeSettings(), 144.0),
    # ... and with llama-server's small SWA cache: 3 global layers x 8192 + 15 SWA layers x pad(512+512)
    ("gemma-3-270m", 8192, RuntimeSettings(swa_full=False), (3 * 8192 + 15 * 1024) * 1024 / MIB),
    # Gemma 2: every other layer is sliding-window (window 4096)
    ("gemma-2-2b", 8192, RuntimeSettings(swa_full=False), (13 * 8192 + 13 * 4608) * 4 * 256 * 2 * 2 / MIB),
])
def test_kv_cache(model, ctx, settings, expected_mib):
    assert kv_cache_bytes(f(model), ctx, settings) / MIB == pytest.approx(expected_mib)


def test_compute_buffer_dominated_by_logits_for_big_vocab():
    # Gemma 3 270M: f32 logits for a 512-token ubatch x 262144 vocab = 512 MiB (llama.cpp: 514.5 MiB)
    c = compute_bytes(f("gemma-3-270m"), 4096)
    assert 512 * MIB <= c <= 520 * MIB
    # a smaller ubatch shrinks it proportionally
    assert compute_bytes(f("gemma-3-270m"), 4096, RuntimeSettings(n_ubatch=128, n_batch=128)) < 130 * MIB


def test_flash_attention_removes_kq_growth():
    m = f("smollm2-135m")
    no_fa = compute_bytes(m, 32768)
    fa = compute_bytes(m, 32768, RuntimeSettings(flash_attn=True))
    assert no_fa > 4 * fa


def test_totals_and_verdict_inputs():
    m = estimate_memory(f("qwen2.5-0.5b"), "Q4_K_M", 2048, budget_bytes=2 << 30)
    assert m.total_bytes == m.weights_bytes + m.kv_cache_bytes + m.compute_bytes + m.overhead_bytes
    assert m.weights_method.startswith("estimate")
    bigger = estimate_memory(f("qwen2.5-0.5b"), "Q8_0", 2048, budget_bytes=2 << 30)
    assert bigger.weights_bytes > m.weights_bytes
