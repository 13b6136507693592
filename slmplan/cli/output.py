"""Printing helpers: JSON to stdout, rich tables to stdout, messages to stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

class _Out:
    """Results go to stdout; when piped (not a terminal) tables are laid out 200 columns wide so
    nothing is cut. Created per call so redirected/captured stdout is honoured."""

    def print(self, *args, **kwargs) -> None:
        width = None if sys.stdout.isatty() else 200
        Console(file=sys.stdout, width=width, soft_wrap=False).print(*args, **kwargs)


class _Err:
    def print(self, *args, **kwargs) -> None:
        Console(file=sys.stderr).print(*args, **kwargs)


out = _Out()
err = _Err()


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.2f}"


def fmt_num(x: float | None, digits: int = 1) -> str:
    if x is None or x == 0:
        return "unknown"
    return f"{x:,.{digits}f}"


VERDICT_STYLE = {"fits": "green", "tight": "yellow", "does-not-fit": "red"}
