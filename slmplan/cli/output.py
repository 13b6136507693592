"""Printing helpers: JSON to stdout, rich tables to stdout, messages to stderr."""

from __future__ import annotations

import json
import math
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


def _finite(x: Any) -> Any:
    """NaN and infinity are not JSON: a non-finite number (only a crafted file's metadata) becomes null."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")


def gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.2f}"


def fmt_num(x: float | None, digits: int = 1) -> str:
    if x is None or x == 0:
        return "unknown"
    return f"{x:,.{digits}f}"


VERDICT_STYLE = {"fits": "green", "tight": "yellow", "does-not-fit": "red"}
