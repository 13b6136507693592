"""`slmplan bench` end to end on the real PyPI test models (small runs: seconds, not minutes).

Timings are never asserted (the machine is shared): what is checked is that the numbers are
consistent with each other and with llama.cpp's own report, and that bad input is refused.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("llama_cpp", reason="needs the 'llama' extra (llama-cpp-python)")

pytestmark = pytest.mark.runtime
MIB = 1 << 20
TINY = ("--pp", "32", "--tg", "4", "--reps", "2", "--no-ttft")


def bench_json(cli, *args):
    code, out, err = cli("bench", *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def test_contract_shape_and_consistent_figures(cli, smollm2):
    d = bench_json(cli, str(smollm2), "--threads", "1", *TINY)
    assert d["runtime"] == "llama.cpp" and d["threads"] == 1 and d["model"] == str(smollm2)
    assert [r["test"] for r in d["results"]] == ["pp32", "tg4"]
    for r in d["results"]:
        n = r["n_prompt"] + r["n_gen"]
        assert len(r["samples"]) == len(r["samples_ns"]) == 2 and r["complete"]
        # every tokens/s figure is what its own timing says (llama-bench's definition)
        assert r["samples"] == pytest.approx([n / (ns / 1e9) for ns in r["samples_ns"]], rel=1e-3)
        assert r["tokens_per_s_mean"] == pytest.approx(sum(r["samples"]) / 2, rel=1e-3)
        assert r["predicted_tokens_per_s"] > 0
        assert r["ratio_measured_to_predicted"] == pytest.approx(r["tokens_per_s_median"] / r["predicted_tokens_per_s"], rel=1e-3)
    assert d["memory"]["peak_rss_bytes"] >= d["memory"]["rss_after_load_bytes"] > d["memory"]["rss_before_load_bytes"] > 0
    assert d["load_s"] > 0 and d["settings"]["warmup"] is True
    assert d["prediction"]["device"] == "local" and d["prediction"]["constants"] == "shipped"
    s = d["system"]
    assert s["logical_cores"] >= 1 and s["ram_total_bytes"] > 0 and "llama_cpp_python" in s["versions"]
    assert s["llama_cpp_cpu_features"] and "contention" in s and s["loadavg_before"] is not None


def test_memory_agrees_with_llamacpp_report(cli, gemma3):
    """Gemma 3 270M: mapped + repacked weights, SWA KV cache (swa_full off) and compute buffers."""
    d = bench_json(cli, str(gemma3), "--pp", "64", "--tg", "0", "--depth", "0,1024", "--reps", "1", "--no-ttft")
    m = d["memory"]
    assert m["llama_buffers"]["CPU_Mapped model"] == m["weights_mapped_bytes"]
    assert m["weights_mapped_bytes"] == pytest.approx(m["predicted_weights_bytes"], abs=0.01 * MIB)
    # the repacked copies llama.cpp made with the repack setting that ran (AMX, CPU_REPACK or none, by CPU)
    assert m["weights_repacked_bytes"] == pytest.approx(m["predicted_repack_bytes"], abs=0.01 * MIB)
    assert {k: round(v / MIB, 1) for k, v in m["extra_buffers"].items()} == \
        {k: round(v / MIB, 1) for k, v in m["predicted_extra_buffers"].items()}
    assert (m["weights_repacked_bytes"] > 0) == bool(d["settings"]["repack"] and m["predicted_repack_bytes"])
    for r in d["results"]:
        b = r["buffers"]
        assert b["kv_cache_bytes"] == pytest.approx(b["predicted_kv_cache_bytes"], rel=0.01), r["test"]
        assert b["compute_bytes"] + b["output_bytes"] == pytest.approx(b["predicted_compute_bytes"], rel=0.05), r["test"]
        assert r["flash_attn"] == "on"  # 'auto' resolves to on for the CPU backend, as llama-bench sees it
    shallow, deep = d["results"]
    assert deep["test"] == "pp64 @ d1024" and deep["buffers"]["kv_cache_bytes"] > shallow["buffers"]["kv_cache_bytes"]


def test_depth_ttft_and_output_files(cli, smollm2, tmp_path):
    out_csv, out_md, out_json = tmp_path / "b.csv", tmp_path / "b.md", tmp_path / "b.json"
    code, out, err = cli("bench", "smollm2-135m", "--pp", "0", "--tg", "4", "--depth", "0,64", "--reps", "1",
                         "-o", str(out_csv))
    assert code == 0, err
    assert "tg4 @ d64" in out and "Time to first token" in out and "Memory" in out
    header, *rows = out_csv.read_text().splitlines()
    assert header.startswith("model,quant,runtime,threads") and [r.split(",")[7] for r in rows] == ["tg4", "tg4 @ d64"]
    d = bench_json(cli, "smollm2-135m", "--pp", "0", "--tg", "2", "--reps", "1", "-o", str(out_json))
    assert json.loads(out_json.read_text()) == d
    t = d["ttft"]
    assert t["prompt_tokens"] > 50 and t["chat_template"] and t["first_token"]
    assert len(t["samples_s"]) == 1 and t["predicted_ttft_s"] > 0
    code, _, err = cli("bench", "smollm2-135m", *TINY, "-o", str(out_md))
    assert code == 0, err
    assert out_md.read_text().startswith("## slmplan bench: SmolLM2-135M") and "| pp32 |" in out_md.read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_calibrate_feeds_the_planner(cli, smollm2, tmp_path):
    fit_before = json.loads(cli("fit", str(smollm2), "--device", "local", "--format", "json")[1])[0]
    code, _, err = cli("bench", str(smollm2), "--pp", "32", "--tg", "8", "--reps", "2", "--no-ttft", "--calibrate")
    assert code == 0 and "Calibrated: calibrated on 2 measurements from slmplan bench SmolLM2-135M-Instruct.Q4_1.gguf" in err, err
    stored = json.loads((tmp_path / "cache" / "local_calibration.json").read_text())
    assert stored["measurements"] == 2 and {r["test"] for r in stored["residuals"]} == {"pp32", "tg8"}
    fit_after = json.loads(cli("fit", str(smollm2), "--device", "local", "--format", "json")[1])[0]
    assert fit_before["speed"]["method"].startswith("estimate")
    assert fit_after["speed"]["method"].startswith("calibrated on 2 measurements from slmplan bench SmolLM2")
    # a later benchmark's predictions use the local calibration
    d = bench_json(cli, str(smollm2), "--pp", "0", "--tg", "8", "--reps", "1", "--no-ttft")
    assert d["prediction"]["constants"] == "local calibration" and "calibrated on 2 measurements" in d["prediction"]["method"]


@pytest.mark.parametrize("args, needle", [
    (("/nonexistent/model.gguf",), "no such file"),
    (("smollm2-135m", "--runtime", "tensorrt"), "unknown runtime"),
    (("smollm2-135m", "--runtime", "onnx"), "no such folder"),
    (("smollm2-135m", "--reps", "0"), "--reps 0 is out of range"),
    (("smollm2-135m", "--pp", "abc"), "--pp takes whole numbers"),
    (("smollm2-135m", "--threads", "0"), "--threads 0 is out of range"),
    (("smollm2-135m", "--flash-attn", "maybe"), "--flash-attn 'maybe' is not one of"),
    (("smollm2-135m", "--pp", "0", "--tg", "0", "--no-ttft"), "nothing to measure"),
    (("smollm2-135m", "-o", "/tmp/x.txt"), "cannot tell the format"),
    (("smollm2-135m", "-o", "/nonexistent-dir/x.json"), "does not exist"),
    (("no-such-model",), "unknown model"),
    (("llama-3.2-1b",), "no local GGUF file for 'llama-3.2-1b'"),
])
def test_bad_input_is_one_line_exit_2(cli, args, needle):
    code, out, err = cli("bench", *args)
    assert code == 2 and out == ""
    assert err.startswith("Error: ") and needle in err and err.count("\n") == 1, err


def test_corrupt_and_truncated_files(cli, smollm2, tmp_path):
    trunc = tmp_path / "cut.gguf"
    trunc.write_bytes(smollm2.read_bytes()[: 40 * MIB])
    code, _, err = cli("bench", str(trunc))
    assert code == 2 and "truncated" in err and "Traceback" not in err
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(os.urandom(4096))
    code, _, err = cli("bench", str(junk))
    assert code == 2 and err.startswith("Error: ") and "GGUF" in err


def test_refuses_what_does_not_fit_in_ram(cli, smollm2, monkeypatch):
    monkeypatch.setattr("slmplan.bench.prepare.available_memory", lambda: 64 * MIB)
    code, _, err = cli("bench", str(smollm2), *TINY)
    assert code == 2 and "would make the machine swap" in err and "--force" in err
    code, out, err = cli("bench", str(smollm2), "--pp", "8", "--tg", "0", "--reps", "1", "--no-ttft", "--force")
    assert code == 0 and "pp8" in out


def test_ctrl_c_keeps_the_samples_measured(smollm2, tmp_path):
    """SIGINT to the whole process group (what a terminal's Ctrl-C does) mid-run."""
    out = tmp_path / "partial.json"
    # one thread: with two on a busy 2-core machine, llama.cpp's threads spin at every graph barrier while the
    # other waits for a core, so the child's CPU time grows for seconds before the first sample (seen here)
    p = subprocess.Popen([sys.executable, "-m", "slmplan.cli.main", "bench", str(smollm2), "--pp", "0", "--tg", "16",
                          "--reps", "400", "--no-ttft", "--no-warmup", "--threads", "1", "-o", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         env=dict(os.environ, PYTHONFAULTHANDLER="1"))
    deadline = time.monotonic() + 120
    import psutil

    # wait until the child has the model loaded and is generating (its CPU time grows), then interrupt
    while time.monotonic() < deadline:
        try:  # the benchmark child, not a short-lived probe the parent may start first
            kids = [k for k in psutil.Process(p.pid).children() if "slmplan.bench.worker" in " ".join(k.cmdline())]
            if kids and sum(kids[0].cpu_times()[:2]) > 6.0:  # well past loading, even on a loaded machine
                break
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGINT)
    try:
        stdout, stderr = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # seen rarely on a loaded machine: show where the parent waits
        os.kill(p.pid, signal.SIGABRT)  # PYTHONFAULTHANDLER=1 below: the stack of every thread
        stdout, stderr = p.communicate(timeout=30)
        pytest.fail(f"bench did not stop within 60 s of Ctrl-C; its threads:\n{stderr[-6000:]}")
    assert p.returncode == 130, stderr
    assert "Interrupted: kept the" in stderr
    d = json.loads(out.read_text())
    assert d["interrupted"] is True
    (r,) = d["results"]
    assert r["test"] == "tg16" and not r["complete"] and 1 <= len(r["samples"]) < 400
    assert "tg16 (partial)" in stdout


def test_library_run_benchmark_names_parameters_not_flags(smollm2):
    import slmplan

    run = slmplan.run_benchmark(str(smollm2), slmplan.BenchOptions(pp=(16,), tg="4", reps=1, ttft=False, threads=1))
    assert [r.test for r in run.results] == ["pp16", "tg4"] and run.settings.threads == 1
    with pytest.raises(slmplan.BadInputError) as e:
        slmplan.run_benchmark(str(smollm2), slmplan.BenchOptions(reps=0))
    assert e.value.one_line() == "reps 0 is out of range (1..1000). Use e.g. reps=5." and e.value.params == ("reps",)
