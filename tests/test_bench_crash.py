"""A benchmark child that dies: named (signal, step, llama.cpp's last line), survived where safe.

llama.cpp's AMX path dies with SIGILL on some Intel Xeon VMs (the CPU reports AMX, the hypervisor
does not fully enable it). These tests make the child die the same way on any CPU: a wrapper
around the real worker kills itself with the signal while repacking is on, after writing the line
llama.cpp logs there, and runs the real worker otherwise.
"""

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import slmplan
from slmplan.bench import crash, runner

TINY = ("--pp", "32", "--tg", "4", "--reps", "2", "--no-ttft", "--threads", "1")
PKG = str(Path(slmplan.__file__).resolve().parent.parent)

WRAPPER = textwrap.dedent('''
    import io, json, os, signal, sys
    sys.path.insert(0, {pkg!r})
    data = sys.stdin.read()
    spec = json.loads(data)
    mode = {mode!r}
    if mode == "sigill-when-repack" and spec["settings"]["repack"] or mode == "sigill-always":
        emit = lambda **ev: (sys.stdout.write(json.dumps(ev) + "\\n"), sys.stdout.flush())
        emit(event="step", step="loading")
        sys.stderr.write("llama.cpp| load_tensors:   AMX model buffer size =    95.34 MiB\\n")
        sys.stderr.write("llama.cpp| ........\\n")
        sys.stderr.flush()
        emit(event="loaded", load_s=0.1, desc="fake", model_size=1, n_params=1, buffers={{}}, memory={{}}, system={{}})
        emit(event="start", test="pp32")
        emit(event="step", step="timed", test="pp32")
        os.kill(os.getpid(), signal.SIGILL)
    if mode == "segv-when-repack" and spec["settings"]["repack"]:
        # what llama.cpp's AMX matmul does on a Sapphire Rapids KVM guest: the model loads with an AMX
        # copy, then the first prompt batch dies from SIGSEGV
        emit = lambda **ev: (sys.stdout.write(json.dumps(ev) + "\\n"), sys.stdout.flush())
        emit(event="step", step="loading")
        emit(event="loaded", load_s=0.1, desc="fake", model_size=1, n_params=1,
             buffers={{"CPU_Mapped model": 96576000.0, "AMX model": 99971236.0}}, memory={{}}, system={{}})
        emit(event="start", test="pp32")
        emit(event="step", step="warmup", test="pp32")
        sys.stderr.write("llama.cpp| set_n_threads: n_threads = 1, n_threads_batch = 1\\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGSEGV)
    if mode == "segv-in-second-test":
        from slmplan.bench.backends import llama_cpp as B
        real = B.LlamaCppBackend.run_test
        calls = []
        def run_test(self, *a, **k):
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGSEGV)
            return real(self, *a, **k)
        B.LlamaCppBackend.run_test = run_test
    sys.stdin = io.StringIO(data)
    from slmplan.bench.worker import main
    sys.exit(main())
''')


@pytest.fixture
def crashing_child(monkeypatch, tmp_path):
    def use(mode):
        script = tmp_path / "wrapper.py"
        script.write_text(WRAPPER.format(pkg=PKG, mode=mode))
        monkeypatch.setattr(runner, "worker_argv", lambda: [sys.executable, str(script)])
    return use


pytest.importorskip("llama_cpp", reason="needs the 'llama' extra (llama-cpp-python)")


@pytest.mark.runtime
def test_sigill_with_repack_falls_back_and_says_so(cli, smollm2, crashing_child, tmp_path):
    crashing_child("sigill-when-repack")
    out_json = tmp_path / "b.json"
    code, out, err = cli("bench", str(smollm2), *TINY, "--format", "json", "-o", str(out_json))
    assert code == 0, err
    d = json.loads(out)
    assert d == json.loads(out_json.read_text())
    s = d["settings"]
    assert s["repack"] is False
    assert "SIGILL (illegal instruction) during pp32 (timed run)" in s["repack_reason"]
    assert "AMX model buffer size" in s["repack_reason"] and "--repack 0" in s["repack_reason"]
    # the second run's samples are kept, the first run's are not mixed in
    assert [r["test"] for r in d["results"]] == ["pp32", "tg4"]
    assert all(len(r["samples"]) == 2 and r["complete"] for r in d["results"])
    assert [(a["repack"], a["samples_kept"]) for a in d["attempts"]] == [(True, False), (False, True)]
    assert d["failure"] is None and d["missing_tests"] == []
    assert any("not llama.cpp's default configuration" in w for w in d["warnings"])
    assert "Warning: not llama.cpp's default configuration" in err
    # the memory check compares like with like: no repacked copy predicted for a run without one
    assert d["memory"]["predicted_repack_bytes"] == 0 and d["memory"]["weights_repacked_bytes"] == 0


@pytest.mark.runtime
def test_segfault_in_repacked_kernels_falls_back(cli, gemma3, crashing_child, tmp_path):
    crashing_child("segv-when-repack")
    code, out, err = cli("bench", str(gemma3), *TINY, "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["settings"]["repack"] is False
    assert "SIGSEGV (segmentation fault) during pp32 (warmup)" in d["settings"]["repack_reason"]
    assert [(a["repack"], a["samples_kept"]) for a in d["attempts"]] == [(True, False), (False, True)]
    assert all(r["complete"] for r in d["results"])
    # the prediction is for what was measured: Gemma's Q4_K weights without the repacked prompt kernels
    from slmplan.bench.predict import make_predictor
    from slmplan.gguf import read_gguf
    from slmplan.localdevice import detect_local
    from slmplan.model import facts_from_gguf

    facts = facts_from_gguf(read_gguf(str(gemma3)))
    off, on = (make_predictor(facts, "Q4_K_M", detect_local(), 1, repack=r).tokens_per_s(32, 0, 0) for r in (False, True))
    assert off < on
    pp = next(r for r in d["results"] if r["test"] == "pp32")
    assert pp["predicted_tokens_per_s"] == pytest.approx(off, rel=1e-3)


@pytest.mark.runtime
def test_a_repack_crash_is_remembered_for_this_machine(cli, smollm2, crashing_child, tmp_path):
    from slmplan import localdevice

    def fit_notes(*extra):
        code, out, err = cli("fit", "smollm2-135m", "--device", "local", "--format", "json", *extra)
        assert code == 0, err
        return " ".join(n for r in json.loads(out) for n in r["memory"]["notes"])

    assert localdevice.repack_crash() is None and "crashed" not in fit_notes()
    crashing_child("segv-when-repack")
    code, out, err = cli("bench", str(smollm2), *TINY)
    assert code == 0, err
    crash = localdevice.repack_crash()
    assert crash["what"] == "died from SIGSEGV (segmentation fault) during pp32 (warmup)"
    note = fit_notes()
    assert "llama.cpp crashed with its repacked CPU weights on (died from SIGSEGV" in note and "--repack 0" in note
    assert "crashed" not in fit_notes("--repack", "0")  # planned for repacking off: nothing to warn of
    code, out, err = cli("devices", "--local", "--format", "json")
    assert code == 0 and json.loads(out)["llama_cpp_repack_crash"]["what"] == crash["what"]
    # a record of another llama.cpp build or CPU does not apply (an upgrade may have fixed it)
    path = localdevice.cache_dir() / localdevice.REPACK_CRASH_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "key": "0.0.1|another CPU"}))
    assert localdevice.repack_crash() is None and "crashed" not in fit_notes()


@pytest.mark.runtime
def test_a_crash_that_repacking_off_does_not_fix_is_not_remembered(cli, smollm2, crashing_child):
    from slmplan import localdevice

    crashing_child("sigill-always")
    code, out, err = cli("bench", str(smollm2), *TINY)
    assert code == 1 and "failed with repacking on (the benchmark process stopped unexpectedly: it died from SIGILL" in err
    assert "and with repacking off: the benchmark process stopped unexpectedly: it died from SIGILL" in err
    assert localdevice.repack_crash() is None


def _attempt_state(signal_name, buffers, repack=True, loaded=True, done=(), interrupted=False):
    st = runner._Attempt(repack=repack)
    st.loaded = {"buffers": buffers} if loaded else None
    st.exit = crash.ChildExit(-1, signal_name, "it died")
    st.done = {t: {} for t in done}
    specs = [runner.TestSpec(32, 0), runner.TestSpec(32, 4), runner.TestSpec(0, 4, 64), runner.TestSpec(0, 4)]
    st.batched = runner.batched_tests([{"name": t.name, "n_prompt": t.n_prompt, "n_gen": t.n_gen, "n_depth": t.n_depth}
                                       for t in specs])
    st.interrupted = interrupted
    return st


def test_which_crashes_are_retried_after_a_finished_test_or_ctrl_c():
    amx = {"CPU_Mapped model": 1.0, "AMX model": 2.0}
    assert runner._repacked_kernels_crashed(_attempt_state("SIGILL", amx, done=["pp32"]))  # as before: any time
    # a prompt batch already ran through the repacked kernels: something else crashed, keep the finished test
    for done in (["pp32"], ["pp32+tg4"], ["tg4 @ d64"], ["tg4", "ttft"]):
        assert not runner._repacked_kernels_crashed(_attempt_state("SIGSEGV", amx, done=done))
    # generation alone does not run the batched kernels the AMX crash is in (then the depth fill or a pp test dies)
    assert runner._repacked_kernels_crashed(_attempt_state("SIGSEGV", amx, done=["tg4"]))
    assert not runner._repacked_kernels_crashed(_attempt_state("SIGSEGV", amx, interrupted=True))
    assert not runner._repacked_kernels_crashed(_attempt_state("SIGILL", amx, repack=False))


@pytest.mark.parametrize("sig, buffers, repack, loaded, retry", [
    ("SIGILL", {}, True, True, True),  # an illegal instruction with repacking on: always
    ("SIGSEGV", {"CPU_Mapped model": 1.0, "AMX model": 2.0}, True, True, True),
    ("SIGBUS", {"CPU_REPACK model": 2.0}, True, True, True),
    ("SIGSEGV", {}, True, False, True),  # died while loading (the copy is made then)
    ("SIGSEGV", {"CPU_Mapped model": 1.0, "CPU KV": 1.0}, True, True, False),  # no repacked copy: not its kernels
    ("SIGSEGV", {"AMX model": 2.0}, False, True, False),  # repacking was already off
    ("SIGKILL", {"AMX model": 2.0}, True, True, False),  # out of memory: repacking off would not help
    ("SIGABRT", {"AMX model": 2.0}, True, True, False),  # llama.cpp's own assertion
])
def test_which_crashes_are_retried_without_repacking(sig, buffers, repack, loaded, retry):
    assert runner._repacked_kernels_crashed(_attempt_state(sig, buffers, repack, loaded)) is retry


@pytest.mark.runtime
def test_sigill_fallback_is_shown_in_the_table(cli, smollm2, crashing_child):
    crashing_child("sigill-when-repack")
    code, out, err = cli("bench", str(smollm2), *TINY)
    assert code == 0, err
    flat = " ".join(out.split())  # rich wraps the title and caption at the table's width
    assert "repack OFF" in flat and "Warning: not llama.cpp's default configuration" in flat


@pytest.mark.runtime
@pytest.mark.parametrize("args", [("--repack", "0"), ("--repack", "1")])
def test_sigill_is_reported_not_retried_when_repack_is_set(cli, smollm2, crashing_child, args):
    crashing_child("sigill-always")
    code, out, err = cli("bench", str(smollm2), *TINY, *args)
    assert code == 1 and out == ""
    line = err.strip().splitlines()[-1]
    assert line.startswith("Error: llama.cpp benchmark failed: the benchmark process stopped unexpectedly: "
                           "it died from SIGILL (illegal instruction) during pp32 (timed run); last llama.cpp message: "
                           "'load_tensors: AMX model buffer size = 95.34 MiB'"), line
    assert ("rerun with --repack 0" in line) == (args[1] == "1")
    assert "Traceback" not in err


@pytest.mark.runtime
def test_crash_after_the_first_test_keeps_it_and_exits_1(cli, smollm2, crashing_child, tmp_path):
    crashing_child("segv-in-second-test")
    out_json = tmp_path / "b.json"
    # --repack 0: with repacking on, a crash on a CPU where llama.cpp makes an AMX copy is retried
    code, out, err = cli("bench", str(smollm2), *TINY, "--repack", "0", "--format", "json", "-o", str(out_json))
    assert code == 1
    d = json.loads(out)
    assert [r["test"] for r in d["results"]] == ["pp32"] and len(d["results"][0]["samples"]) == 2
    assert "SIGSEGV (segmentation fault) during tg4" in d["failure"]
    assert [m["test"] for m in d["missing_tests"]] == ["tg4"]
    assert json.loads(out_json.read_text())["missing_tests"] == d["missing_tests"]
    assert "Error: llama.cpp benchmark failed:" in err and "missing: tg4" in err
    assert d["attempts"] == [{"repack": False, "outcome": d["failure"], "samples_kept": True}]


def test_child_imports_the_parents_slmplan(tmp_path):
    """Started from inside another checkout, the child still runs the parent's code."""
    fake = tmp_path / "slmplan"
    (fake / "bench").mkdir(parents=True)
    (fake / "__init__.py").write_text("raise SystemExit('imported the wrong slmplan')\n")
    (fake / "bench" / "__init__.py").write_text("")
    spec = {"runtime": "no-such-runtime", "model": "x", "tests": [], "settings": {}, "reps": 1, "warmup": False,
            "use_mmap": True, "ttft": None}
    r = subprocess.run(runner.worker_argv(), input=json.dumps(spec), capture_output=True, text=True, cwd=tmp_path,
                       timeout=60)
    assert "wrong slmplan" not in r.stderr + r.stdout
    events = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    assert events[-1]["event"] == "error" and "no-such-runtime" in events[-1]["message"]


@pytest.mark.parametrize("rc, before, after, text", [
    (-signal.SIGILL, None, None, "it died from SIGILL (illegal instruction)"),
    (-signal.SIGSEGV, None, None, "it died from SIGSEGV (segmentation fault)"),
    (-signal.SIGBUS, None, None, "it died from SIGBUS (bus error)"),
    (-signal.SIGKILL, 3, 4, "it was killed by the out-of-memory killer (SIGKILL)"),  # the cgroup counted a kill
    (-signal.SIGKILL, 3, 3, "it was killed (SIGKILL; most often the out-of-memory killer)"),
    (3, None, None, "it exited with code 3 before finishing"),
])
def test_exit_descriptions(rc, before, after, text):
    from slmplan.bench.crash import describe_exit

    assert describe_exit(rc, before, after).description == text


def test_ctrl_c_during_the_rerun_records_no_crash(monkeypatch, smollm2):
    """Only a rerun without repacking that runs through shows the repacked kernels were the cause."""
    from slmplan import localdevice
    from slmplan.devices import get_device
    from slmplan.schema.bench import BenchSettings

    first = _attempt_state("SIGSEGV", {"AMX model": 2.0})
    first.step = "pp32 (warmup)"
    second = runner._Attempt(repack=False)
    second.interrupted = True
    second.done = {"pp32": {}}
    states = iter([first, second])
    monkeypatch.setattr(runner, "_attempt", lambda spec, on_event: next(states))
    run = runner.run_child_benchmark("smollm2-135m", str(smollm2), None, [runner.TestSpec(32, 0)],
                                     BenchSettings(threads=1, n_batch=512, n_ubatch=512, flash_attn="auto", reps=1,
                                                   warmup=False), get_device("pixel-8"))
    assert run.interrupted and run.settings.repack is False
    assert localdevice.repack_crash() is None
