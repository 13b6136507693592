"""The benchmark's pure parts: log parsing, test naming, value checks, calibration math, renderers."""

import json
from collections import namedtuple

import pytest

from slmplan.bench import render as R
from slmplan.bench.prepare import check_runtime, parse_int_list
from slmplan.bench.runner import TestSpec, build_tests
from slmplan.bench.system import Snapshot, busy_warnings, contention
from slmplan.errors import BadInputError, RuntimeFailure
from slmplan.fileio import write_atomic
from slmplan.schema.bench import BenchRun, BenchSettings, ContextBuffers, MemoryReport, TestResult

# real lines from llama.cpp 0.3.36's log (two spaces before 'output' are llama.cpp's own)
LOG = """load_tensors:   CPU_Mapped model buffer size =   235.16 MiB
load_tensors:   CPU_REPACK model buffer size =    12.66 MiB
llama_context:        CPU  output buffer size =     1.00 MiB
llama_kv_cache:        CPU KV buffer size =    11.25 MiB
llama_kv_cache_iswa: creating SWA KV cache, size = 768 cells
llama_kv_cache:        CPU KV buffer size =     4.50 MiB
sched_reserve:        CPU compute buffer size =   514.50 MiB
resolve_fused_ops: Flash Attention enabled""".splitlines()


def test_parse_buffers_and_flash_attn():
    from slmplan.bench.llama_log import parse_buffers, parse_flash_attn

    b = parse_buffers(LOG)
    assert b["CPU_Mapped model"] == 235.16 * 2**20 and b["CPU_REPACK model"] == 12.66 * 2**20
    assert b["CPU KV"] == pytest.approx((11.25 + 4.50) * 2**20)  # both caches of an iSWA model add up
    assert b["CPU output"] == 2**20 and b["CPU compute"] == 514.5 * 2**20
    assert parse_flash_attn(LOG, "auto") == "on"
    assert parse_flash_attn(["Flash Attention disabled"], "auto") == "off"
    assert parse_flash_attn([], "off") == "off"
    assert parse_flash_attn([], "auto").startswith("auto")


def test_test_names_follow_llama_bench():
    assert [t.name for t in build_tests([512], [128], [0, 4096])] == ["pp512", "pp512 @ d4096", "tg128", "tg128 @ d4096"]
    assert build_tests([0], [0], [0]) == []
    assert TestSpec(16, 8).name == "pp16+tg8"


def test_value_checks():
    assert parse_int_list("128, 512,128", "--pp") == [128, 512]
    with pytest.raises(BadInputError, match="--pp takes whole numbers"):
        parse_int_list("12x", "--pp")
    with pytest.raises(BadInputError, match="out of range"):
        parse_int_list("-1", "--tg")
    assert check_runtime("llama.cpp") == check_runtime("llamacpp") == "llama.cpp"
    with pytest.raises(BadInputError, match="unknown runtime 'vllm'"):
        check_runtime("vllm")


CT = namedtuple("CT", "user nice system idle iowait irq softirq steal guest guest_nice")


def _snap(wall, busy, steal, self_cpu=0.0, idle=0.0):
    return Snapshot(wall, CT(busy, 0, 0, idle, 0, 0, 0, steal, 0, 0), self_cpu, (0.1, 0.1, 0.1), None, None, 1 << 30)


def test_contention_counts_what_others_used(monkeypatch):
    monkeypatch.setattr("psutil.cpu_count", lambda logical=True: 2)
    before, after = _snap(0.0, 100.0, 1.0), _snap(10.0, 117.0, 1.5, self_cpu=0.5)
    c = contention(before, after, child_cpu_s=15.0)
    # 17 s of user time + 0.5 s stolen; 15.5 s were ours -> 1.5 s others over 20 CPU-seconds
    assert c["others_cpu_fraction"] == pytest.approx(0.075) and c["steal_fraction"] == pytest.approx(0.025)
    assert busy_warnings(before, after, c) == []
    c2 = contention(before, _snap(10.0, 125.0, 1.5), child_cpu_s=15.0)
    assert any("other processes used 50%" in w for w in busy_warnings(before, after, c2))


def _run() -> BenchRun:
    s = BenchSettings(threads=2, n_batch=2048, n_ubatch=512, flash_attn="auto", reps=2, warmup=True)
    r = TestResult(test="tg4", n_prompt=0, n_gen=4, n_depth=0, tokens_per_s_mean=100.0, tokens_per_s_std=10.0,
                   samples=[90.0, 110.0], samples_ns=[44444444, 36363636], tokens_per_s_median=100.0,
                   predicted_tokens_per_s=50.0, ratio_measured_to_predicted=2.0, flash_attn="on",
                   buffers=ContextBuffers(kv_cache_bytes=2**20, compute_bytes=2**21, output_bytes=0))
    return BenchRun(runtime="llama.cpp", model="m.gguf", model_path="/x/m.gguf", model_desc="llama 1M Q4_0", quant="Q4_0",
                    threads=2, settings=s, results=[r], memory=MemoryReport(peak_rss_bytes=3 * 2**20), load_s=0.1,
                    system={"cpu_model": "cpu"}, warnings=["busy"])


def test_renderers_carry_the_same_figures():
    run = _run()
    d = json.loads(R.to_json(run))
    assert d["results"][0]["samples"] == [90.0, 110.0] and set(d) >= {"runtime", "model", "threads", "results", "memory",
                                                                         "load_s", "system"}
    header, row = R.to_csv(run).splitlines()
    rec = dict(zip(header.split(","), row.split(",")))
    assert rec["test"] == "tg4" and rec["tokens_per_s_mean"] == "100.0" and rec["samples"] == "90.0;110.0"
    assert rec["ratio_measured_to_predicted"] == "2.0" and rec["flash_attn"] == "on"
    md = R.to_markdown(run)
    assert "| tg4 | 100.00 ± 10.00 | 100.00 | 50.00 | 2.00 | 1.00 | 2.00 |" in md and "**Warning:** busy" in md
    assert R.format_for_path("a/b.JSON") == "json" and R.format_for_path("x.txt") is None


def test_write_atomic_never_leaves_half_files(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    target.write_text("old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(RuntimeFailure, match="disk full"):  # one line for the user (exit 1), not a traceback
        write_atomic(str(target), "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
    monkeypatch.undo()
    write_atomic(str(target), "new")
    assert target.read_text() == "new"
    with pytest.raises(BadInputError, match="does not exist"):
        write_atomic(str(tmp_path / "nope" / "x.json"), "x")


def test_rapl_energy_with_counter_wrap(tmp_path):
    from slmplan.bench.rapl import Rapl

    assert Rapl(str(tmp_path)).read() is None  # nothing readable: energy is "not measured", never 0
    for name, uj in (("intel-rapl:0", 990_000_000), ("intel-rapl:0:0", 5), ("intel-rapl:1", 1_000_000)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "energy_uj").write_text(str(uj))
        (tmp_path / name / "max_energy_range_uj").write_text("1000000000")
    r = Rapl(str(tmp_path))
    assert len(r.zones) == 2  # packages only; the core sub-zone is part of package 0
    a = r.read()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("10000000")  # wrapped past 1e9
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("3500000")
    assert r.joules(a, r.read()) == pytest.approx(20.0 + 2.5)
