"""Printing helpers: JSON to stdout, rich tables to stdout, messages to stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

out = Console(soft_wrap=False)
err = Console(stderr=True)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.2f}"


def fmt_num(x: float | None, digits: int = 1) -> str:
    if x is None or x == 0:
        return "unknown"
    return f"{x:,.{digits}f}"


VERDICT_STYLE = {"fits": "green", "tight": "yellow", "does-not-fit": "red"}
