"""slmplan calibrate: fitting a device's corrections on llama-bench rows and using them in fit/plan/report."""

import json
from pathlib import Path

import pytest
import yaml

from slmplan import device_calibration as DC
from slmplan.devices import get_device
from slmplan.importers.llama_bench import BenchFile, BenchRow, read_bench_file
from slmplan.planner import Query, fit

DATA = Path(__file__).parent / "data" / "llama-bench"


def _tg(model, quant, tps, n_gen=128, src="synthetic", backends=None):
    return BenchRow(source=src, n_prompt=0, n_gen=n_gen, n_depth=0, tokens_per_s=tps, model_id=model, quant=quant,
                    backends=backends, n_gpu_layers=99 if backends else None)


def _truth(dev, model, quant, a, b, n_gen=128):
    """tokens/s a device would measure if its time per token were exactly a * streaming + b * layer units
    (llama.cpp graph nodes / 31)."""
    from slmplan.estimate.graph import layer_units

    f = DC.measured_facts(model, None)
    p = DC.predicted_token_time_s(f, quant, dev, "tg", n_gen, 0)
    return 1.0 / (a * p.streaming_s + b * layer_units(f))


def _calibrate(dev, rows):
    return DC.calibrate([BenchFile("rows.json", "json", rows, [])], dev, now="2026-12-01 20:00 UTC")[0]


def test_size_dependent_fit_recovers_known_constants():
    dev = get_device("jetson-orin-nano")  # a CUDA profile
    truth = [("llama-3.2-1b", 1.3, 4e-5), ("qwen2.5-7b", 1.3, 4e-5), ("gemma-3-4b", 1.3, 4e-5)]
    rows = [_tg(m, "Q4_K_M", _truth(dev, m, "Q4_K_M", a, b)) for m, a, b in truth]
    cal = _calibrate(dev, rows).calibration
    assert cal.decode.a == pytest.approx(1.3, rel=1e-4) and cal.decode.b_layer_s == pytest.approx(4e-5, rel=1e-3)
    assert cal.decode.form == "a and b fitted" and cal.measurements == 3
    assert all(abs(r.residual_pct) < 0.01 for r in cal.residuals)
    # 3 models: the bounds come from the (zero) residuals, widened by 5 points
    assert (cal.decode.ratio_low, cal.decode.ratio_high) == (0.95, 1.05)


def test_one_model_corrects_every_model_with_the_one_model_bounds():
    import math

    from slmplan.estimate.shrink import DevicePrior, device_deviation

    dev = get_device("pixel-8")  # CPU: with one model size the planner's own split is kept, all scaled by a
    f1 = DC.measured_facts("llama-3.2-1b", None)
    pred = DC.predicted_token_time_s(f1, "Q4_K_M", dev, "tg", 128, 0).total_s
    measured = 0.8 / pred  # the phone runs 20% slower than the planner predicts
    new = _calibrate(dev, [_tg("llama-3.2-1b", "Q4_K_M", measured)])
    cal = new.calibration
    shipped = DC._constants(dev)
    assert new.effective_backend == "cpu" and cal.decode.models == 1
    # the measured model keeps its measured speed; the other models get the device's share of the 0.8: the
    # posterior of the CPU class's held-out device/model split (estimate/shrink.py), between none and all of it
    assert cal.decode.a_own == pytest.approx(1.25, rel=1e-4) and cal.residuals[0].residual_pct == pytest.approx(0, abs=0.01)
    share = math.exp(device_deviation(math.log(0.8), DevicePrior.from_dict(shipped.device_prior)))
    assert 0.8 < share < 0.95 and cal.decode.a == pytest.approx(1 / share, rel=1e-4)
    assert "ran x0.800 the planner's prediction" in cal.decode.form and cal.decode.own_models[0].startswith("llama-3.2-1b: ")
    # fewer than 3 models: the bounds are how far the other models ran from a one-model calibration on the
    # published devices (benchmarks/calibration_lomo.py --unseen --bounds), narrower than the uncalibrated spread
    assert (cal.decode.ratio_low, cal.decode.ratio_high) == DC.ONE_MODEL_DECODE_BOUNDS
    assert shipped.decode_ratio_low < cal.decode.ratio_low < 1 < cal.decode.ratio_high < shipped.decode_ratio_high
    assert "each predicted as a new device" in cal.decode.bounds
    q = Query(ctx=4096, n_prompt=300, n_gen=200)
    for model, factor in (("llama-3.2-1b", 0.8), ("qwen2.5-3b", share), ("smollm2-360m", share)):
        (before,), (after,) = fit(model, dev, "Q4_K_M", q), fit(model, new, "Q4_K_M", q)
        # the planner's fixed cost has a per-token and a per-layer part; the calibration carries it per layer,
        # so a model with another layer count moves by somewhat more or less than the factor
        assert after.speed.decode_tokens_per_s == pytest.approx(factor * before.speed.decode_tokens_per_s, rel=0.06)
        assert after.speed.method.startswith("calibrated on 1 measurement from rows.json")
        assert after.speed.decode_tokens_per_s_low < after.speed.decode_tokens_per_s < after.speed.decode_tokens_per_s_high


def test_one_model_far_off_is_read_as_the_device_and_gpus_keep_the_whole_ratio():
    dev = get_device("pixel-8")
    f1 = DC.measured_facts("llama-3.2-1b", None)
    pred = DC.predicted_token_time_s(f1, "Q4_K_M", dev, "tg", 128, 0).total_s
    far = _calibrate(dev, [_tg("llama-3.2-1b", "Q4_K_M", 3.0 / pred)]).calibration.decode  # 3x faster than predicted
    assert far.a_own == pytest.approx(1 / 3, rel=1e-4) and 1 / far.a > 2.8  # a device far off: (almost) all kept
    gpu = get_device("jetson-orin-nano")  # CUDA: no device/model split, the measured ratio carried over whole
    g = _calibrate(gpu, [_tg("llama-3.2-1b", "Q4_K_M", _truth(gpu, "llama-3.2-1b", "Q4_K_M", 1.2, 0.0))]).calibration.decode
    assert g.a_own is None and g.own_models == [] and "read as" not in g.form


def test_quants_of_one_model_do_not_fit_a_fixed_cost_per_layer():
    # three quants of one model share its layers: their speeds differ by kernel, not by depth, so b stays
    # the prior and only a is fitted (a two-parameter fit took the kernel differences as a fixed cost and
    # carried them to every other model: on two phones' PocketPal sweeps one-model error 11.3% -> 8.0-9.9%)
    dev = get_device("jetson-orin-nano")
    m = "qwen2.5-7b"
    rows = [_tg(m, q, _truth(dev, m, q, 1.2, 0.0) * k) for q, k in (("Q4_K_M", 0.93), ("Q8_0", 1.1), ("Q4_0", 1.0))]
    cal = _calibrate(dev, rows).calibration
    assert cal.decode.form.startswith("one model size") and cal.measurements == 3
    assert cal.decode.b_layer_s == pytest.approx(cal.decode.a * DC.layer_prior(dev, [])[0], rel=1e-3)


def test_one_gpu_model_uses_the_compute_per_byte_prior():
    dev = get_device("jetson-orin-nano")  # 2.09 TFLOPS FP32, 102 GB/s: 20.5 FLOPs per byte
    x = 2.09e12 / 102e9
    assert DC.flops_per_byte(dev) == pytest.approx(x)
    m = "qwen2.5-7b"
    cal = _calibrate(dev, [_tg(m, "Q4_K_M", 20.0)]).calibration
    k = DC.ONE_MODEL_COMPUTE_PRIOR["k_s"]
    assert cal.decode.b_layer_s == pytest.approx(cal.decode.a * k / x, rel=1e-3)
    assert "20.5 FP32 FLOPs per byte" in cal.decode.form and "extrapolated" not in cal.decode.form
    assert cal.residuals[0].fitted_tokens_per_s == pytest.approx(20.0, rel=1e-4)
    # more compute per byte, a smaller fixed cost per layer relative to streaming; beyond the published
    # GPUs' range the form says it is extrapolated
    big = dev.model_copy(update={"gpu_tflops": 200.0})
    cal_big = _calibrate(big, [_tg(m, "Q4_K_M", 20.0)]).calibration
    assert cal_big.decode.b_layer_s / cal_big.decode.a < cal.decode.b_layer_s / cal.decode.a / 50
    assert "extrapolated" in cal_big.decode.form
    # without an FP32 peak: the launch-path group's prior, and the form says what would give a closer one
    blind = dev.model_copy(update={"gpu_tflops": None, "soc": None})
    assert DC.flops_per_byte(blind) is None
    cal_blind = _calibrate(blind, [_tg(m, "Q4_K_M", 20.0)]).calibration
    assert cal_blind.decode.b_layer_s == pytest.approx(cal_blind.decode.a * DC.ONE_MODEL_LAYER_PRIOR_S["gpu"], rel=1e-3)
    assert "gpu_tflops" in cal_blind.decode.form
    rows = [BenchFile("rows.json", "json", [_tg(m, "Q4_K_M", 20.0)], [])]
    assert any("no gpu_tflops" in n for n in DC.calibrate(rows, blind, now="x")[1])  # and calibrate says so
    assert not any("no gpu_tflops" in n for n in DC.calibrate(rows, dev, now="x")[1])


def test_two_model_sizes_take_the_prior_three_fit_b():
    dev = get_device("jetson-orin-nano")
    truth = [("llama-3.2-1b", 1.3, 4e-5), ("qwen2.5-7b", 1.3, 4e-5), ("gemma-3-4b", 1.3, 4e-5)]
    rows = [_tg(m, "Q4_K_M", _truth(dev, m, "Q4_K_M", a, b)) for m, a, b in truth]
    two = _calibrate(dev, rows[:2]).calibration.decode
    assert two.form.startswith("2 model sizes (b is fitted from 3)")
    assert two.b_layer_s == pytest.approx(two.a * DC.layer_prior(dev, [])[0], rel=1e-3)
    three = _calibrate(dev, rows).calibration.decode
    assert three.form == "a and b fitted" and three.b_layer_s == pytest.approx(4e-5, rel=1e-3)


def test_calibrate_cli_writes_a_profile_that_fit_plan_and_report_use(cli, tmp_path):
    out = tmp_path / "epyc.yaml"
    src = DATA / "local-smollm2.json"
    code, table, err = cli("calibrate", "--device", "desktop-ddr5", str(src), "-o", str(out))
    assert code == 0, err
    assert "calibrated on 2 measurements from local-smollm2.json" in table and f"Wrote {out}" in err
    assert "decode rows of 1 model(s)" in err and "-m SMALL.gguf -m MEDIUM.gguf -m LARGE.gguf" in err  # how to do better
    prof = yaml.safe_load(out.read_text())
    base = get_device("desktop-ddr5").contract_dict()
    assert set(base) <= set(prof) and prof["id"] == "desktop-ddr5-calibrated" and prof["threads"] == 2
    cal = prof["calibration"]
    assert cal["files"] == [str(src)] and cal["measurements"] == 2 and cal["llama_cpp_build"] == "0c1e570 (1)"
    assert cal["date"] and cal["models"] == ["smollm2-135m"]
    assert [(r["test"], r["measured_tokens_per_s"]) for r in cal["residuals"]] == [
        ("pp64", round(r.tokens_per_s, 4)) if r.kind == "pp" else ("tg16", round(r.tokens_per_s, 4))
        for r in read_bench_file(src).rows]
    assert all(abs(r["residual_pct"]) < 0.01 for r in cal["residuals"])  # one pp, one tg: each fitted exactly

    code, js, _ = cli("fit", "smollm2-135m", "--device", str(out), "--quant", "Q4_1", "--format", "json")
    (r,) = json.loads(js)
    assert code == 0 and r["speed"]["method"].startswith("calibrated on 2 measurements from local-smollm2.json")
    code, js, _ = cli("plan", "--device", str(out), "--format", "json")
    assert code == 0 and all("calibrated on 2 measurements" in x["speed"]["method"] for x in json.loads(js))
    code, txt, _ = cli("plan", "--device", str(out), "--top", "3")
    assert code == 0 and "speed: calibrated on 2 measurements from local-smollm2.json" in txt

    rep = tmp_path / "r.json"
    code, _, err = cli("report", "--device", str(out), "--bench", str(DATA / "local-gemma3.md"), "-o", str(rep))
    assert code == 0, err
    data = json.loads(rep.read_text())
    rows = [m for m in data["measured"] if m["model"] == "gemma3 270M Q4_K - Medium"]
    assert {m["test"] for m in rows} == {"pp64", "tg16"}
    assert all(m["predicted_tokens_per_s"]["value"] and "calibrated on 2 measurements" in m["predicted_tokens_per_s"]["source"]
               for m in rows)
    assert all(m["measured_tokens_per_s"]["source"].startswith("measured: llama-bench on unknown CPU, 2 threads (llama-bench (llama.cpp 0c1e570 (1), CPU))") for m in rows)
    assert any(c["model"] == "gemma-3-270m" and c["benchmarked"] for c in data["candidates"])
    assert "calibrated on 2 measurements" in data["candidates"][0]["decode_tokens_per_s"]["source"]
    assert any(n.startswith("Speeds on this device are calibrated on 2 measurements from local-smollm2.json") for n in data["notes"])


def test_report_bench_accepts_llama_bench_json_uncalibrated(cli, tmp_path):
    rep = tmp_path / "r.json"
    code, _, err = cli("report", "--device", "desktop-ddr5", "--bench", str(DATA / "local-smollm2.jsonl"), "-o", str(rep))
    assert code == 0, err
    rows = json.loads(rep.read_text())["measured"]
    assert {r["test"] for r in rows} == {"pp64", "tg16"}
    tg = next(r for r in rows if r["test"] == "tg16")
    assert tg["ratio_measured_to_predicted"] == pytest.approx(tg["measured_tokens_per_s"]["value"] / tg["predicted_tokens_per_s"]["value"], rel=0.01)


def test_rows_of_several_settings_need_threads(cli, tmp_path):
    sweep = str(DATA / "public-apple-m-cpu-llama1b-threads.md")
    code, _, err = cli("calibrate", "--device", "macbook-air-m2", sweep, "-o", str(tmp_path / "m.yaml"))
    assert code == 2 and "measure 6 different settings" in err and "--threads N" in err and err.count("\n") == 1
    code, _, err = cli("calibrate", "--device", "macbook-air-m2", sweep, "--threads", "4", "-o", str(tmp_path / "m.yaml"))
    assert code == 0, err
    assert "the rows ran on cpu, the profile said metal" in err
    prof = get_device(str(tmp_path / "m.yaml"))
    assert prof.effective_backend == "cpu" and prof.threads == 4 and prof.calibration.measurements == 1


def test_rows_with_and_without_repacking_are_not_fitted_together():
    """On a Xeon VM decode ran 2.2x faster with llama.cpp's AMX copy than without: one fit cannot hold both."""
    from dataclasses import replace

    import slmplan.errors as E

    rows = read_bench_file(DATA / "local-smollm2.json").rows  # llama-bench --repack 0
    assert rows and all(r.repack is False for r in rows)
    for r in rows:
        r.model_id, r.quant = "smollm2-135m", "Q4_1"
    on = [replace(r, repack=True, source=r.source + "-on") for r in rows]
    with pytest.raises(E.BadInputError, match="repack 0 .*repack 1|repack 1 .*repack 0"):
        DC.select_rows(rows + on)
    assert _calibrate(get_device("pixel-8"), rows).calibration.repack is False


def test_speed_model_change_refits_from_the_stored_rows(tmp_path):
    dev = get_device("jetson-orin-nano")
    rows = [_tg(m, "Q4_K_M", _truth(dev, m, "Q4_K_M", 1.2, 3e-5)) for m in ("llama-3.2-1b", "qwen2.5-7b", "qwen2.5-3b")]
    new = _calibrate(dev, rows)
    q = Query()
    (ok,) = fit("gemma-3-4b", new, "Q4_K_M", q)
    stale = new.model_copy(update={"calibration": new.calibration.model_copy(update={"predictor": "cuda:000000000000"})})
    (refit,) = fit("gemma-3-4b", stale, "Q4_K_M", q)
    assert refit.speed.decode_tokens_per_s == pytest.approx(ok.speed.decode_tokens_per_s, rel=1e-3)
    assert "refitted: the speed model or the profile's hardware figures changed since calibration" in refit.speed.method
    # the constants are relative to the profile's figures: an edited bandwidth refits them on the same rows, and
    # the measured models come back as measured
    faster = new.model_copy(update={"memory_bandwidth_gbs": 2 * new.memory_bandwidth_gbs})
    (r,) = fit("qwen2.5-7b", faster, "Q4_K_M", Query(ctx=4096, n_prompt=1, n_gen=128))
    (r0,) = fit("qwen2.5-7b", new, "Q4_K_M", Query(ctx=4096, n_prompt=1, n_gen=128))
    assert "refitted" in r.speed.method and "refitted" not in r0.speed.method
    assert r.speed.decode_tokens_per_s == pytest.approx(r0.speed.decode_tokens_per_s, rel=0.02)


def test_written_profile_round_trips(tmp_path):
    dev = get_device("jetson-orin-nano")
    new = _calibrate(dev, [_tg("llama-3.2-3b", "Q4_K_M", 25.0)])
    p = tmp_path / "j.yaml"
    p.write_text(DC.profile_yaml(new))
    assert get_device(str(p)) == new


def test_pasted_table_on_vulkan_calibrates_vulkan(cli, tmp_path):
    out = tmp_path / "rx580.yaml"
    code, table, err = cli("calibrate", "--device", "desktop-ddr5", str(DATA / "public-rx580-vulkan-llama3b.md"), "-o", str(out))
    assert code == 0, err
    prof = get_device(str(out))
    assert prof.effective_backend == "vulkan" and prof.calibration.llama_cpp_build == "e598697d (4696)"
    notes = {r.test: r.note for r in prof.calibration.residuals}
    assert "not used" in notes["pp4096+tg128"]
    # the base profile has no GPU compute figure: prefill is not predicted, so its rows cannot correct it
    assert "no prediction" in notes["pp512"] and prof.calibration.measurements == 1


def _lomo():
    import importlib.util

    spec = importlib.util.spec_from_file_location("calibration_lomo", Path(__file__).parent.parent / "benchmarks" / "calibration_lomo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shipped_gpu_layer_priors_are_what_the_published_data_gives():
    mod = _lomo()
    _, _, prior = mod.run({**mod.llmfit_devices(), **mod.gpu_more_devices(), **mod.apple_devices()}, ks=())
    groups = {k.removesuffix("_median_b_over_a_ms"): v for k, v in prior.items() if k.endswith("_median_b_over_a_ms")}
    assert set(groups) == {"gpu", "gpu-no-graphs", "vulkan", "metal"}
    for g, v in groups.items():
        assert v == pytest.approx(DC.ONE_MODEL_LAYER_PRIOR_S[g] * 1e3, rel=0.01), g
    # GPUs before Ampere launch every kernel on its own: a fixed cost per layer well above the others'
    assert DC.ONE_MODEL_LAYER_PRIOR_S["gpu-no-graphs"] > 2 * DC.ONE_MODEL_LAYER_PRIOR_S["gpu"]
    # b/a = k / (FLOPs per byte): k and the range are what the six CUDA/Vulkan GPUs give, and b/a does fall with x
    c, cp = prior["compute"], DC.ONE_MODEL_COMPUTE_PRIOR
    assert c["devices"] == 6 and c["k_ms"] == pytest.approx(cp["k_s"] * 1e3, rel=0.01)
    assert (c["x_min"], c["x_max"]) == (cp["x_min"], cp["x_max"])
    assert c["log_log_slope"] < -0.5 and c["log_log_r"] < -0.8


def test_a_metal_profile_calibrated_on_one_model_takes_the_metal_prior():
    base = get_device("mac-mini-m4")
    assert DC.prior_group(base) == "metal"
    cal = _calibrate(base, [_tg("qwen2.5-7b", "Q4_K_M", 20.0)]).calibration
    assert cal.decode.b_layer_s == pytest.approx(cal.decode.a * DC.ONE_MODEL_LAYER_PRIOR_S["metal"], rel=1e-3)
    assert "Metal" in cal.decode.form


def test_one_model_prior_group_follows_the_gpu_generation():
    base = get_device("jetson-orin-nano")  # Ampere (compute capability 8.7, from its soc text): CUDA graphs
    assert DC.prior_group(base) == "gpu"
    # a profile saying the GPU is a Turing, without its FP32 peak (with one, the compute-per-byte prior applies)
    old = base.model_copy(update={"cuda_compute_capability": 7.5, "gpu_tflops": None})
    assert DC.prior_group(old) == "gpu-no-graphs"
    named = base.model_copy(update={"id": "gtx", "name": "NVIDIA GeForce GTX 1050 Ti", "soc": None})
    assert DC.prior_group(named) == "gpu-no-graphs"
    assert DC.prior_group(base.model_copy(update={"backend": "vulkan"})) == "vulkan"
    m = "qwen2.5-7b"
    cal = _calibrate(old, [_tg(m, "Q4_K_M", 20.0)]).calibration
    assert cal.decode.b_layer_s == pytest.approx(cal.decode.a * DC.ONE_MODEL_LAYER_PRIOR_S["gpu-no-graphs"], rel=1e-3)
    assert f"{DC.ONE_MODEL_LAYER_PRIOR_S['gpu-no-graphs'] * 1e3:.4f} ms" in cal.decode.form and "before Ampere" in cal.decode.form


def test_a_cuda_profile_of_unknown_gpu_takes_the_generation_from_llama_bench_gpu_info():
    from dataclasses import replace as dc_replace

    base = get_device("jetson-orin-nano").model_copy(update={"id": "box", "name": "My box", "soc": None, "gpu_tflops": None})
    assert DC.prior_group(base) == "gpu"  # unknown generation: CUDA graphs assumed
    # a Turing the GPU table does not list (its FP32 peak unknown): the launch-path group decides the prior
    row = dc_replace(_tg("qwen2.5-7b", "Q4_K_M", 20.0, backends="CUDA"), gpu_info="NVIDIA GeForce RTX 2080 Ti")
    new = _calibrate(base, [row])
    assert new.gpu_tflops is None
    assert new.cuda_compute_capability == 7.5 and "gpu_info" in new.sources["cuda_compute_capability"]
    assert DC.prior_group(new) == "gpu-no-graphs"
    assert new.calibration.decode.b_layer_s == pytest.approx(
        new.calibration.decode.a * DC.ONE_MODEL_LAYER_PRIOR_S["gpu-no-graphs"], rel=1e-3)
    stated = base.model_copy(update={"cuda_compute_capability": 8.6})  # a key written in the profile wins
    assert _calibrate(stated, [row]).cuda_compute_capability == 8.6


def test_one_measured_model_beats_the_uncalibrated_planner_on_every_device():
    """benchmarks/calibration_lomo.py's result, as a regression check (deterministic, no timing)."""
    mod = _lomo()
    results, _, _ = mod.run(mod.llmfit_devices(), ks=(3,))  # the five llmfit GPUs: k from the other four
    assert len(results) >= 4
    for r in results:  # one measured model improves every device; more models improve it further
        assert r["one_model_mean_abs_pct"] < r["uncalibrated_mean_abs_pct"], r["device"]
        assert r["lomo_mean_abs_pct"] <= r["one_model_mean_abs_pct"], r["device"]
    mean = lambda k: sum(r[k] for r in results) / len(results)  # noqa: E731
    assert mean("one_model_mean_abs_pct") < 0.5 * mean("uncalibrated_mean_abs_pct")
    # three models measured together (one llama-bench run with three -m) predict the others better than one,
    # and no better than all the others do (leave one model out)
    three = sum(r["k_models_mean_abs_pct"][3] for r in results) / len(results)
    assert mean("lomo_mean_abs_pct") <= three < mean("one_model_mean_abs_pct")


def test_calibration_of_an_unknown_decode_speed_does_not_crash():
    # apply_calibration used to divide by the incoming decode speed even when it was unknown (None)
    dev = get_device("pixel-8")
    f1 = DC.measured_facts("llama-3.2-1b", None)
    pred = DC.predicted_token_time_s(f1, "Q4_K_M", dev, "tg", 128, 0).total_s
    new = _calibrate(dev, [_tg("llama-3.2-1b", "Q4_K_M", 0.8 / pred)])
    (known,) = fit("llama-3.2-1b", new, "Q4_K_M", Query(ctx=4096, n_prompt=300, n_gen=200))
    unknown = known.speed.model_copy(update={"decode_tokens_per_s": None, "decode_tokens_per_s_low": None,
                                             "decode_tokens_per_s_high": None, "ttft_s": None})
    out = DC.apply_calibration(unknown, f1, "Q4_K_M", new, 4096, 300, 200)
    # the device's own decode fit gives the speed; it is the same as from a known estimate
    assert out.decode_tokens_per_s == known.speed.decode_tokens_per_s
    no_fit = new.model_copy(update={"calibration": new.calibration.model_copy(update={"decode": None})})
    out = DC.apply_calibration(unknown, f1, "Q4_K_M", no_fit, 4096, 300, 200)
    assert out.decode_tokens_per_s is None and out.ttft_s is None  # unknown stays unknown, not 0


@pytest.mark.parametrize("name, backend, rows", [
    ("public-android-xiaomi14-opencl-llama1b.md", "OpenCL", [("llama-3.2-1b", "Q4_0", "pp128", 327.75), ("llama-3.2-1b", "Q4_0", "tg32", 23.10),
                                                             ("llama-3.2-1b", "F16", "pp128", 33.68), ("llama-3.2-1b", "F16", "tg32", 18.78)]),
    ("public-android-snapdragon-htp-llama1b.md", "HTP", [("llama-3.2-1b", "Q4_0", "pp128", 169.42), ("llama-3.2-1b", "Q4_0", "tg64", 51.54)]),
])
def test_android_tables_import_and_their_gpu_npu_backends_are_refused(cli, tmp_path, name, backend, rows):
    """Real Android llama-bench tables (Snapdragon phones, see SOURCES.md): read and identified like any other;
    they ran on the GPU (OpenCL) and the NPU (Hexagon), which slmplan's speed model does not describe, so a
    calibration on them is refused instead of being fitted as CPU rows."""
    from slmplan.importers.identify import identify_rows

    f = read_bench_file(DATA / name)
    identify_rows(f.rows)
    assert [(r.model_id, r.quant, r.test, r.tokens_per_s) for r in f.rows] == rows and not f.skipped
    assert {(r.backends, r.n_gpu_layers) for r in f.rows} == {(backend, 99)}
    code, out, err = cli("calibrate", "--device", "pixel-8", str(DATA / name), "-o", str(tmp_path / "p.yaml"))
    assert code == 2 and out == "" and err.count("\n") == 1 and not (tmp_path / "p.yaml").exists()
    assert err.startswith("Error: ") and f"ran on {backend} with layers offloaded" in err, err


def test_calibrate_takes_the_fp32_peak_of_the_gpu_llama_bench_names():
    from dataclasses import replace as dc_replace

    base = get_device("jetson-orin-nano").model_copy(update={"id": "box", "name": "My box", "soc": None, "gpu_tflops": None,
                                                             "memory_bandwidth_gbs": 1008.0})
    row = dc_replace(_tg("qwen2.5-7b", "Q4_K_M", 120.0, backends="CUDA"), gpu_info="NVIDIA GeForce RTX 4090")
    new, notes = DC.calibrate([BenchFile("rows.json", "json", [row], [])], base, now="x")
    assert new.gpu_tflops == 82.58 and "gpu_info 'NVIDIA GeForce RTX 4090'" in new.sources["gpu_tflops"]
    assert new.cuda_compute_capability == 8.9 and "gpu_info" in new.sources["cuda_compute_capability"]  # both kept
    x = 82.58e12 / 1008e9
    d = new.calibration.decode
    assert d.b_layer_s == pytest.approx(d.a * DC.ONE_MODEL_COMPUTE_PRIOR["k_s"] / x, rel=1e-3)
    assert not any("GB/s by its specification" in n for n in notes)
    # a profile's own figure wins; a bandwidth far from the named GPU's gets a note (a CPU profile, GPU rows)
    stated = base.model_copy(update={"gpu_tflops": 80.0, "memory_bandwidth_gbs": 89.6, "backend": "cpu"})
    new2, notes2 = DC.calibrate([BenchFile("rows.json", "json", [row], [])], stated, now="x")
    assert new2.gpu_tflops == 80.0 and new2.effective_backend == "cuda"
    assert any("1008 GB/s by its specification" in n and "89.6 GB/s" in n for n in notes2)
    # a laptop part is not the desktop card: nothing is taken
    laptop = dc_replace(row, gpu_info="NVIDIA GeForce RTX 4090 Laptop GPU")
    assert DC.calibrate([BenchFile("rows.json", "json", [laptop], [])], base, now="x")[0].gpu_tflops is None


def test_measured_quant_types_carry_their_own_factor_to_other_models():
    # a device whose Q8_0 kernels run 25% slower (time per token) than the speed model's per-type costs say,
    # measured on two models at Q4_0 and Q8_0: a third model's Q8_0 is predicted slower by the shrunk factor
    # 1.25^(2/3) (two models measured the type: weight 2/3) relative to its Q4_0; an unmeasured type keeps x1
    dev = get_device("jetson-orin-nano")  # CUDA: no device/model split, so a is the rows' own fit
    b = 1.2 * DC.layer_prior(dev, [])[0]  # two model sizes: b = a x the prior, so the form fits the truth
    rows = [_tg(m, q, _truth(dev, m, q, 1.2, b) / k) for m in ("llama-3.2-1b", "qwen2.5-3b")
            for q, k in (("Q4_0", 1.0), ("Q8_0", 1.25))]
    d = _calibrate(dev, rows).calibration.decode
    assert set(d.quant_factors) == {"Q4_0", "Q8_0"} and d.quant_factors["Q4_0"] < 1 < d.quant_factors["Q8_0"]
    assert d.quant_factors["Q8_0"] / d.quant_factors["Q4_0"] == pytest.approx(1.25 ** (2 / 3), rel=1e-3)
    assert "Q8_0 " in DC.quant_factors_text(d.quant_factors)
    new = _calibrate(dev, rows)
    cal = new.calibration
    plain = new.model_copy(update={"calibration": cal.model_copy(update={"decode": d.model_copy(update={"quant_factors": {}})})})
    q = Query(ctx=4096, n_prompt=0, n_gen=128)
    moved = {qt: fit("smollm2-1.7b", new, qt, q)[0].speed.decode_tokens_per_s
             / fit("smollm2-1.7b", plain, qt, q)[0].speed.decode_tokens_per_s for qt in ("Q4_0", "Q8_0", "Q4_K_M")}
    assert moved["Q4_0"] == pytest.approx(1 / d.quant_factors["Q4_0"], rel=2e-3)
    assert moved["Q8_0"] == pytest.approx(1 / d.quant_factors["Q8_0"], rel=2e-3)
    assert moved["Q4_K_M"] == 1.0  # not measured: the device's overall fit only
    # one quant type: nothing to tell apart
    one = _calibrate(dev, [r for r in rows if r.quant == "Q4_0"]).calibration.decode
    assert one.quant_factors == {}


def test_prompt_rows_of_two_quant_types_carry_each_types_factor():
    # a phone whose Q4_0 prompt kernels run 1.5x the planner's prediction and Q4_K_M 1.0x (as the PocketPal
    # phones' repacked Q4_0 do), measured on two models: scale = the median ratio 1.25, and each measured
    # type keeps its deviation from it shrunk by 2/3 (two models); an unmeasured type gets the scale alone
    dev = get_device("pixel-8")

    def pp(model, quant, k):
        t = DC.predicted_token_time_s(DC.measured_facts(model, None), quant, dev, "pp", 512, 0).total_s
        return BenchRow(source="synthetic", n_prompt=512, n_gen=0, n_depth=0, tokens_per_s=k / t, model_id=model, quant=quant)

    rows = [pp(m, q, k) for m in ("llama-3.2-1b", "qwen2.5-3b") for q, k in (("Q4_0", 1.5), ("Q4_K_M", 1.0))]
    new = _calibrate(dev, rows)
    p = new.calibration.prefill
    assert p.scale == pytest.approx(1.25, rel=1e-4)
    assert p.quant_factors["Q4_0"] == pytest.approx(1.2 ** (2 / 3), rel=1e-3)
    assert p.quant_factors["Q4_K_M"] == pytest.approx(0.8 ** (2 / 3), rel=1e-3)
    f = DC.measured_facts("smollm2-1.7b", None)
    for quant, k in (("Q4_0", 1.25 * 1.2 ** (2 / 3)), ("Q4_K_M", 1.25 * 0.8 ** (2 / 3)), ("Q8_0", 1.25)):
        assert DC.predict_test(f, quant, new, 512, 0, 0) == pytest.approx(k * DC.predict_test(f, quant, dev, 512, 0, 0), rel=1e-3)
    # the rows' residuals are taken after the type factors (without them: +/-20% around the median)
    want = {"Q4_0": 100 * (1.25 * 1.2 ** (2 / 3) / 1.5 - 1), "Q4_K_M": 100 * (1.25 * 0.8 ** (2 / 3) - 1)}
    assert all(r.residual_pct == pytest.approx(want[r.quant], abs=0.02) for r in new.calibration.residuals)


def test_quant_factors_improve_the_phones_prompt_predictions(monkeypatch):
    """benchmarks/calibration_lomo.py --prefill on the two PocketPal phones (pp rows at Q4_0, Q4_K_M and Q8_0):
    the measured types' own factors bring leave-one-model-out prompt error down (deterministic, no timing; the
    speed model's per-type repack factors already take most of the phones' type differences: 0.74-0.76x then)."""
    mod = _lomo()
    phones = {n: v for n, v in mod.prefill_devices().items() if "POCO" in n or "Galaxy S23" in n}
    assert len(phones) == 2
    with_qf = {n: mod.evaluate_device(b, rows, ks=())["lomo_mean_abs_pct"] for n, (b, rows) in phones.items()}
    monkeypatch.setattr(DC, "QUANT_FACTORS", False)
    without = {n: mod.evaluate_device(b, rows, ks=())["lomo_mean_abs_pct"] for n, (b, rows) in phones.items()}
    for n in phones:
        assert with_qf[n] < 0.85 * without[n], (n, with_qf[n], without[n])


def test_shipped_one_model_bounds_are_what_the_published_devices_give():
    """ONE_MODEL_DECODE_BOUNDS = calibration_lomo.py --unseen --bounds: the 10th-90th percentile of the other
    models' measured/predicted after a one-model calibration, every device predicted as a new one."""
    mod = _lomo()
    devices = {**mod.llmfit_devices(), **mod.gpu_more_devices(), **mod.apple_devices(), **mod.edge_cpu_devices()}
    results, _, _ = mod.run(devices, ks=(), unseen=True)
    assert len(results) == 12
    lo, hi = mod.one_model_bounds(results)["all"]
    assert (lo, hi) == pytest.approx(DC.ONE_MODEL_DECODE_BOUNDS, abs=0.002)
    # and they hold about 80% of those predictions, device by device on average
    inside = [r["one_model_inside_low_high_pct"] for r in results]
    assert 70 < sum(inside) / len(inside) < 90


def test_a_calibrated_profile_with_an_impossible_quant_factor_is_refused(tmp_path, cli):
    dev = get_device("jetson-orin-nano")
    b = 1.2 * DC.layer_prior(dev, [])[0]
    rows = [_tg(m, q, _truth(dev, m, q, 1.2, b) / k) for m in ("llama-3.2-1b", "qwen2.5-3b")
            for q, k in (("Q4_0", 1.0), ("Q8_0", 1.25))]
    calibrated = _calibrate(dev, rows)
    text = DC.profile_yaml(calibrated)
    q8 = calibrated.calibration.decode.quant_factors["Q8_0"]
    assert f"Q8_0: {q8}" in text
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(text)
    bad.write_text(text.replace(f"Q8_0: {q8}", "Q8_0: -1.0"))
    assert cli("fit", "llama-3.2-3b", "--device", str(good))[0] == 0
    code, out, err = cli("fit", "llama-3.2-3b", "--device", str(bad))
    assert code == 2 and "quant_factors.Q8_0: Input should be greater than 0" in err
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err + out
