import json

import pytest

from slmplan.catalog import facts, get_model, load_catalog
from slmplan.devices import get_device
from slmplan.estimate.fit import fit_all, load_rows
from slmplan.estimate.speed import MODEL_FILE, Hardware, estimate_speed
from slmplan.planner import Query, fit, plan, recommend


def f(mid):
    return facts(get_model(load_catalog(), mid))


def test_shipped_constants_are_the_fit_of_the_shipped_data():
    """data/speed_model.json is exactly what fit_all() computes (benchmarks/fit_speed_model.py)."""
    assert json.loads(MODEL_FILE.read_text()) == json.loads(json.dumps(fit_all(), sort_keys=True))


def test_validation_on_devices_not_fitted():
    v = json.loads(MODEL_FILE.read_text())["validation"]
    # Apple GPU decode is bandwidth bound and well predicted on unseen chips
    assert v["gpu"]["holdout"]["decode_median_abs_pct"] < 10
    assert v["gpu"]["leave_one_device_out"]["decode_median_abs_pct"] < 10
    # CPU data is heterogeneous (2023-2025 builds); the error is reported, and bounded
    assert v["cpu"]["leave_one_device_out"]["decode_median_abs_pct"] < 30
    assert len(load_rows()) > 60


@pytest.mark.parametrize("a, b", [
    (("llama-3.2-1b", "Q4_K_M"), ("llama-3.2-1b", "F16")),   # fewer bytes per token
    (("qwen2.5-0.5b", "Q4_K_M"), ("qwen2.5-7b", "Q4_K_M")),   # smaller model
])
def test_decode_ordering_on_bandwidth_bound_gpu(a, b):
    hw = Hardware("metal", 100, gpu_tflops=3.6)
    fast = estimate_speed(f(a[0]), a[1], hw, 2048)
    slow = estimate_speed(f(b[0]), b[1], hw, 2048)
    assert fast.decode_tokens_per_s > slow.decode_tokens_per_s
    assert fast.decode_tokens_per_s_low < fast.decode_tokens_per_s < fast.decode_tokens_per_s_high


def test_long_context_slows_decode():
    hw = Hardware("metal", 100, gpu_tflops=3.6)
    short = estimate_speed(f("llama-3.1-8b"), "Q4_K_M", hw, 512, n_prompt=256)
    long = estimate_speed(f("llama-3.1-8b"), "Q4_K_M", hw, 65536, n_prompt=60000)
    assert long.decode_tokens_per_s < short.decode_tokens_per_s
    assert long.ttft_s > 100 * short.ttft_s


def test_phone_cpu_is_compute_bound_and_prefill_unknown_without_flops():
    r = fit("qwen2.5-1.5b", get_device("pixel-8"), "Q4_K_M")[0]
    assert r.speed.bound == "cpu-compute"
    from slmplan.schema.device import DeviceProfile

    d = DeviceProfile(id="x", name="x", kind="sbc", ram_gb=4, memory_budget_gb=3, memory_bandwidth_gbs=10, cpu_cores=4)
    r = fit("qwen2.5-0.5b", d, "Q4_K_M")[0]
    assert r.speed.prefill_tokens_per_s == 0 and "prefill unknown" in r.speed.method
    assert r.energy.joules_per_token is None and r.energy.method.startswith("unknown")


def test_energy_uses_power_and_time():
    r = fit("llama-3.2-1b", get_device("raspberry-pi-5-8gb"), "Q4_K_M")[0]
    t = r.speed.ttft_s + 200 / r.speed.decode_tokens_per_s
    assert r.energy.wh_per_query == pytest.approx(7 * t / 3600, rel=1e-3)
    assert r.energy.joules_per_token == pytest.approx(7 / r.speed.decode_tokens_per_s, rel=1e-3)


@pytest.mark.parametrize("device, fits_model", [
    ("android-midrange-2gb", "qwen2.5-0.5b"),
    ("raspberry-pi-5-8gb", "llama-3.2-3b"),
])
def test_plan_verdicts_and_recommendation(device, fits_model):
    ranked = plan(get_device(device), Query(ctx=2048))
    by = {(r.model, r.quant): r for r in ranked}
    assert by[(fits_model, "Q4_K_M")].verdict in ("fits", "tight")
    assert by[("llama-3.1-8b", "F16")].verdict == "does-not-fit"
    best, why = recommend(ranked)
    assert best is not None and best.verdict != "does-not-fit" and best.model in why
    assert [r.verdict for r in ranked] == sorted((r.verdict for r in ranked), key=["fits", "tight", "does-not-fit"].index)
