"""llama.cpp's CPU extra buffer types (repacked weight copies) per CPU, without loading llama.cpp.

The AMX figures are what llama.cpp 0.3.36 (llama-cpp-python) reported on an Intel Xeon (Sapphire
Rapids) VM for the two bundled models: 'AMX model buffer size = 95.34 MiB' (SmolLM2-135M Q4_1) and
213.91 MiB (Gemma 3 270M Q4_K_M); the CPU_REPACK figure is this project's AMD EPYC (AVX-512) run.
tests/test_memory_vs_llamacpp.py checks the local CPU against llama.cpp itself.
"""

import pytest

from slmplan.bench.llama_log import LOG_PREFIX, extra_model_buffers, last_llama_line
from slmplan.estimate.extra_bufts import AMX, CPU_REPACK, extra_buffer_bytes, extra_buffer_types
from slmplan.estimate.memory import RuntimeSettings, estimate_memory
from slmplan.gguf import read_gguf
from slmplan.localdevice import parse_llama_system_info
from slmplan.model import facts_from_gguf

MIB = 2**20
EPYC = ["avx", "avx2", "fma", "avx512f", "avx512_vnni"]
XEON_SPR = EPYC + ["amx_int8"]
PHONE_ARMV9 = ["asimd", "asimddp", "i8mm"]


@pytest.fixture(scope="module")
def models(smollm2, gemma3):
    return {"smollm2": facts_from_gguf(read_gguf(smollm2)), "gemma3": facts_from_gguf(read_gguf(gemma3))}


@pytest.mark.parametrize("model, features, expected_mib", [
    ("smollm2", XEON_SPR, {AMX: 95.34}),  # Q4_1 layers + the tied Q8_0 embedding as output head (+4 B/block)
    ("gemma3", XEON_SPR, {AMX: 213.91}),
    ("smollm2", EPYC, {}),  # Q4_1 and Q8_0 have no x86 repack kernels
    ("gemma3", EPYC, {CPU_REPACK: 12.66}),  # the Q4_K tensors (attn_output, half of ffn_down)
])
def test_extra_buffers_per_cpu(models, model, features, expected_mib):
    f = models[model]
    e = extra_buffer_bytes(f, f.file_quant, extra_buffer_types(features), features)
    got = {k: round(v / MIB, 2) for k, v in e.bytes_by_type.items()}
    assert got.keys() == expected_mib.keys()
    for k, v in expected_mib.items():
        assert got[k] == pytest.approx(v, abs=0.5)


def test_arm_repacks_q8_q6_q4k_but_not_q5_0(models):
    f = models["gemma3"]
    e = extra_buffer_bytes(f, f.file_quant, (CPU_REPACK,), PHONE_ARMV9)
    expected = sum(t.n_bytes for t in f.exact_tensors if t.role != "norm" and t.ggml_type in ("Q8_0", "Q6_K", "Q4_K")
                   and t.role != "token_embd")
    embd = next(t for t in f.exact_tensors if t.role == "token_embd")  # tied: its output-head copy is repacked
    assert e.bytes_by_type[CPU_REPACK] == expected + embd.n_bytes


@pytest.mark.parametrize("features, backend, repack, expected", [
    (XEON_SPR, "cpu", True, (AMX, CPU_REPACK)),
    (EPYC, "cpu", True, (CPU_REPACK,)),
    (PHONE_ARMV9, "cpu", True, (CPU_REPACK,)),
    (["asimd"], "cpu", True, ()),  # plain NEON: no repack kernels
    (XEON_SPR, "cpu", False, ()),  # --repack 0
    (PHONE_ARMV9, "metal", True, ()),  # weights offloaded to the GPU are not repacked
    (None, "cpu", True, None),  # unknown CPU: unknown
])
def test_extra_buffer_types(features, backend, repack, expected):
    assert extra_buffer_types(features, backend, repack) == expected


def test_total_counts_the_copy_and_unknown_says_so(models):
    f = models["gemma3"]
    on = estimate_memory(f, f.file_quant, 2048, 1 << 34, RuntimeSettings(), XEON_SPR)
    off = estimate_memory(f, f.file_quant, 2048, 1 << 34, RuntimeSettings(repack=False), XEON_SPR)
    unknown = estimate_memory(f, f.file_quant, 2048, 1 << 34, RuntimeSettings(), None)
    assert on.total_bytes - off.total_bytes == on.repack_bytes == on.extra_buffers[AMX]
    assert on.reclaimable_bytes > 0 and off.repack_bytes == 0
    assert unknown.total_bytes == off.total_bytes and unknown.repack_bytes == 0
    assert any("features are unknown" in n for n in unknown.notes)
    assert any("AMX" in n and "reclaimable" in n for n in on.notes)


def test_llama_system_info_and_log_helpers():
    info = ("CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | AVX512_VNNI = 1 | "
            "AMX_INT8 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |")
    assert parse_llama_system_info(info) == ["amx_int8", "avx", "avx2", "avx512_vnni", "avx512f", "fma", "repack"]
    assert parse_llama_system_info("CPU : NEON = 1 | ARM_FMA = 1 | DOTPROD = 1 | MATMUL_INT8 = 1 | REPACK = 1 |") == \
        ["asimd", "asimddp", "i8mm", "repack"]
    bufs = {"CPU_Mapped model": 1.0, "AMX model": 2.0, "CPU_REPACK model": 3.0, "CPU KV": 4.0, "CPU compute": 5.0}
    assert extra_model_buffers(bufs) == {"AMX": 2, "CPU_REPACK": 3}
    err = f"{LOG_PREFIX}load_tensors: AMX model buffer size = 95.34 MiB\n{LOG_PREFIX}....\nFatal Python error: Illegal instruction\n"
    assert last_llama_line(err) == "load_tensors: AMX model buffer size = 95.34 MiB"
    assert last_llama_line("Fatal Python error\n") is None


@pytest.mark.parametrize("spelled, canonical", [
    (["neon", "dotprod", "i8mm"], PHONE_ARMV9),  # a chip table's names
    (["avx2", "avx512", "amx"], ["avx2", "avx512f", "amx_int8", "avx512_vnni"]),
])
def test_feature_spellings_are_equivalent(models, spelled, canonical):
    f = models["gemma3"]
    a = extra_buffer_bytes(f, f.file_quant, extra_buffer_types(spelled), spelled)
    b = extra_buffer_bytes(f, f.file_quant, extra_buffer_types(canonical), canonical)
    assert a == b and a.total_bytes > 0
