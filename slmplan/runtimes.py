"""The on-device LLM runtimes by platform (data/runtimes.yaml, each fact with its source): read by the
report's deployment path and by the planner's --runtime npu notes."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

RUNTIMES_FILE = Path(__file__).resolve().parent / "data" / "runtimes.yaml"


@lru_cache(maxsize=1)
def runtimes() -> list[dict]:
    return yaml.safe_load(RUNTIMES_FILE.read_text())["runtimes"]
