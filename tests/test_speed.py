import json
import statistics
from dataclasses import replace
from pathlib import Path

import pytest

from slmplan.catalog import facts, get_model, load_catalog
from slmplan.devices import get_device
from slmplan.estimate import calib_rows as CR
from slmplan.estimate.fit import (
    Facts,
    fit_all,
    fit_class,
    fit_quant_decode,
    fit_quant_prefill,
    held_out_decode_error,
    load_rows,
    predict_tg,
)
from slmplan.estimate.speed import (
    MODEL_FILE,
    ClassConstants,
    Hardware,
    decode_bytes_per_token,
    decode_flops_per_token,
    decode_time_s,
    estimate_speed,
    kernel_throughput,
    load_constants,
    predict_times,
    prefill_flops_per_token,
)
from slmplan.model import ModelFacts
from slmplan.planner import Query, fit, plan, recommend
from slmplan.schema.device import DeviceProfile


def f(mid):
    return facts(get_model(load_catalog(), mid))


def test_shipped_constants_are_the_fit_of_the_shipped_data():
    """data/speed_model.json is exactly what fit_all() computes (benchmarks/fit_speed_model.py)."""
    assert json.loads(MODEL_FILE.read_text()) == json.loads(json.dumps(fit_all(), sort_keys=True))


def test_constants_are_typed_and_round_trip():
    c = load_constants()
    assert set(c.classes) == {"cpu", "metal", "gpu"} and c.classes["cpu"].kappa > 0
    assert type(c).from_dict(c.to_dict()) == c
    assert c.for_backend("metal")[0] == "metal" and c.for_backend("cuda")[0] == "gpu"


def test_validation_on_devices_not_fitted():
    v = json.loads(MODEL_FILE.read_text())["validation"]
    assert v["metal"]["leave_one_device_out"]["decode"]["median_abs_pct"] < 10
    assert v["cpu"]["leave_one_device_out"]["decode"]["median_abs_pct"] < 25  # roofline; serial: < 20
    assert v["cpu"]["leave_one_device_out"]["decode"]["mean_abs_pct"] < 40
    for cls in ("metal", "gpu", "cpu"):  # bounds from held-out quantiles hold ~80% of held-out rows
        for split in ("leave_one_device_out", "leave_one_model_out"):  # new devices and new models alike
            assert 75 <= v[cls][split]["decode"]["within_low_high_pct"] <= 95, (cls, split)
            pp = v[cls][split]["prefill"]
            assert pp["rows"] < 20 or 75 <= pp["within_low_high_pct"] <= 95, (cls, split)  # Metal model-out was 18%
    assert len(load_rows()) > 120


def test_prefill_counts_the_output_head_once_per_prompt():
    g = f("gemma-3-270m")  # 262k x 640 tied head: most of the model's matmul work
    dec = decode_flops_per_token(g, "Q8_0", 256)  # attention at the prompt's mean depth
    head = 2 * g.n_vocab * g.n_embd
    assert prefill_flops_per_token(g, "Q8_0", 512) == pytest.approx(dec - head + head / 512, rel=0.01)
    assert prefill_flops_per_token(g, "Q8_0", 512) < 0.45 * dec
    # a prompt of one token is a decode step: the head is computed for it
    assert prefill_flops_per_token(g, "Q8_0", 1) == pytest.approx(decode_flops_per_token(g, "Q8_0", 0), rel=0.01)


def test_per_type_decode_kernel_cost_explains_the_quant_sweep():
    """Llama 3.1 8B, one machine, 12 types: bytes alone mispredict the low-bit types; the fitted
    per-type throughputs (one number per GGML type, shared by Q4_K_S/Q4_K_M, Q5_K_S/Q5_K_M) fix it."""
    get = Facts()
    q = fit_quant_decode(get)
    sweep = CR.quant_sweep()
    llama = get("llama-3.1-8b")
    t = {r["quant"]: 1 / r["tg"] for r in sweep}
    B = {r["quant"]: decode_bytes_per_token(llama, r["quant"], 64) for r in sweep}
    Bq = {r["quant"]: decode_bytes_per_token(llama, r["quant"], 64, q_dec=q) for r in sweep}
    a = (t["F16"] - t["Q8_0"]) / (B["F16"] - B["Q8_0"])
    b = t["Q8_0"] - a * B["Q8_0"]
    plain = [abs((a * B[k] + b) / t[k] - 1) for k in t]
    typed = [abs((a * Bq[k] + b) / t[k] - 1) for k in t]
    assert max(plain) > 0.3 and statistics.fmean(plain) > 0.1
    assert max(typed) < 0.1 and statistics.fmean(typed) < 0.05
    assert q["Q2_K"] < q["Q4_K"] < 1  # Q2_K is no faster than its bytes suggest


def test_cpu_prefill_per_type_from_same_device_pairs():
    rows = load_rows()
    q = fit_quant_prefill(rows, "cpu")
    assert q["F16"] < 0.9  # F16 prompt processing slower than Q8_0 on the same CPUs
    llama = f("llama-3.2-1b")
    hw = Hardware("cpu", 50, cpu_gflops=300, threads=4)
    assert predict_times(llama, "F16", hw).prefill_s > predict_times(llama, "Q8_0", hw).prefill_s


def test_repacked_prompt_kernels_per_type_on_the_phones():
    # the two PocketPal phones (llama.rn, 2026 build): repacked Q4_0 prompts run 1.16-1.41x as fast as the same
    # model's Q4_K_M; one repack factor for every type ranked Q4_K_M first there
    from slmplan.estimate import fit as F
    from slmplan.estimate.speed import load_constants

    k = load_constants().classes["cpu"]
    assert k.repack_prefill_by_type["Q4_0"] > k.repack_prefill > k.repack_prefill_by_type["Q4_K"]
    get = F.Facts()
    phone = [r for r in F.load_rows(get) if r.device == "Samsung Galaxy S23" and r.pp]
    assert {F.main_repacked_type(r, get) for r in phone if r.quant == "Q4_K_M"} == {"Q4_K"}
    s23 = get_device("galaxy-s23")
    q = Query(ctx=4096, n_prompt=256, n_gen=64)
    for model in ("qwen2.5-1.5b", "qwen3-1.7b"):
        pp = {qt: fit(model, s23, qt, q)[0].speed.prefill_tokens_per_s for qt in ("Q4_0", "Q4_K_M")}
        meas = {r.quant: r.pp for r in phone if r.model_id == model}
        assert pp["Q4_0"] > pp["Q4_K_M"] and meas["Q4_0"] > meas["Q4_K_M"], model
        for qt in ("Q4_0", "Q4_K_M"):  # in sample (these rows are in the fit), within the bounds
            assert 0.8 < meas[qt] / pp[qt] < 1.25, (model, qt)


def test_cpu_fixed_cost_grows_with_threads_on_data():
    """TinyLlama Q8_0 on a 96-thread Threadripper decodes far below its bandwidth (measured 60 tok/s):
    the per-layer barrier cost with 96 threads. The shipped constants with their thread exponent predict
    it better than the same constants without it (fitted without that device, the per-layer cost is not
    identified: the other devices run 4-16 threads)."""
    get = Facts()
    rows = [r for r in load_rows(get) if r.cls == "cpu"]
    tr = next(r for r in rows if r.threads == 96 and r.model_id == "tinyllama-1.1b" and r.quant == "Q8_0" and r.tg)
    k = load_constants().classes["cpu"]
    assert k.thread_exp > 0 and k.c_layer_s > 0
    flat = replace(k, thread_exp=0.0)
    assert abs(predict_tg(tr, k, get) / tr.tg - 1) < abs(predict_tg(tr, flat, get) / tr.tg - 1)


def test_cpu_layer_cost_scales_with_threads_and_core_speed():
    """The per-layer cost x (threads / 4) ** thread_exp x (50 GFLOPS / per-core peak) ** core_exp, on CPU only;
    a figure the device does not give leaves its factor at 1."""
    from slmplan.estimate.speed import cpu_layer_scale

    k = ClassConstants(eta_bw=1.0, c_layer_s=1e-4, thread_exp=0.5, core_exp=1.0)
    assert cpu_layer_scale(k, Hardware("cpu", 20, cpu_gflops=100, threads=4)) == pytest.approx(2.0)  # 25 GFLOPS a core
    assert cpu_layer_scale(k, Hardware("cpu", 20, cpu_gflops=400, threads=16)) == pytest.approx(2.0 * 2.0)
    assert cpu_layer_scale(k, Hardware("cpu", 20, cpu_gflops=None, threads=16)) == pytest.approx(2.0)
    assert cpu_layer_scale(k, Hardware("cuda", 20, cpu_gflops=100, threads=4)) == 1.0
    m, hw = f("llama-3.2-1b"), Hardware("cpu", 20, cpu_gflops=100, threads=4)
    t0, _ = decode_time_s(m, "Q4_K_M", hw, 0, replace(k, c_layer_s=0.0))
    t1, _ = decode_time_s(m, "Q4_K_M", hw, 0, k)
    from slmplan.estimate.graph import layer_units

    assert t1 - t0 == pytest.approx(1e-4 * 2.0 * layer_units(m))


def test_overlap_of_memory_and_compute_time():
    """t = max(t_mem, t_cpu) + (1 - overlap) x min(t_mem, t_cpu) + fixed costs: 1 is a roofline, 0 serial."""
    m, hw = f("llama-3.2-1b"), Hardware("cpu", 20, cpu_gflops=100, threads=4)
    k = ClassConstants(eta_bw=1.0, c_layer_s=0.0, kappa=0.2)
    t_mem = decode_bytes_per_token(m, "Q4_K_M", 0) / 20e9
    t_cpu = decode_flops_per_token(m, "Q4_K_M", 0) / (0.2 * 100e9)
    assert decode_time_s(m, "Q4_K_M", hw, 0, k)[0] == pytest.approx(max(t_mem, t_cpu))
    assert decode_time_s(m, "Q4_K_M", hw, 0, replace(k, overlap=0.0))[0] == pytest.approx(t_mem + t_cpu)
    # a GPU class has no compute term: the overlap changes nothing
    g = Hardware("metal", 100, gpu_tflops=3.6)
    assert decode_time_s(m, "Q4_K_M", g, 0, replace(k, overlap=0.0))[0] == pytest.approx(decode_time_s(m, "Q4_K_M", g, 0, k)[0])


def test_cpu_overlap_shipped_and_the_alternatives():
    """The shipped CPU fit hides half of the shorter of memory and compute time (overlap 0.5, see
    fit.CPU_OVERLAPS): with the shipped thread exponent and per-type CPU rates it has the lowest held-out
    error of the three candidates on the calibration rows, as the README reports."""
    from slmplan.estimate.fit import CPU_OVERLAPS, fit_quant_prefill, rates_of

    get = Facts()
    rows = load_rows(get)
    k = load_constants().classes["cpu"]
    assert k.overlap == 0.5 and CPU_OVERLAPS == (0.5,)
    q_pp = fit_quant_prefill(rows, "cpu")
    err = {ov: held_out_decode_error(rows, get, k.quant_decode, q_pp, k.thread_exp, ov, free_token=False,
                                     qc=rates_of(k.quant_cpu)) for ov in (0.0, 0.5, 1.0)}
    assert err[0.5] < err[0.0] and err[0.5] < err[1.0]


def test_types_without_data_take_the_kernel_cost_of_their_dequantization_group():
    table = {"Q4_0": 0.8, "F16": 0.7, "IQ2_XXS": 0.5, "Q2_K": 0.6}
    assert kernel_throughput(table, "Q4_0") == 0.8  # its own value
    assert kernel_throughput(table, "Q4_1") == 0.8 and kernel_throughput(table, "IQ4_NL") == 0.8
    assert kernel_throughput(table, "BF16") == 0.7 and kernel_throughput(table, "IQ2_XS") == 0.5
    # no measured member of the group (5-bit blocks, Q3_K), or no group: the reference 1.0
    assert kernel_throughput(table, "Q5_0") == 1.0 and kernel_throughput(table, "Q3_K") == 1.0
    assert kernel_throughput(table, "F32") == 1.0 and kernel_throughput(table, "NOPE") == 1.0


LOCAL_RESULTS = MODEL_FILE.parent.parent.parent / "benchmarks" / "results" / "local-2026-12-01"


def test_q4_1_prefill_on_the_local_measurement():
    """SmolLM2-135M Q4_1, pp512 measured with slmplan bench on this project's VM (stored result): Q4_1
    has neither tinyBLAS nor repacked kernels and no calibration row; with Q4_0's plain-kernel cost the
    prediction from the device figures stored in the result is within 0.8-1.25 of the measurement,
    with Q8_0's (the reference) it is not."""
    from slmplan.bench.predict import make_predictor
    from slmplan.gguf import read_gguf
    from slmplan.model import facts_from_gguf

    result = LOCAL_RESULTS / "smollm2-135m_a.json"
    if not result.exists():
        pytest.skip("benchmarks/results not shipped with an installed package")
    d = json.loads(result.read_text())
    path = Path(d["model_path"])
    if not path.exists():
        pytest.skip(f"{path} not installed")
    p = d["prediction"]
    dev = DeviceProfile(id="vm", name="vm", kind="desktop", ram_gb=16, memory_budget_gb=8, cpu_cores=d["threads"],
                        memory_bandwidth_gbs=p["bandwidth_gbs"], cpu_gflops=p["cpu_gflops"], threads=d["threads"],
                        backend="cpu")
    pp = next(r for r in d["results"] if r["test"] == "pp512")
    facts_ = facts_from_gguf(read_gguf(str(path)))
    assert {t.ggml_type for t in facts_.weight_tensors(d["quant"])} >= {"Q4_1"}
    c = load_constants()
    k = c.classes["cpu"]

    def ratio(consts):
        return pp["tokens_per_s_median"] / make_predictor(facts_, d["quant"], dev, d["threads"], consts, "t").tokens_per_s(512, 0, 0)

    assert 0.8 <= ratio(c) <= 1.25
    no_inherit = c.with_class("cpu", replace(k, quant_prefill={**k.quant_prefill, "Q4_1": 1.0}))
    assert ratio(no_inherit) < 0.8


def test_cache_resident_weights_are_not_dram_bound():
    tiny = f("smollm2-135m")
    dram = Hardware("cpu", 10, cpu_gflops=2000, threads=4)
    cached = replace(dram, llc_mb=512)
    a, b = predict_times(tiny, "Q4_K_M", dram), predict_times(tiny, "Q4_K_M", cached)
    assert a.bound == "memory-bandwidth" and b.bound != "memory-bandwidth" and b.decode_s < a.decode_s


def _moe(active: float) -> ModelFacts:
    base = f("qwen2.5-0.5b")
    ts = tuple(replace(t, active_fraction=active if t.role.startswith("ffn") else 1.0) for t in base.weight_tensors("Q8_0"))
    return replace(base, exact_tensors=ts)


def test_moe_reads_only_active_experts():
    dense, moe = _moe(1.0), _moe(0.25)
    ffn = sum(t.n_bytes for t in dense.weight_tensors("Q8_0") if t.role.startswith("ffn"))
    assert decode_bytes_per_token(dense, "Q8_0") - decode_bytes_per_token(moe, "Q8_0") == pytest.approx(0.75 * ffn, rel=1e-6)
    assert decode_flops_per_token(moe, "Q8_0", 0) < decode_flops_per_token(dense, "Q8_0", 0)


class _Hybrid(ModelFacts):
    def has_kv(self, i: int) -> bool:  # every 4th layer attention, the rest recurrent
        return i % 4 == 3


def test_hybrid_reads_kv_of_attention_layers_only():
    base = f("llama-3.2-1b")
    hyb = _Hybrid(**{k: getattr(base, k) for k in base.__dataclass_fields__})
    d = 4096
    kv_all = decode_bytes_per_token(base, "Q4_K_M", d) - decode_bytes_per_token(base, "Q4_K_M", 0)
    kv_hyb = decode_bytes_per_token(hyb, "Q4_K_M", d) - decode_bytes_per_token(hyb, "Q4_K_M", 0)
    assert kv_hyb == pytest.approx(kv_all * hyb.n_kv_layers / base.n_layers)


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


def test_prefill_unknown_is_none_and_so_is_energy_per_query():
    r = fit("qwen2.5-1.5b", get_device("pixel-8"), "Q4_K_M")[0]
    assert r.speed.bound == "cpu-compute"
    d = DeviceProfile(id="x", name="x", kind="sbc", ram_gb=4, memory_budget_gb=3, memory_bandwidth_gbs=10,
                      cpu_cores=4, power_w=5)
    r = fit("qwen2.5-0.5b", d, "Q4_K_M")[0]
    assert r.speed.prefill_tokens_per_s is None and r.speed.ttft_s is None and "unknown" in r.speed.method
    assert r.speed.decode_tokens_per_s > 0
    assert r.energy.wh_per_query is None and "Wh per query unknown" in r.energy.method
    assert r.energy.joules_per_token == pytest.approx(5 / r.speed.decode_tokens_per_s, rel=1e-3)
    assert r.model_dump()["speed"]["prefill_tokens_per_s"] is None  # JSON null, key kept


def test_energy_uses_power_and_time():
    r = fit("llama-3.2-1b", get_device("raspberry-pi-5-8gb"), "Q4_K_M")[0]
    t = r.speed.ttft_s + 200 / r.speed.decode_tokens_per_s
    assert r.energy.wh_per_query == pytest.approx(7 * t / 3600, rel=1e-3)
    assert r.energy.joules_per_token == pytest.approx(7 / r.speed.decode_tokens_per_s, rel=1e-3)


def test_predict_times_is_the_per_token_view_of_estimate_speed():
    m, hw = f("llama-3.2-1b"), Hardware("cpu", 17, cpu_gflops=154, threads=4)
    s = estimate_speed(m, "Q4_K_M", hw, 4096, n_prompt=300, n_gen=200)
    assert 1 / predict_times(m, "Q4_K_M", hw, n_prompt=300, depth=0).prefill_s == pytest.approx(s.prefill_tokens_per_s, rel=0.01)
    t = predict_times(m, "Q4_K_M", hw, n_prompt=300, depth=400)  # the mean depth while answering
    assert 1 / t.decode_s == pytest.approx(s.decode_tokens_per_s, rel=0.01)
    assert t.backend_class == "cpu"


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


def test_tinyblas_and_repack_prefill_multipliers_fitted_on_builds_that_have_them():
    """llamafile 0.7 (tinyBLAS, in llama.cpp since 2024-04) vs llama.cpp 2024-03 on the same CPUs, and
    2025 builds that repack Q4_0/Q4_K: both faster than the plain kernels, and modelled so."""
    get = Facts()
    rows = [r for r in load_rows(get) if r.cls == "cpu" and r.pp]
    k = load_constants().classes["cpu"]
    assert k.sgemm_prefill > 1.2 and k.repack_prefill > 1.2
    from slmplan.estimate.fit import predict_pp

    lf = [r for r in rows if r.sgemm and not r.repack]
    plain_k = replace(k, sgemm_prefill=1.0)
    with_ = statistics.median(abs(predict_pp(r, k, get) / r.pp - 1) for r in lf)
    without = statistics.median(abs(predict_pp(r, plain_k, get) / r.pp - 1) for r in lf)
    assert with_ < without


def test_predict_device_times_matches_the_bench_predictor():
    from slmplan.bench.predict import make_predictor
    from slmplan.estimate.memory import RuntimeSettings
    from slmplan.estimate.speed import predict_device_times

    m, dev = f("qwen2.5-0.5b"), get_device("raspberry-pi-5-8gb")
    t = predict_device_times(m, "Q4_K_M", dev, RuntimeSettings(), n_prompt=512, depth=0, threads=2)
    p = make_predictor(m, "Q4_K_M", dev, 2, constants=load_constants())
    assert 512 / (512 * t.prefill_s) == pytest.approx(p.tokens_per_s(512, 0, 0), rel=1e-6)
    off = predict_device_times(m, "Q4_K_M", dev, RuntimeSettings(repack=False), n_prompt=512)
    assert off.prefill_s > predict_device_times(m, "Q4_K_M", dev, RuntimeSettings(), n_prompt=512).prefill_s


def test_cuda_graphs_follow_the_compute_capability():
    from slmplan.estimate.cuda_arch import compute_capability_from_name, uses_cuda_graphs
    from slmplan.estimate.speed import hardware_for

    assert compute_capability_from_name("nvidia-geforce-rtx-2080") == 7.5
    assert compute_capability_from_name("NVIDIA GeForce GTX 1050 Ti") == 6.1
    assert compute_capability_from_name("NVIDIA GeForce RTX 4060 Laptop GPU") == 8.9
    assert compute_capability_from_name("NVIDIA Orin Nano (6x Cortex-A78AE, 1024-core Ampere GPU)") == 8.7
    assert compute_capability_from_name("GeForce RTX 2050") == 8.6  # an Ampere chip despite its name
    assert compute_capability_from_name("AMD Radeon RX 7900 XT") is None
    # workstation names whose numbers overlap the GeForce ones (Quadro RTX 5000 is a Turing, not a Blackwell)
    named = {"Quadro RTX 5000": 7.5, "Quadro RTX 4000": 7.5, "RTX 5000 Ada": 8.9, "RTX PRO 6000 Blackwell": 12.0,
             "NVIDIA RTX A2000": 8.6, "Tesla V100": 7.0, "GeForce MX450": 7.5, "RTX 3050 Laptop GPU": 8.6,
             "NVIDIA A10": 8.6, "NVIDIA L40S": 8.9, "Tesla T4": 7.5, "Quadro T1000": 7.5, "GeForce GT 1030": 6.1,
             "GeForce GTX 970": 5.2, "Tesla K80": 3.7, "NVIDIA H100 PCIe": 9.0, "NVIDIA A100-SXM4-80GB": 8.0}
    assert {n: compute_capability_from_name(n) for n in named} == named
    assert (uses_cuda_graphs(7.5), uses_cuda_graphs(8.0), uses_cuda_graphs(None)) == (False, True, None)
    dev = get_device("jetson-orin-nano")
    assert hardware_for(dev).cuda_graphs is True
    assert hardware_for(dev.model_copy(update={"cuda_compute_capability": 7.2})).cuda_graphs is False
    assert hardware_for(get_device("pixel-8")).cuda_graphs is None  # not CUDA


def test_a_pre_ampere_fixed_cost_is_used_only_where_it_is_fitted():
    from slmplan.estimate.speed import Hardware, decode_time_s, layer_cost_s, load_constants

    k = load_constants().classes["gpu"]
    # the shipped fit keeps one fixed cost for every GPU: a split by CUDA graphs raised the held-out error
    assert k.c_layer_no_graphs_s is None
    old, new = Hardware("cuda", 448, cuda_graphs=False), Hardware("cuda", 448, cuda_graphs=True)
    assert layer_cost_s(k, old) == layer_cost_s(k, new) == k.c_layer_s
    k2 = replace(k, c_layer_no_graphs_s=5 * k.c_layer_s)
    f = facts(get_model(load_catalog(), "qwen3-1.7b"))
    t_old, _ = decode_time_s(f, "Q4_K_M", old, 512, k2)
    t_new, _ = decode_time_s(f, "Q4_K_M", new, 512, k2)
    assert t_old > t_new
    assert layer_cost_s(k2, Hardware("vulkan", 448, cuda_graphs=False)) == k2.c_layer_s  # CUDA only


def test_gpu_bounds_are_per_backend_where_it_has_held_out_rows():
    from slmplan.estimate.speed import Hardware, estimate_speed, load_constants

    k = load_constants().classes["gpu"]
    assert set(k.decode_ratio_by_backend) == {"cuda", "vulkan"}  # 66 and 32 held-out rows
    f = facts(get_model(load_catalog(), "qwen3-1.7b"))
    for backend in ("cuda", "vulkan"):
        s = estimate_speed(f, "Q4_K_M", Hardware(backend, 448), 4096)
        lo, hi = k.decode_ratio_by_backend[backend]
        assert s.decode_tokens_per_s_low == pytest.approx(s.decode_tokens_per_s * lo, abs=0.01)
        assert s.decode_tokens_per_s_high == pytest.approx(s.decode_tokens_per_s * hi, abs=0.01)
    assert k.decode_bounds("metal-or-other") == (k.decode_ratio_low, k.decode_ratio_high)
    # validation judges each held-out row against its own backend's bounds, not the class's
    v = json.loads(MODEL_FILE.read_text())["validation"]["gpu"]["leave_one_device_out"]["decode_by_backend"]
    assert v["vulkan"]["within_low_high_pct"] < 100  # inside the class's wide range every Vulkan row fell


def test_the_2026_edge_cpu_rows_are_read_with_their_sources():
    rows = [r for r in CR.edge_rows() if "edge-ai-study" in r.source or "issues/26957" in r.source
            or "pull/16993" in r.source or "issues/27078" in r.source]
    pi5 = [r for r in rows if r.device.startswith("Raspberry Pi 5")]
    assert len(pi5) == 12 and {r.threads for r in pi5} == {4} and {r.bandwidth_gbs for r in pi5} == {17.1}
    assert {r.data_file for r in pi5} == {"edge_cpu_more.csv"}
    (q8,) = [r for r in pi5 if r.model_id == "llama-3.1-8b" and r.quant == "Q8_0"]
    assert q8.tg == 1.10 and q8.pp is None  # the OpenBLAS build's prompt speed is not used
    phone = [r for r in rows if "S23 Ultra" in r.device]
    assert [(r.tg, r.tg_depth, r.threads) for r in phone] == [(14.26, 96 + 2048, 5)]  # the median of 3 builds
    assert len(rows) == 15


def test_more_apple_rows_are_read():
    """apple_more.csv: 16 llama.cpp Metal rows, device = chip, decode depth = half the tg test."""
    rows = CR.apple_more_rows()
    assert len(rows) == 16 and {r.cls for r in rows} == {"metal"}
    cat = {m.id for m in load_catalog().models}
    assert all(r.model_id in cat and r.quant in CR.QUANTS and r.tg for r in rows)
    tiny = [r for r in rows if r.model_id == "tinyllama-1.1b"]
    assert len(tiny) == 1 and tiny[0].device == "M1 Ultra" and tiny[0].tg == 242.56 and tiny[0].pp == 5587.84
    assert tiny[0].tg_depth == 64 and tiny[0].bandwidth_gbs == 800 and tiny[0].gpu_tflops == 20.8
    qwen = [r for r in rows if r.model_id == "qwen3.5-0.8b" and r.quant == "Q4_K_M"]
    assert qwen[0].tg == 103 and qwen[0].tg_depth == 100 and qwen[0].tg_tokens == 200  # tg200
    assert {r.tg_depth for r in rows if r.model_id == "llama-3.1-8b"} == {256}  # tg512
    assert sum(r.gpu_tflops is None for r in rows) == 4  # GPU core count not stated: decode only
    assert sum(r.cls == "metal" for r in load_rows()) == 45 + 16
    (m2u,) = [r for r in rows if r.model_id == "qwen3-0.6b" and r.device == "M2 Ultra"]
    assert (m2u.tg, m2u.tg_tokens, m2u.tg_depth, m2u.build_year) == (240.02, 32, 16, 2026)  # PR 26570's master column
    assert {r.build_year for r in CR.apple_rows()} == {2023}  # discussion 4167's benchmark of November 2023
    assert sorted({r.build_year for r in rows}) == [2024, 2025, 2026]


def test_metal_builds_before_2025_get_a_per_layer_cost_of_their_own():
    """The 2026 rows (M1 Ultra TinyLlama, M2 Ultra Qwen3 0.6B, the M4's Qwen3.5 sizes) decode small models faster
    than the 2023-2024 builds the LLaMA-2 7B sweep was measured with: the Metal fit gives builds before 2025 a
    per-layer cost of their own (chosen by leave-one-device-out error) and predicts with the current one."""
    from slmplan.estimate.fit import _own_layer_cost

    k = load_constants().classes["metal"]
    assert k.c_layer_old_builds_s is not None and k.c_layer_old_builds_s > 1.3 * k.c_layer_s
    rows = load_rows()
    old = [r for r in rows if r.cls == "metal" and _own_layer_cost(r)]
    assert len(old) == 45 + 8 and all(r.build_year < 2025 for r in old)
    assert not any(_own_layer_cost(r) for r in rows if r.cls == "cpu")
    get = Facts()
    r = next(r for r in old if r.device == "M2 Ultra" and r.quant == "Q4_0")  # 800 GB/s: the fixed cost matters
    slower = predict_tg(r, k, get)  # the row's own (old) build
    current = predict_tg(replace(r, build_year=2026), k, get)
    assert current > 1.05 * slower
    # the planner's own formula predicts current builds: the same as the row read as a 2026 build
    t, _ = decode_time_s(get(r.model_id), r.quant, Hardware("metal", r.bandwidth_gbs), r.tg_depth, k)
    assert 1 / t == pytest.approx(current, rel=1e-9)
    # the split is what the held-out error chooses, and the current-build rows are what it improves
    from slmplan.estimate.fit import _held_out, _old_metal_build

    q_dec, q_pp = fit_quant_decode(get), fit_quant_prefill(rows, "metal")
    err = {sp: held_out_decode_error(rows, get, q_dec, q_pp, 0.0, 1.0, "metal", None, sp, False) for sp in (False, True)}
    assert err[True] < 0.95 * err[False]  # 0.073 vs 0.083 (mean |log ratio|, device-out)
    for by in ("device", "model_id"):
        new = {sp: statistics.fmean(abs(1 / x["tg_ratio"] - 1) for x in _held_out(rows, "metal", get, q_dec, q_pp, by, 0.0, 1.0,
                                                                                   None, sp, False)
                                    if x["tg_ratio"] and not _old_metal_build(x["row"])) for sp in (False, True)}
        assert new[True] < 0.75 * new[False], by  # 8.8% vs 14.1% device-out, 8.5% vs 12.6% model-out


def test_metal_per_token_cost_only_with_several_model_sizes():
    """c_token can be fitted only when the rows span several models: on the LLaMA-2 7B sweep alone it stays 0
    (c_token and c_layer x layers are the same number); with the other sizes it is fitted (nonzero), and the
    shipped fit keeps it only where it does not raise the leave-one-model-out error (Metal: it does)."""
    get = Facts()
    rows = load_rows(get)
    q_dec = fit_quant_decode(get)
    metal = [r for r in rows if r.cls == "metal"]
    q_pp = fit_quant_prefill(metal, "metal")
    one = CR.apple_rows()
    assert {r.model_id for r in one} == {"llama-2-7b"}
    assert fit_class(one, "metal", get, q_dec, q_pp).c_token_s == 0
    several = fit_class(metal, "metal", get, q_dec, q_pp)
    assert len({r.model_id for r in metal}) > 2 and several.c_token_s > 0
    assert fit_class(metal, "metal", get, q_dec, q_pp, free_token=False).c_token_s == 0
    shipped = json.loads(MODEL_FILE.read_text())
    assert shipped["c_token_fitted"] == {"cpu": False, "gpu": False, "metal": False}
    assert all(shipped["classes"][c]["c_token_s"] == 0 for c, fitted in shipped["c_token_fitted"].items() if not fitted)


def test_the_jetson_llama_bench_rows_are_read():
    """gpu_more.csv: a Jetson Orin Nano Super with llama-bench over ten models, CUDA with CUDA graphs (cc 8.7);
    decode at half the tg test, prompt rows only where the source does not flag a high variance."""
    rows = CR.gpu_more_rows()
    assert len(rows) == 11 and {(r.cls, r.backend, r.cuda_graphs) for r in rows} == {("gpu", "cuda", True)}
    assert {r.data_file for r in rows} == {"gpu_more.csv"} and {r.bandwidth_gbs for r in rows} == {102.0}
    (llama,) = [r for r in rows if r.model_id == "llama-3.2-1b"]
    assert llama.tg == 54.93 and llama.pp == 2331 and llama.tg_depth == 64 and llama.gpu_tflops == 2.09
    assert sum(r.pp is not None for r in rows) == 9  # Gemma 4 E2B Q4_K_M and E4B Q8_0: "pp variance high"
    assert len({r.model_id for r in rows}) == 10
    # Gemma 4 E4B Q8_0: 7.96 GB of weights on the 8 GB board, over the 90% limit the llmfit rows follow
    assert [(r.model_id, r.quant) for r in rows if r.tg is None] == [("gemma-4-e4b", "Q8_0")]
    assert sum(r.device == rows[0].device for r in load_rows()) == 11


def test_the_raspberry_pi_4_sweep_is_read():
    rows = [r for r in CR.edge_rows() if "sensura-san" in r.source]
    assert len(rows) == 15 and {r.threads for r in rows} == {4} and {r.bandwidth_gbs for r in rows} == {12.8}
    assert all(r.pp is None for r in rows)  # an OpenBLAS build: its prompt speed is not used
    assert {r.quant for r in rows} == {"Q4_0", "Q4_K_M", "Q8_0", "Q4_K_S"}  # the file llama-bench calls Q4_K - Small
    assert {r.model_id for r in rows} == {"gemma-3-270m", "gemma-3-1b", "llama-3.2-1b", "qwen2.5-0.5b", "qwen3-0.6b"}


def test_cpu_decode_rates_by_type_group_on_the_pi_sweeps():
    """Both Raspberry Pi sweeps decode Q8_0 at the same effective bandwidth as Q4_0: the shipped per-type CPU
    rates (floats, sub-8-bit types; Q8_0 = 1) predict the Q8_0 / Q4_0 speed ratio of each Pi 4 model closer
    than one cost per FLOP for every type (the quant sweep's q_dec in the compute term); in sample, since these
    rows are in the fit (the held-out figures are in the README)."""
    from slmplan.estimate.fit import cpu_rates_table, rates_of

    k = load_constants().classes["cpu"]
    fl, lb = rates_of(k.quant_cpu)
    assert k.quant_cpu == cpu_rates_table((fl, lb), k.quant_decode) and "Q8_0" not in k.quant_cpu
    assert k.quant_cpu["F16"] == fl and k.quant_cpu["Q4_K"] == lb and k.quant_cpu["Q6_K"] == lb
    # a type no CPU row measures keeps its quant-sweep cost relative to Q4_K: IQ2_XXS is no faster than Q4_K
    assert k.quant_cpu["IQ2_XXS"] == pytest.approx(lb * k.quant_decode["IQ2_XXS"] / k.quant_decode["Q4_K"], rel=1e-3)
    assert k.quant_cpu["IQ2_XXS"] < k.quant_cpu["Q4_K"]
    flat = replace(k, quant_cpu={})
    get = Facts()
    rows = {(r.model_id, r.quant): r for r in CR.edge_rows() if "sensura-san" in r.source}
    better = 0
    for m in ("gemma-3-270m", "gemma-3-1b", "llama-3.2-1b", "qwen2.5-0.5b", "qwen3-0.6b"):
        q8, q4 = rows[(m, "Q8_0")], rows[(m, "Q4_0")]
        meas = q8.tg / q4.tg
        err = {name: abs(predict_tg(q8, kk, get) / predict_tg(q4, kk, get) / meas - 1) for name, kk in
               (("rates", k), ("flat", flat))}
        better += err["rates"] < err["flat"]
    assert better == 5


def test_gpt_oss_mxfp4_rows_are_read_and_the_memory_rule_uses_the_spec_where_llmfit_leaves_it_blank():
    rows = [r for r in load_rows() if r.model_id == "gpt-oss-20b"]
    # the RX 7900 XT (20 GB) runs it on the GPU; the 8 GB RTX 5070 Laptop GPU (memory blank in llmfit's
    # result, 8 GB by NVIDIA's spec) cannot hold its 11.27 GiB and is left out, as the 8 GB RTX 2080
    assert [(r.device, r.quant) for r in rows] == [("amd-radeon-rx-7900-xt", "MXFP4_MOE")]
    assert CR.quant_of("MXFP4") == "MXFP4_MOE"
    assert set(CR.LLMFIT_VRAM_SPEC) <= set(CR.LLMFIT_DEVICES)


def test_repacked_prompt_types_follow_the_cpu():
    from slmplan.estimate.speed import hardware_for, repacked_types

    # llama.cpp repacks Q8_0 (and Q5_K/Q6_K) on ARM with dot-product since PRs 18096/19356/19360 (2025-12 to
    # 2026-02), so their prompts use the repacked kernels there; a Cortex-A72 (no dot-product) repacks nothing
    pi5, pi4 = get_device("raspberry-pi-5-8gb"), get_device("raspberry-pi-4-4gb")
    assert {"Q4_0", "Q4_K", "Q8_0", "Q6_K"} <= repacked_types(hardware_for(pi5))
    assert repacked_types(hardware_for(pi4)) == frozenset() and repacked_types(hardware_for(pi5, repack=False)) == frozenset()
    m = f("llama-3.2-1b")
    on, off = (predict_times(m, "Q8_0", hardware_for(pi5, repack=r)).prefill_s for r in (True, False))
    assert on * 1.2 < off  # repacked kernels (not tinyBLAS, as with repacking off) for Q8_0 on the Pi 5
    on4, off4 = (predict_times(m, "Q8_0", hardware_for(pi4, repack=r)).prefill_s for r in (True, False))
    assert on4 == pytest.approx(off4)  # nothing to repack on the Pi 4
    # unknown features: the set every repacking CPU has had since 2025
    assert repacked_types(replace(hardware_for(pi5), repack_types=None)) == frozenset({"Q4_0", "Q4_K", "IQ4_NL"})
