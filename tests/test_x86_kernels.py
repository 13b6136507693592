"""llama.cpp's x86 CPU kernels in the speed model: the AVX2 family's own kappa factor (fitted on the published
x86 rows) and the 256-bit width of the quantized dot products on AVX-512 cores."""

from dataclasses import replace

import numpy as np
import pytest

from slmplan.catalog import facts, get_model, load_catalog
from slmplan.estimate import fit
from slmplan.estimate.speed import (
    Hardware,
    cpu_decode_work,
    cpu_kernels_of,
    decode_flops_per_token,
    decode_terms,
    load_constants,
    quant_kernel_factor,
    quantized_matmul_flops,
)
from slmplan.schema.device import DeviceProfile


def f(mid):
    return facts(get_model(load_catalog(), mid))


@pytest.mark.parametrize("isa, features, family", [
    ("arm64", ["neon", "dotprod"], "arm64"),
    ("x86_64", ["avx", "avx2", "fma"], "x86-avx2"),
    ("x86_64", ["AVX2", "AVX512"], "x86-avx2"),  # llama.cpp's own spelling
    ("x86_64", ["sse3", "ssse3"], "x86-sse"),
    ("x86_64", ["avx512_vnni"], "x86-avx2"),  # a llama.cpp build without repacking keeps only these (localdevice)
    ("x86_64", ["amx_int8"], "x86-avx2"),
    ("x86_64", None, None),  # features unknown
    (None, ["avx2", "fma"], "x86-avx2"),  # the features name the ISA
    (None, ["asimd", "dotprod"], "arm64"),
    (None, [], None),
    ("riscv64", ["v"], None),  # no fitted family
])
def test_cpu_kernel_family(isa, features, family):
    assert cpu_kernels_of(isa, features) == family


@pytest.fixture(scope="module")
def cpu_rows():
    get = fit.Facts()
    return get, [r for r in fit.load_rows(get) if r.cls == "cpu"]


def test_x86_avx2_factor_is_fitted_on_the_published_x86_rows(cpu_rows):
    """The published compute-bound x86 rows run faster than the kappa the ARM rows set: the joint fit gives
    llama.cpp's x86 AVX2 kernels a factor above 1 that lowers the x86 rows' error; without x86 AVX2 rows from
    two devices there is none, and a family on one device only (x86-sse: a Core 2 Optiplex) never gets one."""
    get, rows = cpu_rows
    k = load_constants().classes["cpu"]
    x86 = [r for r in rows if r.cpu_kernels == "x86-avx2" and r.tg]
    assert len({r.device for r in x86}) >= 4
    assert {r.cpu_kernels for r in rows if "Optiplex" in r.device} == {"x86-sse"}
    assert set(k.kappa_by_kernels) == {"x86-avx2"} and k.kappa_by_kernels["x86-avx2"] > 1.2

    def err(kk):
        return float(np.mean([np.log(r.tg / fit.predict_tg(r, kk, get)) ** 2 for r in x86]))

    assert err(k) < 0.7 * err(replace(k, kappa_by_kernels={}))
    args = (get, k.quant_decode, k.quant_prefill, k.thread_exp, k.overlap, False, True, k.core_exp, (0.7, 1.4))
    one = [r for r in rows if r.cpu_kernels != "x86-avx2" or r.device == x86[0].device]
    assert fit.fit_class(one, "cpu", *args).kappa_by_kernels == {}


def test_kernel_factor_applies_to_its_family_and_quantized_weights_only():
    k = replace(load_constants().classes["cpu"], kappa_by_kernels={"x86-avx2": 1.5})
    hw = Hardware("cpu", 20.0, cpu_gflops=100.0, threads=2)
    assert quant_kernel_factor(k, replace(hw, cpu_kernels="x86-avx2")) == 1.5
    for other in (None, "arm64", "x86-sse"):
        assert quant_kernel_factor(k, replace(hw, cpu_kernels=other)) == 1.0
    m = f("qwen2.5-0.5b")
    arm, x86 = replace(hw, cpu_kernels="arm64"), replace(hw, cpu_kernels="x86-avx2")
    t_arm, t_x86 = decode_terms(m, "Q4_0", arm, 512, k), decode_terms(m, "Q4_0", x86, 512, k)
    full, quantized = cpu_decode_work(m, "Q4_0", 512, k, arm)  # full: attention over 512 cached tokens
    assert 0 < full < quantized
    assert t_x86[1] / t_arm[1] == pytest.approx((full + quantized / 1.5) / (full + quantized))
    assert t_x86[0] == t_arm[0] and t_x86[2] == t_arm[2]
    # a float model runs the generic vector code: no factor
    assert decode_terms(m, "F16", x86, 0, k)[1] == pytest.approx(decode_terms(m, "F16", arm, 0, k)[1])


def test_quantized_dot_products_run_at_256_bits_on_avx512_cores():
    """ggml-cpu/arch/x86/quants.c has no 512-bit path: a quantized model's compute time doubles where the
    profile's peak counts 512-bit units (quant_peak_share 0.5), except attention, which runs in floats; an F16
    model's does not change."""
    k = load_constants().classes["cpu"]
    hw = Hardware("cpu", 20.0, cpu_gflops=300.0, threads=2)  # no kernel family: the width alone
    half = replace(hw, quant_peak_share=0.5)
    m = f("qwen2.5-0.5b")
    q_cpu = k.quant_cpu
    full, narrow = decode_terms(m, "Q4_0", hw, 512, k)[1], decode_terms(m, "Q4_0", half, 512, k)[1]
    total, quant = decode_flops_per_token(m, "Q4_0", 512, q_cpu), quantized_matmul_flops(m, "Q4_0", q_cpu)
    assert 0 < quant < total
    assert narrow / full == pytest.approx((total + quant) / total)
    assert decode_terms(m, "F16", half, 512, k)[1] == pytest.approx(decode_terms(m, "F16", hw, 512, k)[1])


def test_profile_quant_gflops_reach_the_hardware():
    from slmplan.estimate.speed import hardware_for

    base = dict(id="x", name="x", kind="desktop", ram_gb=16, memory_budget_gb=8, memory_bandwidth_gbs=50, cpu_cores=8,
                cpu_gflops=1600, backend="cpu", cpu_isa="x86_64", cpu_features=["avx2", "avx512"])
    hw = hardware_for(DeviceProfile(**base, cpu_quant_gflops=800))
    assert hw.quant_peak_share == 0.5 and hw.cpu_kernels == "x86-avx2"
    assert hardware_for(DeviceProfile(**base)).quant_peak_share == 1.0


def test_chip_table_counts_quantized_kernels_at_256_bits_on_512_bit_x86_cores():
    from slmplan.socs import Chip, Cluster, chips

    def chip(isa, fpc):
        return Chip("c", (), "cpu", isa, (), (Cluster(8, 4.0, fpc), Cluster(8, 3.0, fpc, efficiency=True)),
                    None, 50.0, None, None, (), "test")

    assert chip("x86_64", 64).cpu_gflops == 2048 and chip("x86_64", 64).cpu_quant_gflops == 1024
    assert chip("x86_64", 64).profile_values()["cpu_quant_gflops"] == 1024
    assert chip("x86_64", 32).cpu_quant_gflops is None and chip("arm64", 64).cpu_quant_gflops is None
    # the mobile Zen 5 runs AVX-512 on 256-bit datapaths: 32 FLOPs/cycle, as localdevice counts it
    zen5m = next(c for c in chips() if c.name == "AMD Ryzen AI 9 HX 370")
    assert {c.flops_per_cycle for c in zen5m.cpu} == {32} and zen5m.cpu_quant_gflops is None


def test_local_profile_of_a_512_bit_xeon(monkeypatch):
    from slmplan import localdevice

    text = ("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n"
            "model name\t: Intel Xeon\nflags\t\t: fpu avx avx2 fma avx512f avx512_vnni amx_tile\n")
    monkeypatch.setattr(localdevice, "_read", lambda path: text if path == "/proc/cpuinfo" else None)
    monkeypatch.setattr(localdevice, "cpu_ghz", lambda: 2.5)
    monkeypatch.setattr(localdevice.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(localdevice, "llama_cpp_features", lambda model: (None, "not probed in this test"))
    localdevice.detect_local.cache_clear()  # other tests detect the real machine
    try:
        d = localdevice.detect_local()
    finally:
        localdevice.detect_local.cache_clear()  # nor leave the fake Xeon to them
    assert d.cpu_isa == "x86_64"
    assert d.cpu_quant_gflops == pytest.approx(d.cpu_gflops / 2) and "256 bits" in d.sources["cpu_quant_gflops"]
    assert localdevice.local_isa("aarch64") == "arm64" and localdevice.local_isa("mips") is None


def test_cpu_quant_gflops_above_cpu_gflops_is_a_one_line_error(tmp_path):
    import subprocess
    import sys

    p = tmp_path / "x.yaml"
    p.write_text("id: x\nname: x\nkind: desktop\nram_gb: 16\nmemory_budget_gb: 8\nmemory_bandwidth_gbs: 50\n"
                 "cpu_cores: 8\ncpu_gflops: 500\ncpu_quant_gflops: 900\n")
    r = subprocess.run([sys.executable, "-m", "slmplan", "fit", "qwen3-0.6b", "--device", str(p)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("Error:") and "cpu_quant_gflops" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_speed_method_says_which_cpu_kernels_it_assumed():
    from slmplan.estimate.speed import estimate_speed

    m = f("qwen3-0.6b")
    hw = Hardware("cpu", 20.0, cpu_gflops=300.0, threads=4)
    x86 = estimate_speed(m, "Q4_K_M", replace(hw, cpu_kernels="x86-avx2", quant_peak_share=0.5), 4096).method
    factor = load_constants().classes["cpu"].kappa_by_kernels["x86-avx2"]
    assert f"x86-avx2 kernels: quantized weights at {factor:g}x" in x86 and "256-bit kernels" in x86
    assert "kernel family unknown" in estimate_speed(m, "Q4_K_M", hw, 4096).method
    arm = estimate_speed(m, "Q4_K_M", replace(hw, cpu_kernels="arm64"), 4096).method
    assert "kernel" not in arm


def test_chip_quant_gflops_only_with_the_chips_own_peak(monkeypatch):
    """A profile that writes its own cpu_gflops does not get the chip's narrower peak, which belongs to the
    chip's cpu_gflops."""
    from slmplan import socs

    chip = socs.Chip("Test X86 512", (), "cpu", "x86_64", ("avx2", "avx512f"), (socs.Cluster(8, 4.0, 64),),
                     None, 50.0, None, None, (), "test")
    monkeypatch.setattr(socs, "chips", lambda: (chip,))
    filled = socs.fill_from_soc({"soc": "Test X86 512"})
    assert filled["cpu_gflops"] == 2048 and filled["cpu_quant_gflops"] == 1024
    own = socs.fill_from_soc({"soc": "Test X86 512", "cpu_gflops": 900})
    assert own["cpu_gflops"] == 900 and "cpu_quant_gflops" not in own
