"""`bench --calibrate` goes through the fit of `slmplan calibrate` and stores the local profile's calibration.

The benchmark runs are built here (BenchRun objects as `slmplan bench` returns them): nothing is timed."""

import json

import pytest

from slmplan import device_calibration as DC
from slmplan.bench.calibrate import calibrate_local, run_rows
from slmplan.bench.predict import make_predictor
from slmplan.calibration_store import load_local_calibration, local_calibration_path
from slmplan.catalog import facts, get_model, load_catalog
from slmplan.devices import get_device
from slmplan.importers.llama_bench import BenchFile, rows_from_bench_run
from slmplan.localdevice import detect_local
from slmplan.planner import Query, fit
from slmplan.schema.bench import BenchRun, BenchSettings, MemoryReport, TestResult

NOW = "2026-12-01 20:00 UTC"


@pytest.fixture(autouse=True)
def _fresh_local():
    detect_local.cache_clear()  # SLMPLAN_BANDWIDTH_GBS=20 from conftest, in this test's cache dir
    yield
    detect_local.cache_clear()


def _test(name, n_prompt, n_gen, tps, n_depth=0):
    return TestResult(test=name, n_prompt=n_prompt, n_gen=n_gen, n_depth=n_depth, tokens_per_s_mean=tps,
                      tokens_per_s_std=0.5, samples=[tps - 0.5, tps + 0.5], samples_ns=[1, 1], tokens_per_s_median=tps,
                      flash_attn="on")


def _tps(model_id, quant, n_prompt, n_gen, factor=0.8, threads=2):
    """A plausible measurement: the uncalibrated planner's tokens/s for this machine x ``factor``."""
    dev = detect_local().model_copy(update={"threads": threads})
    return factor * DC.predict_test(facts(get_model(load_catalog(), model_id)), quant, dev, n_prompt, n_gen, 0)


def _run(model_id, quant, tg, pp=None, threads=2, path=None, fa="auto", desc=None, n_params=None) -> BenchRun:
    m = get_model(load_catalog(), model_id)
    results = ([_test("pp64", 64, 0, pp)] if pp else []) + [_test("tg16", 0, 16, tg)]
    return BenchRun(runtime="llama.cpp", model=model_id, model_path=path or f"/nowhere/{m.name.replace(' ', '-')}-{quant}.gguf",
                    model_desc=desc or "", quant=quant, n_params=n_params, threads=threads,
                    settings=BenchSettings(threads=threads, n_batch=2048, n_ubatch=512, flash_attn=fa, reps=2, warmup=True),
                    results=results, memory=MemoryReport(), system={})


def test_bench_calibrate_is_the_fit_of_slmplan_calibrate_on_the_same_rows():
    run = _run("llama-3.2-1b", "Q4_K_M", tg=30.0, pp=120.0)
    base = detect_local()
    cal, _ = calibrate_local(run, base, now=NOW)
    # what `slmplan calibrate --device local bench.json` fits on the same run's JSON
    rows, _ = rows_from_bench_run(run, "slmplan bench Llama-3.2-1B-Instruct-Q4_K_M.gguf")
    for r in rows:
        r.model_id, r.quant = "llama-3.2-1b", "Q4_K_M"
    ref = DC.calibrate([BenchFile("slmplan bench Llama-3.2-1B-Instruct-Q4_K_M.gguf", "slmplan", rows, [])], base, now=NOW)[0]
    assert cal.decode == ref.calibration.decode and cal.prefill == ref.calibration.prefill
    assert cal.residuals == ref.calibration.residuals and cal.predictor == ref.calibration.predictor
    assert cal.method == "calibrated on 2 measurements from slmplan bench Llama-3.2-1B-Instruct-Q4_K_M.gguf"
    assert (cal.threads, cal.flash_attn, cal.backend) == (2, "on", "cpu")
    assert json.loads(local_calibration_path().read_text())["method"] == cal.method  # stored
    assert load_local_calibration() == cal


def test_fit_and_plan_on_local_use_the_stored_calibration(cli):
    code, js, _ = cli("fit", "qwen2.5-3b", "--device", "local", "--quant", "Q4_K_M", "--format", "json")
    (before,) = json.loads(js)
    assert code == 0 and before["speed"]["method"].startswith("estimate")
    run = _run("llama-3.2-1b", "Q4_K_M", tg=30.0, pp=120.0)
    calibrate_local(run, detect_local(), now=NOW)
    dev = get_device("local")
    assert dev.id == "local" and dev.calibration is not None and dev.threads == 2
    code, js, _ = cli("fit", "qwen2.5-3b", "--device", "local", "--quant", "Q4_K_M", "--format", "json")
    (after,) = json.loads(js)
    assert code == 0 and after["device"] == "local"
    assert after["speed"]["method"].startswith("calibrated on 2 measurements from slmplan bench Llama-3.2-1B")
    assert after["speed"]["decode_tokens_per_s"] != before["speed"]["decode_tokens_per_s"]
    code, txt, _ = cli("plan", "--device", "local", "--top", "3")
    assert code == 0 and "speed: calibrated on 2 measurements from slmplan bench" in txt
    # the measured test itself comes back as measured (one tg row: fitted exactly)
    f = facts(get_model(load_catalog(), "llama-3.2-1b"))
    assert DC.predict_test(f, "Q4_K_M", dev, 0, 16, 0) == pytest.approx(30.0, rel=1e-3)
    assert DC.predict_test(f, "Q4_K_M", dev, 64, 0, 0) == pytest.approx(120.0, rel=1e-3)


def test_later_benchmarks_predict_with_the_calibration_of_their_thread_count():
    calibrate_local(_run("llama-3.2-1b", "Q4_K_M", tg=30.0, pp=120.0), detect_local(), now=NOW)
    dev = get_device("local")
    f = facts(get_model(load_catalog(), "llama-3.2-1b"))
    p = make_predictor(f, "Q4_K_M", dev, threads=2)
    assert p.label == "local calibration" and p.tokens_per_s(0, 16, 0) == pytest.approx(30.0, rel=1e-3)
    assert p.tokens_per_s(64, 16, 0) == pytest.approx(80 / (64 / 120.0 + 16 / DC.predict_test(f, "Q4_K_M", dev, 0, 16, 64)),
                                                      rel=1e-6)
    other = make_predictor(f, "Q4_K_M", dev, threads=1)  # the calibration did not measure 1 thread
    assert other.label == "shipped" and other.calibrated is None


def test_calibrating_runs_accumulate_and_a_repeated_test_replaces_its_row():
    base = detect_local()
    calibrate_local(_run("llama-3.2-1b", "Q4_K_M", tg=_tps("llama-3.2-1b", "Q4_K_M", 0, 16, 0.8), pp=120.0), base, now=NOW)
    cal, notes = calibrate_local(_run("qwen2.5-3b", "Q4_K_M", tg=_tps("qwen2.5-3b", "Q4_K_M", 0, 16, 0.9)), base, now=NOW)
    assert notes == [] and cal.measurements == 3 and cal.models == ["llama-3.2-1b", "qwen2.5-3b"]
    assert cal.decode.models == 2 and cal.decode.form != "" and not cal.decode.form.startswith("one model size")
    assert len(cal.files) == 2 and cal.method.startswith("calibrated on 3 measurements from slmplan bench Llama")
    again = round(_tps("llama-3.2-1b", "Q4_K_M", 0, 16, 0.85), 4)
    cal, _ = calibrate_local(_run("llama-3.2-1b", "Q4_K_M", tg=again), base, now=NOW)
    tg = [r for r in cal.residuals if r.model == "llama-3.2-1b" and r.n_gen]
    assert cal.measurements == 3 and [r.measured_tokens_per_s for r in tg] == [again]
    # another setting (1 thread) starts over: rows of two settings are never fitted together
    cal, notes = calibrate_local(_run("qwen2.5-3b", "Q4_K_M", tg=_tps("qwen2.5-3b", "Q4_K_M", 0, 16, threads=1), threads=1),
                                 base, now=NOW)
    assert cal.measurements == 1 and cal.threads == 1 and "replaced by this run's" in notes[0]


def test_a_model_outside_the_catalog_calibrates_from_its_own_file(smollm2, tmp_path):
    link = tmp_path / "my-own-finetune.gguf"
    link.symlink_to(smollm2)
    run = _run("smollm2-135m", "Q4_1", tg=150.0, path=str(link))  # no description, no parameter count
    (row,) = run_rows(run)
    assert row.model_id == "my-own-finetune" and row.gguf_path == str(link)
    cal, _ = calibrate_local(run, detect_local(), now=NOW)
    assert cal.models == ["my-own-finetune"] and cal.residuals[0].gguf_path == str(link)
    assert cal.residuals[0].residual_pct == pytest.approx(0, abs=0.01)
    (r,) = fit("gemma-3-1b", get_device("local"), "Q4_K_M", Query())
    assert r.speed.method.startswith("calibrated on 1 measurement from slmplan bench my-own-finetune.gguf")


def test_an_unreadable_stored_calibration_is_set_aside(cli, capsys):
    p = local_calibration_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    for content in ("[1]", '{"method": "x"}', "{cut", '{"decode": {"a": NaN}}'):
        p.write_text(content)
        code, out, err = cli("fit", "llama-3.2-1b", "--device", "local", "--quant", "Q4_K_M", "--format", "json")
        assert code == 0 and "local_calibration.json is corrupt" in err and not p.exists(), (content, err)
        assert json.loads(out)[0]["speed"]["method"].startswith("estimate")
