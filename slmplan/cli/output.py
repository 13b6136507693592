"""Printing: results to stdout (one sink for table, JSON and CSV), messages to stderr."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from slmplan.errors import BadInputError
from slmplan.textsafe import for_rich

if TYPE_CHECKING:
    from rich.table import Table

# rich.console, rich.table, json and csv load on first use: `slmplan --help` needs none of them.


class _Out:
    """Results go to stdout; when piped (not a terminal) tables are laid out 200 columns wide so
    nothing is cut. Created per call so redirected/captured stdout is honoured."""

    def print(self, *args, **kwargs) -> None:
        from rich.console import Console

        width = None if sys.stdout.isatty() else 200
        Console(file=sys.stdout, width=width, soft_wrap=False).print(*args, **kwargs)


class _Err:
    def print(self, *args, **kwargs) -> None:
        from rich.console import Console

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
    import json

    sys.stdout.write(json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested dicts -> one level with dotted keys; lists become '; '-joined text (for CSV)."""
    flat: dict = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            flat[key] = "; ".join(str(x) for x in v)
        else:
            flat[key] = v
    return flat


def emit_csv(rows: Iterable[dict]) -> None:
    import csv

    flat = [flatten(r) for r in rows]
    fields: list[str] = []
    for r in flat:
        fields += [k for k in r if k not in fields]
    w = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    w.writerows(flat)


def emit(fmt: str, data: Any, table: Callable[[], None], rows: Callable[[], Iterable[dict]] | None = None) -> None:
    """The one output sink: ``data`` as JSON, ``rows()`` (default: ``data``) as CSV, or ``table()`` for people.
    ``data`` may be a function, called only for JSON or CSV."""
    fmt = getattr(fmt, "value", fmt)
    if fmt != "table" and callable(data):
        data = data()
    if fmt == "json":
        emit_json(data)
    elif fmt == "csv":
        if rows is None and not isinstance(data, list):
            raise BadInputError("--format csv needs a list of rows", "Use --format json")
        emit_csv(rows() if rows else data)
    else:
        table()


def gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.2f}"


def fmt_num(x: float | None, digits: int = 1) -> str:
    if x is None or x == 0:
        return "unknown"
    return f"{x:,.{digits}f}"


VERDICT_STYLE = {"fits": "green", "tight": "yellow", "does-not-fit": "red"}


def results_table(results, title: str, limit: int | None = None) -> Table:
    """fit/plan results (FitResult) for people."""
    from rich.table import Table

    t = Table(title=title)
    for col in ("model", "quant", "verdict", "memory GiB (w+rep+kv+comp+ovh)", "budget", "prefill tok/s", "decode tok/s (low-high)", "TTFT s", "Wh/query"):
        t.add_column(col)
    for r in results[:limit]:
        m, s, e = r.memory, r.speed, r.energy
        style = VERDICT_STYLE[r.verdict]
        t.add_row(
            for_rich(r.model), for_rich(r.quant), f"[{style}]{r.verdict}[/{style}]",
            # rep = llama.cpp's repacked weight copy; kv includes a recurrent model's state
            f"{gib(m.total_bytes)} ({gib(m.weights_bytes)}+{gib(m.repack_bytes)}+{gib(m.kv_cache_bytes + m.state_bytes)}"
            f"+{gib(m.compute_bytes)}+{gib(m.overhead_bytes)})",
            gib(m.budget_bytes), fmt_num(s.prefill_tokens_per_s),
            f"{s.decode_tokens_per_s:.1f} ({s.decode_tokens_per_s_low:.1f}-{s.decode_tokens_per_s_high:.1f})"
            if s.decode_tokens_per_s is not None else "unknown",
            f"{s.ttft_s:.2f}" if s.prefill_tokens_per_s else "unknown",
            f"{e.wh_per_query:.4f}" if e.wh_per_query is not None else "unknown")
    return t


def cloud_line(results) -> str | None:
    """One line comparing the estimated energy per query with the cloud baselines (None without energy)."""
    from slmplan.estimate.energy import cloud_baselines

    e = next((r.energy for r in results if r.energy.wh_per_query), None)
    if not e:
        return None
    parts = [f"{b['wh_per_query']:g} Wh ({b['label']})" for b in cloud_baselines()]
    return (f"Energy per query ({e.prompt_tokens} prompt + {e.generated_tokens} generated tokens) is an estimate; "
            f"cloud baselines, also estimates: {'; '.join(parts)}.")


class err_status:
    """A status line on stderr (spinner on a terminal, plain lines otherwise)."""

    def __init__(self, first: str) -> None:
        from rich.console import Console

        self.console = Console(file=sys.stderr)
        self.first = first
        self._status: Any = None

    def __enter__(self) -> Callable[[str], None]:
        if self.console.is_terminal:
            self._status = self.console.status(self.first)
            self._status.__enter__()

        def update(msg: str) -> None:
            if self._status is not None:
                self._status.update(msg)
            else:
                self.console.print(msg, markup=False, highlight=False)
        return update

    def __exit__(self, *exc) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)
