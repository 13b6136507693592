"""The Python API (slmplan.__all__), the README's example, and a start-up that stays light."""

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import slmplan
from slmplan.cli.app import flags_for

ROOT = Path(__file__).resolve().parent.parent


def _runs_without(code: str, modules: tuple[str, ...]) -> list[str]:
    probe = (f"{code}\nimport sys\n"
             f"print('LOADED:' + ','.join(m for m in {modules!r} if m in sys.modules), file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("LOADED:"), r.stderr
    return [m for m in last[len("LOADED:"):].split(",") if m]


def test_every_public_name_resolves_and_is_documented():
    for name in slmplan.__all__:
        obj = getattr(slmplan, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert (obj.__doc__ or "").strip(), f"slmplan.{name} has no docstring"
    errors = {"BadInputError", "GGUFError", "MissingExtraError", "RuntimeFailure", "SlmplanError", "__version__"}
    assert set(slmplan.__all__) == set(slmplan._LAZY) | errors
    assert slmplan._LAZY["run_benchmark"] == "slmplan.bench.api:run_benchmark"
    assert slmplan._LAZY["BenchRun"] == "slmplan.schema.bench:BenchRun"
    with pytest.raises(AttributeError):
        slmplan.no_such_name  # noqa: B018


def test_library_errors_name_the_parameter_and_the_cli_maps_them_to_flags():
    with pytest.raises(slmplan.BadInputError) as e:
        slmplan.Query(ctx=0).validate()
    assert str(e.value).startswith("ctx must be a positive number of tokens, got 0") and "--" not in e.value.one_line()
    assert flags_for(e.value.one_line(), e.value.params) == \
        "--ctx must be a positive number of tokens, got 0. Use e.g. --ctx 4096."
    with pytest.raises(slmplan.BadInputError) as e:
        slmplan.Query(n_prompt=-1).validate()
    assert flags_for(e.value.one_line(), e.value.params).endswith("Use e.g. --prompt-tokens 300 --gen-tokens 200.")


def test_flag_mapping_leaves_paths_and_longer_words_alone():
    text = "/data/out/top already exists; top=3 and force=True for out, topology stays"
    assert flags_for(text, ("out", "top", "force")) == \
        "/data/out/top already exists; --top 3 and --force for -o, topology stays"


def test_readme_python_example_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    m = re.search(r"## Use from Python\n.*?```python\n(.*?)```", readme, re.S)
    assert m, "README has no 'Use from Python' example"
    r = subprocess.run([sys.executable, "-c", m.group(1)], capture_output=True, text=True, cwd=tmp_path,
                       env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[0] in ("fits", "tight", "does-not-fit")
    assert "headroom" in lines[1]
    assert lines[-1] == "ctx must be a positive number of tokens, got 0"
    assert (tmp_path / "pixel8.md").read_text().startswith("#")


def test_import_slmplan_is_lazy():
    assert _runs_without("import slmplan", ("numpy", "pydantic", "gguf", "yaml")) == []


@pytest.mark.parametrize("args", [["--help"], ["catalog"], ["catalog", "--format", "json"], ["fit", "--help"]])
def test_help_and_catalog_do_not_import_numpy_or_a_runtime(args):
    code = f"import sys\nsys.argv = ['slmplan', *{args!r}]\nfrom slmplan.cli.main import run\ntry:\n    run()\nexcept SystemExit:\n    pass"
    heavy = ("numpy", "gguf", "llama_cpp", "onnxruntime", "onnxruntime_genai", "huggingface_hub", "matplotlib", "torch")
    if args == ["--help"]:  # needs typer only: no schema, no rich console (typer itself loads pydantic for a command's help)
        heavy += ("pydantic", "yaml", "rich.console")
    assert _runs_without(code, heavy) == []


def test_python_dash_m_slmplan():
    r = subprocess.run([sys.executable, "-m", "slmplan", "fit", "llama-3.2-1b", "--device", "pixel-8", "--quant", "Q4_K_M",
                        "--format", "csv"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()
    assert header.startswith("model,quant,device,ctx,verdict,memory.weights_bytes,") and row.startswith("llama-3.2-1b,Q4_K_M,pixel-8,4096,")
