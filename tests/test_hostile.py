"""Hostile and odd input (issue 16): crafted files, special files, odd environment, corrupt state.

Every case must end within a few seconds with one line ``Error: ...`` (exit 2 for bad input, 1 for
a runtime failure) and no traceback, or succeed without writing anything outside its place. Cases that
could hang (FIFOs, /dev/zero) run under an alarm, so a regression fails the test instead of blocking it.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from craft import array_of_arrays, f32, f64, gguf, nested, string, u32, u32_array  # noqa: E402

DATA = Path(__file__).parent / "data"
BENCH = DATA / "bench-smollm2-135m.json"
PROFILE = ("id: my-phone\nname: {name}\nkind: phone\nram_gb: 8\nmemory_budget_gb: 4\nmemory_bandwidth_gbs: 50\n"
           "cpu_cores: 8\ncpu_gflops: {gflops}\n")


class Hang(Exception):
    pass


@pytest.fixture
def run(cli):
    """``cli`` under a 30 s alarm: a hang becomes a failure, not a blocked test run."""
    def invoke(*args):
        def alarm(*_):
            raise Hang(f"slmplan {' '.join(map(str, args))} did not finish within 30 s")
        old = signal.signal(signal.SIGALRM, alarm)
        signal.alarm(30)
        try:
            return cli(*map(str, args))
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
    return invoke


def one_line_error(code, out, err, exit_code, needle):
    assert code == exit_code, (code, err)
    assert out == ""
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert needle in err, err


# ------------------------------------------------------------------------------ crafted GGUF values
CRAFTED = [
    # block_count as a float NaN: `v < 0` and `v > 2**40` are both False for NaN, then int(nan) raised
    ({"llama.block_count": f32("llama.block_count", float("nan"))}, "is not a sane count"),
    # block_count as infinity (float64)
    ({"llama.block_count": f64("llama.block_count", float("inf"))}, "is not a sane count"),
    # block_count as a fraction
    ({"llama.block_count": f32("llama.block_count", 2.5)}, "is not a sane count"),
    # block_count as an array of arrays: max() over ArrayValues raised TypeError
    ({"llama.block_count": array_of_arrays("llama.block_count")}, "is an array of ARRAY, not counts"),
    # general.file_type as infinity: int(inf) raised OverflowError
    ({"general.file_type": f32("general.file_type", float("inf"))}, "'general.file_type' is inf"),
    # general.file_type as an array: int(ArrayValue) raised TypeError
    ({"general.file_type": u32_array("general.file_type", [1, 2])}, "'general.file_type' is an array of UINT32"),
    # a metadata array nested 3000 deep: a 3000-frame RecursionError
    ({"x.deep": nested("x.deep", 3000)}, "nested more than 8 deep"),
    # general.license as a number: it reached the JSON output as a non-string
    ({"general.license": u32("general.license", 7)}, "'general.license' is 7, not a string"),
    # general.architecture as an array
    ({"general.architecture": u32_array("general.architecture", [1])}, "'general.architecture' is an array"),
    # the token list as a scalar: len() of an int raised TypeError
    ({"tokenizer.ggml.tokens": u32("tokenizer.ggml.tokens", 3)}, "'tokenizer.ggml.tokens' is 3, not an array"),
]


@pytest.mark.parametrize("override, needle", CRAFTED)
@pytest.mark.parametrize("command", [("inspect",), ("fit", "--device", "pixel-8"), ("inspect", "--format", "json")])
def test_crafted_gguf_values_are_one_line_errors(run, tmp_path, override, needle, command):
    p = gguf(tmp_path / "crafted.gguf", override)
    one_line_error(*run(command[0], p, *command[1:]), 2, needle)


# ------------------------------------------------------------------------------ terminal injection
NAMES = [
    # rich closing tag: MarkupError
    "[/]",
    # an unknown style tag: rich silently dropped "[beta]"
    "Phone [beta]",
    # a bold tag that would restyle the rest of the line
    "[bold red]x",
    # a trailing backslash escapes rich's next tag
    "back\\",
]


@pytest.mark.parametrize("name", NAMES)
def test_gguf_name_and_license_are_shown_literally(run, tmp_path, name):
    p = gguf(tmp_path / "m.gguf", {"general.name": string("general.name", name),
                                   "general.license": string("general.license", name)})
    code, out, err = run("inspect", p)
    assert code == 0, err
    assert out.count(name) >= 2, out  # the title and the license row


@pytest.mark.parametrize("name", NAMES)
def test_device_profile_name_is_shown_literally(run, tmp_path, name):
    prof = tmp_path / "dev.yaml"
    prof.write_text(PROFILE.format(name=json.dumps(name), gflops=100))
    for args in (("fit", "llama-3.2-1b"), ("plan",)):
        code, out, err = run(*args, "--device", prof)
        assert code == 0, err
        assert name in out, out


def test_escape_sequences_never_reach_the_terminal(run, tmp_path):
    evil = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x9b\u202eevil"  # OSC title, screen clear, colour, CSI (C1), RLO
    p = gguf(tmp_path / "m.gguf", {"general.name": string("general.name", evil)})
    prof = tmp_path / "dev.yaml"
    prof.write_text(PROFILE.format(name=json.dumps(evil), gflops=100))
    for args in (("inspect", p), ("fit", p, "--device", "pixel-8"), ("fit", "llama-3.2-1b", "--device", prof),
                 ("inspect", p, "--format", "json")):
        code, out, err = run(*args)
        assert code == 0, err
        for ch in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert ch not in out + err, (args, out)
    # the report's Markdown carries the device name too
    code, out, err = run("report", "--device", prof, "--models", "llama-3.2-1b")
    assert code == 0 and "\x1b" not in out and "\u202e" not in out


def test_control_characters_in_an_error_message_are_stripped(run, tmp_path):
    code, out, err = run("inspect", tmp_path / "\x1b[2Jmissing.gguf")
    one_line_error(code, out, err, 2, "no such file")
    assert "\x1b" not in err


# ------------------------------------------------------------------------------ special files
def _fifo(tmp_path, name):
    p = tmp_path / name
    os.mkfifo(p)
    return p


SPECIAL_READS = [
    # a FIFO as the model of inspect / fit / bench: open() blocked forever waiting for a writer
    (lambda t: ("inspect", _fifo(t, "m.gguf")), "is a FIFO (named pipe), not a .gguf file"),
    (lambda t: ("fit", _fifo(t, "m.gguf"), "--device", "pixel-8"), "is a FIFO"),
    (lambda t: ("bench", _fifo(t, "m.gguf")), "is a FIFO"),
    # a FIFO as --device and as --catalog
    (lambda t: ("fit", "llama-3.2-1b", "--device", _fifo(t, "d.yaml")), "is a FIFO"),
    (lambda t: ("plan", "--device", "pixel-8", "--catalog", _fifo(t, "c.yaml")), "is a FIFO"),
    # a FIFO as --bench
    (lambda t: ("report", "--device", "pixel-8", "--bench", _fifo(t, "b.json")), "is a FIFO"),
    # /dev/zero as a profile: read until memory ran out
    (lambda t: ("fit", "llama-3.2-1b", "--device", "/dev/zero"), "is a character device"),
    (lambda t: ("plan", "--device", "pixel-8", "--catalog", "/dev/zero"), "is a character device"),
    (lambda t: ("inspect", "/dev/zero"), "is a character device"),
    # a folder where a file is expected
    (lambda t: ("inspect", t), "is a directory"),
    (lambda t: ("fit", "llama-3.2-1b", "--device", t / "dir.yaml" if (t / "dir.yaml").mkdir() is None else ""),
     "is a directory"),
    # a symbolic link loop (ELOOP)
    (lambda t: ("inspect", _loop(t)), "Error"),
    # a name longer than the file system allows (ENAMETOOLONG), as a model path and as a catalog id
    (lambda t: ("inspect", t / ("a" * 300 + ".gguf")), "File name too long"),
    (lambda t: ("fit", "a" * 300, "--device", "pixel-8"), "unknown model"),
    # a profile of 2 MiB: was parsed for a minute
    (lambda t: ("fit", "llama-3.2-1b", "--device", _big_profile(t)), "more than any real one"),
]


def _loop(t):
    a = t / "loop.gguf"
    a.symlink_to(a)
    return a


def _big_profile(t):
    p = t / "big.yaml"
    p.write_text(PROFILE.format(name="big", gflops=100) + "#" * (2 << 20) + "\n")
    return p


@pytest.mark.parametrize("make, needle", SPECIAL_READS)
def test_special_files_are_refused_at_once(run, tmp_path, make, needle):
    t0 = time.monotonic()
    one_line_error(*run(*make(tmp_path)), 2, needle)
    assert time.monotonic() - t0 < 30


def test_fifo_as_model_path_inside_a_bench_json(run, tmp_path):
    """report reads the benchmarked file's header when it still exists: a FIFO there is skipped (the
    catalog id is used instead), not waited on."""
    d = json.loads(BENCH.read_text())
    d["model_path"] = str(_fifo(tmp_path, "m.gguf"))
    b = tmp_path / "b.json"
    b.write_text(json.dumps(d))
    code, out, err = run("report", "--device", "pixel-8", "--bench", b)
    assert code == 0, err
    assert "smollm2-135m" in out


# ------------------------------------------------------------------------------ numbers and sizes
PROFILE_NUMBERS = [
    # cpu_gflops infinite: accepted, then --format json printed Infinity (not JSON)
    (".inf", "cpu_gflops"),
    (".nan", "cpu_gflops"),
    # beyond any CPU (1 PFLOPS FP32)
    ("1e12", "less than or equal to 1000000"),
    ("-5", "greater than 0"),
]


@pytest.mark.parametrize("gflops, needle", PROFILE_NUMBERS)
def test_profile_numbers_are_bounded(run, tmp_path, gflops, needle):
    prof = tmp_path / "dev.yaml"
    prof.write_text(PROFILE.format(name="x", gflops=gflops))
    one_line_error(*run("fit", "llama-3.2-1b", "--device", prof, "--format", "json"), 2, needle)


CATALOG_ENTRY = """schema_version: 1
models:
- id: tiny
  name: Tiny
  family: t
  architecture: llama
  layers: {layers}
  hidden_size: 64
  intermediate_size: 128
  heads: 4
  kv_heads: 4
  head_dim: 16
  vocab_size: 1000
  context_length: 2048
  tied_embeddings: true
  license: MIT
  source: test
  variants:
  - {{quant: Q4_0, format: GGUF, bits_per_weight: {bpw}, source: test}}
"""

CATALOG_NUMBERS = [
    # 100 million layers: 48 s into a MemoryError while synthesizing the tensor list
    ("100000000", "4.5", "layers: Input should be less than or equal to 4096"),
    # a NaN bits per weight
    ("2", ".nan", "bits_per_weight"),
    ("2", ".inf", "bits_per_weight"),
]


@pytest.mark.parametrize("layers, bpw, needle", CATALOG_NUMBERS)
def test_catalog_numbers_are_bounded(run, tmp_path, layers, bpw, needle):
    cat = tmp_path / "cat.yaml"
    cat.write_text(CATALOG_ENTRY.format(layers=layers, bpw=bpw))
    t0 = time.monotonic()
    one_line_error(*run("fit", "tiny", "--device", "pixel-8", "--catalog", cat), 2, needle)
    assert time.monotonic() - t0 < 30


def test_json_output_never_holds_nan_or_infinity(run, tmp_path):
    p = gguf(tmp_path / "m.gguf", {"llama.rope.freq_base": f32("llama.rope.freq_base", float("nan")),
                                   "llama.rope.scale": f64("llama.rope.scale", float("-inf"))})
    code, out, err = run("inspect", p, "--format", "json")
    assert code == 0, err

    def refuse(c):
        raise AssertionError(f"{c} in JSON output")
    meta = json.loads(out, parse_constant=refuse)["metadata"]
    assert meta["llama.rope.freq_base"] is None and meta["llama.rope.scale"] is None


# ------------------------------------------------------------------------------ bench JSON for report
def _bench(tmp_path, **changes):
    d = json.loads(BENCH.read_text())
    for path, v in changes.items():
        node = d
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        node[keys[-1]] = v
    p = tmp_path / "b.json"
    p.write_text(json.dumps(d))  # json.dumps writes NaN/Infinity literals, which json.loads accepts
    return p


BENCH_CASES = [
    # negative speed
    ({"results__0__tokens_per_s_mean": -5.0}, (), "greater than or equal to 0"),
    # NaN speed (json.loads accepts the NaN literal)
    ({"results__0__tokens_per_s_mean": float("nan")}, (), "non-finite number at results.0.tokens_per_s_mean"),
    # an infinite sample
    ({"results__0__samples": [float("inf")]}, (), "non-finite number at results.0.samples.0"),
    # NaN in an optional figure: it reached the report's JSON as NaN
    ({"results__0__ratio_measured_to_predicted": float("nan")}, (), "at results.0.ratio_measured_to_predicted"),
    # a negative time to first token
    ({"ttft__ttft_s_median": -1.0}, (), "greater than or equal to 0"),
    # a bench of smollm2 given with --models of another model: was reported next to that model
    ({}, ("--models", "llama-3.2-1b"), "is not among --models llama-3.2-1b"),
]


@pytest.mark.parametrize("changes, extra, needle", BENCH_CASES)
def test_bad_bench_json_is_refused(run, tmp_path, changes, extra, needle):
    b = _bench(tmp_path, **changes)
    one_line_error(*run("report", "--device", "pixel-8", "--bench", b, *extra), 2, needle)


def test_bench_json_of_a_listed_model_is_accepted(run, tmp_path):
    code, out, err = run("report", "--device", "pixel-8", "--bench", BENCH, "--models", "smollm2-135m,llama-3.2-1b")
    assert code == 0, err


# ------------------------------------------------------------------------------ -o targets
def test_report_refuses_to_overwrite_its_own_input(run, tmp_path):
    b = tmp_path / "x.json"
    b.write_bytes(BENCH.read_bytes())
    before = b.read_bytes()
    one_line_error(*run("report", "--device", "pixel-8", "--bench", b, "-o", b), 2, "this command's input")
    assert b.read_bytes() == before
    # a hard link to the input is the same file too
    link = tmp_path / "link.json"
    os.link(b, link)
    one_line_error(*run("report", "--device", "pixel-8", "--bench", b, "-o", link), 2, "this command's input")
    # and so is a device profile given as --device (through a .md hard link, so the format is known)
    dev = tmp_path / "dev.yaml"
    dev.write_text(PROFILE.format(name="x", gflops=100))
    same = tmp_path / "same.md"
    os.link(dev, same)
    one_line_error(*run("report", "--device", dev, "-o", same), 2, "this command's input")
    assert dev.read_text().startswith("id: my-phone")


def test_model_given_as_output_is_refused_before_work():
    """bench MODEL.gguf -o MODEL.gguf turned a 98 MB model into JSON; the CLI passes the model as an
    input (integrator's wiring), here the library check itself."""
    from slmplan.errors import BadInputError
    from slmplan.fileio import check_writable_target, write_atomic
    from slmplan.testmodels import smollm2_path

    m = smollm2_path()
    with pytest.raises(BadInputError, match="this command's input"):
        check_writable_target(m, inputs=[m])
    with pytest.raises(BadInputError, match="this command's input"):
        write_atomic(m, "{}", inputs=[str(m)])


def _chardev(tmp_path):
    p = tmp_path / "null"
    try:
        os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own (root only)
    except (PermissionError, AttributeError, OSError):
        pytest.skip("the OS does not let this test make a device node")
    return p


def test_output_never_replaces_a_device_or_fifo(run, tmp_path):
    dev, fifo = _chardev(tmp_path), _fifo(tmp_path, "pipe")
    for target in (dev, fifo):
        md = tmp_path / (target.name + ".md")
        md.symlink_to(target)  # a known extension; the link leads to the device or FIFO
        one_line_error(*run("report", "--device", "pixel-8", "-o", md), 2, "slmplan replaces only regular files")
    assert stat.S_ISCHR(dev.stat().st_mode) and stat.S_ISFIFO(fifo.stat().st_mode)
    from slmplan.errors import BadInputError
    from slmplan.fileio import write_atomic

    for target, kind in ((dev, "character device"), (fifo, "FIFO")):  # named directly (bench -o, any writer)
        with pytest.raises(BadInputError, match=kind):
            write_atomic(target, "x")
    assert stat.S_ISCHR(dev.stat().st_mode) and stat.S_ISFIFO(fifo.stat().st_mode)


def test_output_through_a_symlink_writes_the_target(run, tmp_path):
    """Decision: a symbolic link is written through (as shell redirection and cp do); the link stays."""
    real = tmp_path / "real.md"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "link.md"
    link.symlink_to(real)
    code, _, err = run("report", "--device", "pixel-8", "--models", "llama-3.2-1b", "-o", link)
    assert code == 0, err
    assert link.is_symlink() and real.read_text().startswith("# On-device LLM feasibility")
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # an existing file keeps its mode


def test_new_output_files_get_the_usual_mode(run, tmp_path):
    old = os.umask(0o022)
    try:
        o = tmp_path / "r.md"
        code, _, err = run("report", "--device", "pixel-8", "--models", "llama-3.2-1b", "-o", o)
        assert code == 0, err
        assert stat.S_IMODE(o.stat().st_mode) == 0o644  # was 0600 (mkstemp's mode)
        os.umask(0o077)
        o2 = tmp_path / "r2.md"
        assert run("report", "--device", "pixel-8", "--models", "llama-3.2-1b", "-o", o2)[0] == 0
        assert stat.S_IMODE(o2.stat().st_mode) == 0o600
    finally:
        os.umask(old)


OUTPUT_PATHS = [
    # the folder is a file (ENOTDIR)
    (lambda t: (t / "f").write_text("x") and t / "f" / "r.md", "Not a directory"),
    # a folder as the output
    (lambda t: (t / "out.md").mkdir() or t / "out.md", "it is a folder"),
    # a name longer than the file system allows
    (lambda t: t / ("r" * 300 + ".md"), "File name too long"),
    # a symbolic link loop
    (lambda t: _loop_md(t), "Too many levels of symbolic links"),
]


def _loop_md(t):
    a = t / "loop.md"
    a.symlink_to(a)
    return a


@pytest.mark.parametrize("make, needle", OUTPUT_PATHS)
def test_bad_output_paths_are_refused_before_work(run, tmp_path, make, needle):
    one_line_error(*run("report", "--device", "pixel-8", "-o", make(tmp_path)), 2, needle)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_non_writable_folder_is_refused_before_work(run, tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        one_line_error(*run("report", "--device", "pixel-8", "-o", d / "r.md"), 2, "Permission denied")
    finally:
        d.chmod(0o755)


def test_no_space_left_is_a_runtime_failure(tmp_path, monkeypatch):
    """ENOSPC while writing: exit 1, the old file intact, no temporary left (no small tmpfs available:
    the write itself is made to fail)."""
    import errno

    from slmplan.errors import RuntimeFailure
    from slmplan.fileio import write_atomic

    t = tmp_path / "r.json"
    t.write_text("old")

    def full(*a):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(RuntimeFailure, match="No space left on device") as e:
        write_atomic(t, "new")
    assert e.value.exit_code == 1 and t.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


# ------------------------------------------------------------------------------ environment
ENV_CASES = [
    # not a number: float() raised ValueError
    ("SLMPLAN_BANDWIDTH_GBS", "abc", ("fit", "llama-3.2-1b", "--device", "local"), "SLMPLAN_BANDWIDTH_GBS='abc'"),
    # infinite, NaN, negative, or so small it rounds to 0: pydantic ValidationError tracebacks
    ("SLMPLAN_BANDWIDTH_GBS", "inf", ("fit", "llama-3.2-1b", "--device", "local"), "not a memory bandwidth"),
    ("SLMPLAN_BANDWIDTH_GBS", "nan", ("fit", "llama-3.2-1b", "--device", "local"), "not a memory bandwidth"),
    ("SLMPLAN_BANDWIDTH_GBS", "-3", ("plan", "--device", "local"), "not a memory bandwidth"),
    ("SLMPLAN_BANDWIDTH_GBS", "0.01", ("fit", "llama-3.2-1b", "--device", "local"), "not a memory bandwidth"),
    # the Hub timeout
    ("SLMPLAN_HUB_TIMEOUT", "soon", ("hub", "list", "a/b"), "SLMPLAN_HUB_TIMEOUT='soon'"),
    ("SLMPLAN_HUB_TIMEOUT", "0", ("hub", "list", "a/b"), "SLMPLAN_HUB_TIMEOUT='0'"),
]


@pytest.mark.parametrize("var, value, args, needle", ENV_CASES)
def test_odd_environment_values(run, monkeypatch, var, value, args, needle):
    if var == "SLMPLAN_HUB_TIMEOUT":
        pytest.importorskip("huggingface_hub")
    from slmplan.localdevice import detect_local

    detect_local.cache_clear()
    monkeypatch.setenv(var, value)
    one_line_error(*run(*args), 2, needle)
    detect_local.cache_clear()


def test_cache_dir_that_is_a_file(run, tmp_path, monkeypatch):
    f = tmp_path / "cachefile"
    f.write_text("x")
    monkeypatch.setenv("SLMPLAN_CACHE_DIR", str(f))
    monkeypatch.delenv("SLMPLAN_BANDWIDTH_GBS")
    from slmplan.localdevice import detect_local

    detect_local.cache_clear()
    one_line_error(*run("fit", "llama-3.2-1b", "--device", "local"), 2, "is not a folder")
    detect_local.cache_clear()


def test_cache_dir_with_a_name_too_long(run, monkeypatch):
    monkeypatch.setenv("SLMPLAN_CACHE_DIR", "/tmp/" + "c" * 300)
    from slmplan.localdevice import detect_local

    detect_local.cache_clear()
    one_line_error(*run("fit", "llama-3.2-1b", "--device", "local"), 2, "cannot be used: File name too long")
    detect_local.cache_clear()


def _unwritable_folder() -> Path:
    """A folder not even root may create files in (/sys), else skip."""
    import tempfile

    d = Path("/sys")
    try:
        fd, p = tempfile.mkstemp(dir=d)
    except OSError:
        return d
    os.close(fd)
    os.unlink(p)
    pytest.skip("no folder here refuses new files")


@pytest.mark.parametrize("args", [("report", "--device", "pixel-8"), ("bench", "smollm2-135m")])
def test_a_folder_that_refuses_files_is_found_before_work(run, args):
    """bench found it only after the whole benchmark ran, and the results were lost."""
    t0 = time.monotonic()
    one_line_error(*run(*args, "-o", _unwritable_folder() / "out.json"), 2, "cannot write")
    assert time.monotonic() - t0 < 30


def test_debug_zero_means_off(run, tmp_path, monkeypatch):
    monkeypatch.setenv("SLMPLAN_DEBUG", "0")
    one_line_error(*run("inspect", tmp_path / "nope.gguf"), 2, "no such file")


# ------------------------------------------------------------------------------ corrupt state
BANDWIDTH_CACHES = [
    b"{not json",  # cut off by a full disk
    b"[1, 2]",  # not an object: .get() raised AttributeError
    b'{"key": "k", "gbs": "fast", "when": "x"}',  # float("fast") raised
    b'{"key": "k", "gbs": Infinity, "when": "x"}',  # json.loads accepts Infinity: DeviceProfile raised
    b'{"key": "k", "gbs": -1, "when": "x"}',
    b"\xff\xfe\x00",  # not UTF-8
]


@pytest.mark.parametrize("content", BANDWIDTH_CACHES)
def test_corrupt_bandwidth_cache_is_set_aside_and_remeasured(run, tmp_path, monkeypatch, content):
    cache = Path(os.environ["SLMPLAN_CACHE_DIR"])
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "local_bandwidth.json").write_bytes(content)
    monkeypatch.delenv("SLMPLAN_BANDWIDTH_GBS")
    from slmplan import localdevice

    monkeypatch.setattr(localdevice, "measure_bandwidth_gbs", lambda: 12.5)  # the real one takes a second
    localdevice.detect_local.cache_clear()
    code, out, err = run("devices", "--local", "--format", "json")
    localdevice.detect_local.cache_clear()
    assert code == 0, err
    assert json.loads(out)["memory_bandwidth_gbs"] == 12.5
    assert err.count("Warning: ") == 1 and "local_bandwidth.json is corrupt" in err
    assert (cache / "local_bandwidth.json.corrupt").read_bytes() == content
    assert json.loads((cache / "local_bandwidth.json").read_text())["gbs"] == 12.5  # rebuilt


@pytest.mark.parametrize("content", [
    "[1]",  # not an object
    '{"method": "x", "decode": {"a": NaN}}',  # NaN constants, and not a calibration block
    '{"classes": 5}',  # the speed-model file of older versions
    "{cut",
])
def test_corrupt_local_calibration_falls_back_to_the_shipped_model(run, tmp_path, monkeypatch, content):
    from slmplan.calibration_store import local_calibration_path

    p = local_calibration_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(content)
    from slmplan.localdevice import detect_local

    detect_local.cache_clear()
    code, out, err = run("fit", "llama-3.2-1b", "--device", "local", "--format", "json")
    detect_local.cache_clear()
    assert code == 0, err
    assert "local_calibration.json is corrupt" in err and not p.exists()
    assert all(r["speed"]["method"].startswith("estimate") for r in json.loads(out))


def test_hub_cache_key_check():
    """Only well-formed hashes name a cache folder; the path stays inside the cache."""
    from slmplan.errors import RuntimeFailure
    from slmplan.hub import HfPath, _cache_file
    from slmplan.hubguard import content_key, safe_name

    ok = "a" * 64
    assert content_key(ok, None, "s") == ok and content_key(None, "b" * 40, "s") == "b" * 40
    assert content_key(f'W/"{ok.upper()}"', None, "s") == ok  # the ETag forms
    for bad in ("../../../../elsewhere", "/etc", "a" * 63, "g" * 64, "", "..", "a" * 64 + "/x"):
        with pytest.raises(RuntimeFailure, match="malformed content hash"):
            content_key(bad, None, "s")
    for s in ("..", ".", "a/../../b", "x" * 300, "\x1b[2J", "名前.gguf"):
        n = safe_name(s)
        assert "/" not in n and n not in (".", "..") and len(n) <= 120
    f = _cache_file(HfPath("owner/..", "../../x.gguf"), ok)
    from slmplan.localdevice import cache_dir

    assert f.resolve().is_relative_to((cache_dir() / "hub-headers").resolve())


# ------------------------------------------------------------------------------ the Hub
def slm(endpoint, tmp_path, *args, timeout_s="1", extra_env=None):
    """A fresh process, so huggingface_hub reads HF_ENDPOINT and friends as it does for a user."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1",
               SLMPLAN_CACHE_DIR=str(tmp_path / "slm"), SLMPLAN_HUB_TIMEOUT=timeout_s)
    env.update(extra_env or {})
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "slmplan.cli.main", *map(str, args)], capture_output=True, text=True,
                       env=env, timeout=120, cwd=tmp_path)
    return r.returncode, r.stdout, r.stderr, time.monotonic() - t0


@pytest.fixture
def silent_server():
    """Accepts connections and never answers (a stuck proxy, a dead mirror)."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held, stop = [], threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass
    th = threading.Thread(target=accept, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    th.join()
    for c in held:
        c.close()
    srv.close()


@pytest.mark.parametrize("args", [
    ("inspect", "hf://owner/repo/model.gguf"),  # gave up after ~14 s
    ("hub", "list", "owner/repo"),  # waited forever
    ("hub", "list", "owner/repo", "--device", "pixel-8"),
    ("pull", "smollm2-360m"),  # waited forever
    ("fit", "hf://owner/repo/model.gguf", "--device", "pixel-8"),
])
def test_a_hub_that_never_answers_times_out(silent_server, tmp_path, args):
    pytest.importorskip("huggingface_hub")
    code, out, err, took = slm(silent_server, tmp_path, *args)
    assert code == 1 and out == "", err
    assert err.startswith("Error: ") and err.count("\n") == 1 and "the Hub did not answer within 1 s" in err, err
    assert took < 60  # ~1 s of waiting; generous for a loaded machine


@pytest.fixture
def hub_server(tmp_path):
    pytest.importorskip("huggingface_hub")
    from hubserver import HubServer, HubState

    st = HubState()
    with HubServer(st) as srv:
        srv.state = st
        yield srv


@pytest.mark.parametrize("oid", ["../../../../elsewhere", "/tmp/slmplan-hostile-abs", "..", "a" * 63])
def test_a_hostile_content_hash_writes_nothing_outside_the_cache(hub_server, tmp_path, oid):
    from hubserver import Repo

    m = gguf(tmp_path / "m.gguf")
    hub_server.state.repos["owner/repo"] = Repo({"m.gguf": m}, oid=oid)
    before = set(tmp_path.parent.iterdir())
    code, out, err, _ = slm(hub_server.url, tmp_path, "inspect", "hf://owner/repo/m.gguf")
    assert code == 1 and "malformed content hash" in err and err.count("\n") == 1, err
    assert set(tmp_path.parent.iterdir()) == before  # nothing next to the test folder
    assert not Path("/tmp/slmplan-hostile-abs").exists()
    headers = tmp_path / "slm" / "hub-headers"
    assert not headers.exists() or not any(p.is_file() for p in headers.rglob("*"))


def test_a_hostile_etag_on_pull_writes_nothing_outside_the_hf_cache(hub_server, tmp_path):
    """pull goes through huggingface_hub's own download, which names blobs after the ETag."""
    from hubserver import Repo

    m = gguf(tmp_path / "m.gguf")
    hub_server.state.repos["bartowski/SmolLM2-360M-Instruct-GGUF"] = Repo(
        {"SmolLM2-360M-Instruct-Q4_K_M.gguf": m}, oid="../../../../../elsewhere")
    before = set(tmp_path.parent.iterdir())
    code, out, err, _ = slm(hub_server.url, tmp_path, "pull", "smollm2-360m")
    # huggingface_hub 2.4 wrote the blob to <tmp_path>/../elsewhere here, and pull exited 0
    assert code == 1 and err.startswith("Error: ") and err.count("\n") == 1, (code, err)
    assert "malformed content hash" in err
    assert set(tmp_path.parent.iterdir()) == before
    assert not list(tmp_path.parent.parent.glob("elsewhere*"))


def test_a_truncated_header_cache_entry_is_rebuilt(hub_server, tmp_path):
    from hubserver import Repo

    m = gguf(tmp_path / "m.gguf")
    hub_server.state.repos["owner/repo"] = Repo({"m.gguf": m})
    code, out, err, _ = slm(hub_server.url, tmp_path, "inspect", "hf://owner/repo/m.gguf", "--format", "json")
    assert code == 0, err
    (binf,) = (tmp_path / "slm" / "hub-headers").rglob("*.bin")
    good = binf.read_bytes()
    for cut in (binf, binf.with_suffix(".json")):
        cut.write_bytes(cut.read_bytes()[:10])  # a full disk, a killed process
        code, out2, err, _ = slm(hub_server.url, tmp_path, "inspect", "hf://owner/repo/m.gguf", "--format", "json")
        assert code == 0, err  # was "could not reach the Hub" (a JSONDecodeError), forever
        assert "is corrupt" in err and "it will be rebuilt" in err
        assert json.loads(out2)["layers"] == 2 and binf.read_bytes() == good
        # and offline, a corrupt entry says it is not cached instead of failing to parse
    binf.write_bytes(good[:10])
    import subprocess

    env = dict(os.environ, HF_HUB_OFFLINE="1", SLMPLAN_CACHE_DIR=str(tmp_path / "slm"), HF_HOME=str(tmp_path / "hf"))
    r = subprocess.run([sys.executable, "-m", "slmplan.cli.main", "inspect", "hf://owner/repo/m.gguf"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "not available offline" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("override, needle", CRAFTED[:1] + CRAFTED[3:7])
def test_crafted_gguf_through_the_hub(hub_server, tmp_path, override, needle):
    from hubserver import Repo

    m = gguf(tmp_path / "m-Q4_0.gguf", override)
    hub_server.state.repos["owner/repo"] = Repo({"m-Q4_0.gguf": m})
    for args in (("inspect", "hf://owner/repo/m-Q4_0.gguf"), ("hub", "list", "owner/repo", "--device", "pixel-8")):
        code, out, err, _ = slm(hub_server.url, tmp_path, *args)
        assert code == 2 and out == "" and err.startswith("Error: ") and err.count("\n") == 1, err
        assert needle in err


def test_hub_file_names_are_shown_literally(hub_server, tmp_path):
    from hubserver import Repo

    m = gguf(tmp_path / "m.gguf")
    hub_server.state.repos["owner/repo"] = Repo({"x[/]y-Q4_0.gguf": m, "Phone [beta]-Q8_0.gguf": m})
    code, out, err, _ = slm(hub_server.url, tmp_path, "hub", "list", "owner/repo")
    assert code == 0, err
    assert "x[/]y-Q4_0.gguf" in out and "Phone [beta]-Q8_0.gguf" in out


def test_an_unsafe_file_name_in_the_listing_is_not_downloaded(hub_server, tmp_path):
    from hubserver import Repo

    m = gguf(tmp_path / "m.gguf")
    hub_server.state.repos["bartowski/SmolLM2-360M-Instruct-GGUF"] = Repo({"../../evil-Q4_K_M.gguf": m})
    code, out, err, _ = slm(hub_server.url, tmp_path, "pull", "smollm2-360m")
    assert code == 1 and "unsafe file name" in err and err.count("\n") == 1, err
    assert not list(tmp_path.rglob("evil*")) and not list(tmp_path.parent.glob("evil*"))


def test_a_calibration_that_cannot_be_stored_is_a_warning(tmp_path, capsys, monkeypatch):
    """After a whole benchmark, an unwritable cache must not lose the results (was a traceback)."""
    import slmplan.bench.calibrate as BC
    from slmplan.schema.calibration import DeviceCalibration

    f = tmp_path / "file"
    f.write_text("x")
    monkeypatch.setattr(BC, "local_calibration_path", lambda: f / "sub" / "local_calibration.json")
    BC._store(DeviceCalibration(method="m", files=["f"], measurements=1, models=["m"], date="d", backend="cpu",
                                predictor="p"))
    err = capsys.readouterr().err
    assert err.startswith("Warning: could not store the calibration") and err.count("\n") == 1


@pytest.mark.parametrize("env, args, needle", [
    # huggingface_hub's own int() of its variables raised at import
    ({"HF_HUB_ETAG_TIMEOUT": "abc"}, ("hub", "list", "owner/repo"), "an HF_* environment variable has a value"),
    # repo ids huggingface_hub refuses: was "could not reach the Hub"
    ({}, ("hub", "list", "owner/.."), "not a valid repository id"),
    ({}, ("inspect", "hf://own er/re po/x.gguf"), "not a valid repository id"),
])
def test_odd_hub_input_is_bad_input(silent_server, tmp_path, env, args, needle):
    pytest.importorskip("huggingface_hub")
    code, out, err, _ = slm(silent_server, tmp_path, *args, extra_env=env)
    assert code == 2 and out == "" and err.startswith("Error: ") and err.count("\n") == 1, err
    assert needle in err


def test_a_listed_name_with_escape_sequences_is_not_downloaded(hub_server, tmp_path):
    """huggingface_hub's progress bar would print it raw to the terminal."""
    from hubserver import Repo

    m = gguf(tmp_path / "m.gguf")
    hub_server.state.repos["bartowski/SmolLM2-360M-Instruct-GGUF"] = Repo({"x\x1b]0;owned\x07-Q4_K_M.gguf": m})
    code, out, err, _ = slm(hub_server.url, tmp_path, "pull", "smollm2-360m")
    assert code == 1 and "unsafe file name" in err and "\x1b" not in err, err
