import os
import sys
from pathlib import Path

import pytest

from slmplan.testmodels import gemma3_path, smollm2_path


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    """No test reads or writes the user's slmplan cache (local calibration, bandwidth)."""
    monkeypatch.setenv("SLMPLAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SLMPLAN_BANDWIDTH_GBS", "20")
    monkeypatch.delenv("SLMPLAN_DEBUG", raising=False)


@pytest.fixture(scope="session")
def smollm2() -> Path:
    return smollm2_path()


@pytest.fixture(scope="session")
def gemma3(tmp_path_factory) -> Path:
    os.environ.setdefault("SLMPLAN_CACHE_DIR", str(tmp_path_factory.mktemp("models")))
    return gemma3_path()


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the real console entry point in-process; returns (exit code, stdout, stderr)."""
    from slmplan.cli.main import run

    def invoke(*args: str):
        monkeypatch.setattr(sys, "argv", ["slmplan", *args])
        code = 0
        try:
            run()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        cap = capsys.readouterr()
        return code, cap.out, cap.err
    return invoke
