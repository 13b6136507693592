"""Read llama.cpp's ``llama-bench`` results: ``-o json``, ``-o jsonl``, ``-o csv``, ``-o md`` (the default
table people paste into issues, with or without its ``build:`` line) and slmplan's own bench JSON.

Every readable row becomes a :class:`BenchRow`; a row that cannot be read is reported with its line and
the reason (``skipped``), never guessed. A file with no readable row, or that is not one of these
formats, is a :class:`BadInputError` (one line, exit 2). Which catalog model a row measured is decided
in :mod:`slmplan.importers.identify`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from slmplan.errors import BadInputError

FORMATS_HINT = ("Pass llama-bench output (-o json, jsonl, csv or md, or its pasted table) or a "
                "'slmplan bench -o FILE.json' result")
_NEEDED = ("n_prompt", "n_gen", "avg_ts")


@dataclass
class BenchRow:
    """One llama-bench test: what ran, with which settings, and how fast (tokens/s, llama-bench's mean)."""

    source: str  # "file:line" (for messages and the calibration's residual table)
    n_prompt: int
    n_gen: int
    n_depth: int
    tokens_per_s: float
    tokens_per_s_std: float | None = None
    model_filename: str | None = None
    model_type: str | None = None  # llama.cpp's description, e.g. "llama 1B Q4_K - Medium"
    model_size: int | None = None  # bytes (approximate when read from a table's "1.87 GiB")
    model_n_params: int | None = None
    params_exact: bool = True  # False when read from a table ("3.21 B" is rounded)
    threads: int | None = None
    n_batch: int | None = None
    n_ubatch: int | None = None
    n_gpu_layers: int | None = None
    backends: str | None = None
    flash_attn: str | None = None
    type_k: str | None = None
    type_v: str | None = None
    repack: bool | None = None  # llama.cpp's repacked CPU weights (llama-bench --repack); None = the file does not say
    build_commit: str | None = None
    build_number: int | None = None
    cpu_info: str | None = None
    gpu_info: str | None = None
    samples_ts: list[float] = field(default_factory=list)
    samples_ns: list[int] = field(default_factory=list)
    model_id: str | None = None  # the catalog model, once identified
    quant: str | None = None
    gguf_path: str | None = None  # the GGUF file slmplan itself measured (slmplan bench runs): its facts are read from it

    @property
    def kind(self) -> str:
        """tg = generation only, pp = prompt only, pg = both in one timing (llama-bench -pg)."""
        if self.n_prompt == 0 and self.n_gen > 0:
            return "tg"
        if self.n_gen == 0 and self.n_prompt > 0:
            return "pp"
        return "pg"

    @property
    def test(self) -> str:
        name = {"tg": f"tg{self.n_gen}", "pp": f"pp{self.n_prompt}"}.get(self.kind, f"pp{self.n_prompt}+tg{self.n_gen}")
        return name + (f" @ d{self.n_depth}" if self.n_depth else "")

    @property
    def model_label(self) -> str:
        return Path(self.model_filename).name if self.model_filename else (self.model_type or "unknown model")

    @property
    def build(self) -> str | None:
        if not self.build_commit:
            return None
        return f"{self.build_commit} ({self.build_number})" if self.build_number is not None else self.build_commit


@dataclass
class BenchFile:
    path: str
    format: str  # json | jsonl | csv | md | slmplan
    rows: list[BenchRow]
    skipped: list[str]  # "file:line: reason"


def read_bench_file(path: str | Path) -> BenchFile:
    p = Path(path)
    if not p.is_file():
        raise BadInputError(f"{path}: no such file", FORMATS_HINT)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"{path} cannot be read as text ({getattr(e, 'reason', None) or e})", FORMATS_HINT) from None
    return parse_bench_text(text, str(path))


def parse_bench_text(text: str, name: str = "<text>") -> BenchFile:
    s = text.strip()
    if not s:
        raise BadInputError(f"{name} is empty", FORMATS_HINT)
    if s[0] in "[{":
        fmt, rows, skipped = _parse_json_like(s, name)
    elif re.search(r"^\s*\|.*\bt/s\b.*\|\s*$", text, re.M):
        fmt, (rows, skipped) = "md", _parse_md(text, name)
    elif "," in s.splitlines()[0]:
        fmt, (rows, skipped) = "csv", _parse_csv(text, name)
    else:
        raise BadInputError(f"{name} is not llama-bench output (no JSON, CSV header or '| ... | t/s |' table)", FORMATS_HINT)
    if not rows:
        why = f" ({skipped[0]}{' and more' if len(skipped) > 1 else ''})" if skipped else ""
        raise BadInputError(f"{name} has no readable llama-bench row{why}", FORMATS_HINT)
    return BenchFile(name, fmt, rows, skipped)


# ---- JSON, JSONL, slmplan bench JSON -------------------------------------------------------------

def _parse_json_like(s: str, name: str):
    try:
        data = json.loads(s)
    except ValueError:
        data = None
    if isinstance(data, dict) and "results" in data and "runtime" in data:
        rows, skipped = _from_slmplan(data, name)
        return "slmplan", rows, skipped
    if isinstance(data, list):
        if not all(isinstance(o, dict) for o in data) or not data:
            raise BadInputError(f"{name} is JSON but not llama-bench's -o json (a list of test objects)", FORMATS_HINT)
        _check_keys(data[0], name, "JSON")
        # -o json writes one object per test over several lines; find each object's first line for messages
        starts = [i + 1 for i, line in enumerate(s.splitlines()) if line.strip() == "{"]
        rows, skipped = [], []
        for i, o in enumerate(data):
            _one(o, f"{name}:{starts[i] if i < len(starts) else i + 1}", rows, skipped)
        return "json", rows, skipped
    if isinstance(data, dict):
        _check_keys(data, name, "JSON")  # a single-line JSONL file
        rows, skipped = [], []
        _one(data, f"{name}:1", rows, skipped)
        return "jsonl", rows, skipped
    rows, skipped = [], []
    lines = s.splitlines()
    first = None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            o = json.loads(line)
        except ValueError:
            skipped.append(f"{name}:{n}: not a JSON object")
            continue
        if not isinstance(o, dict):
            skipped.append(f"{name}:{n}: not a JSON object")
            continue
        if first is None:
            first = o
            _check_keys(o, name, "JSONL")
        _one(o, f"{name}:{n}", rows, skipped)
    if first is None:
        raise BadInputError(f"{name} is not valid JSON", FORMATS_HINT)
    return "jsonl", rows, skipped


def _check_keys(o: dict, name: str, what: str) -> None:
    missing = [k for k in _NEEDED if k not in o]
    if missing or not ({"model_filename", "model_type"} & set(o)):
        raise BadInputError(f"{name} is {what} but not llama-bench output (no {', '.join(missing or ['model_filename'])})",
                            FORMATS_HINT)


def _int(v) -> int | None:
    if v is None or v == "":
        return None
    return int(float(v))


def _str(v) -> str | None:
    return None if v is None or v == "" else str(v)


def _fa(v) -> str | None:
    if v is None or v == "":
        return None
    s = str(v).strip().lower()
    return {"1": "on", "true": "on", "0": "off", "false": "off", "-1": "auto"}.get(s, s)


def _repack(v) -> bool | None:
    """llama-bench's repack field: true/false (JSON), 1/0 (CSV, the md table's column); None when absent."""
    if v is None or v == "":
        return None
    s = str(v).strip().lower()
    if s in ("1", "true"):
        return True
    if s in ("0", "false"):
        return False
    raise ValueError(f"repack '{v}' is not 0/1")


def _one(o: dict, where: str, rows: list, skipped: list) -> None:
    try:
        n_prompt, n_gen = _int(o["n_prompt"]), _int(o["n_gen"])
        if n_prompt is None or n_gen is None:
            skipped.append(f"{where}: no test (n_prompt and n_gen are both 0 or missing)")
            return
        row = BenchRow(
            source=where, n_prompt=n_prompt, n_gen=n_gen, n_depth=_int(o.get("n_depth")) or 0,
            tokens_per_s=float(o["avg_ts"]), tokens_per_s_std=float(o["stddev_ts"]) if o.get("stddev_ts") not in (None, "") else None,
            model_filename=_str(o.get("model_filename")), model_type=_str(o.get("model_type")),
            model_size=_int(o.get("model_size")), model_n_params=_int(o.get("model_n_params")),
            threads=_int(o.get("n_threads")), n_batch=_int(o.get("n_batch")), n_ubatch=_int(o.get("n_ubatch")),
            n_gpu_layers=_int(o.get("n_gpu_layers")), backends=_str(o.get("backends")),
            flash_attn=_fa(o.get("flash_attn")), type_k=_str(o.get("type_k")), type_v=_str(o.get("type_v")),
            repack=_repack(o.get("repack")), build_commit=_str(o.get("build_commit")), build_number=_int(o.get("build_number")),
            cpu_info=_str(o.get("cpu_info")), gpu_info=_str(o.get("gpu_info")),
            samples_ts=[float(x) for x in o.get("samples_ts") or []], samples_ns=[int(x) for x in o.get("samples_ns") or []])
    except (KeyError, TypeError, ValueError) as e:
        skipped.append(f"{where}: unreadable field ({type(e).__name__}: {e})")
        return
    _keep(row, rows, skipped)


def _keep(row: BenchRow, rows: list, skipped: list) -> None:
    if row.n_prompt is None or row.n_gen is None or row.n_prompt < 0 or row.n_gen < 0 or row.n_prompt + row.n_gen == 0:
        skipped.append(f"{row.source}: no test (n_prompt and n_gen are both 0 or missing)")
    elif not row.tokens_per_s > 0:
        skipped.append(f"{row.source}: tokens/s is {row.tokens_per_s}, not a measurement")
    else:
        rows.append(row)


def _from_slmplan(data: dict, name: str):
    from slmplan.schema.bench import BenchRun

    try:
        run = BenchRun.model_validate(data)
    except Exception as e:  # pydantic ValidationError: name the first field
        first = str(e).splitlines()[1:2]
        raise BadInputError(f"{name} is not a slmplan bench result ({first[0].strip() if first else e})", FORMATS_HINT) from None
    return rows_from_bench_run(run, name)


def rows_from_bench_run(run, name: str) -> tuple[list[BenchRow], list[str]]:
    """The complete tests of a slmplan ``BenchRun`` as rows (what `slmplan calibrate` reads from its JSON and
    `bench --calibrate` from the run it just measured); ``name`` names where they came from."""
    rows: list[BenchRow] = []
    skipped: list[str] = []
    backend = "CPU" if run.runtime.startswith("llama.cpp") else run.runtime
    for i, r in enumerate(run.results):
        where = f"{name}:results[{i}]"
        if not r.complete:
            skipped.append(f"{where}: {r.test} was interrupted before all repetitions ran")
            continue
        _keep(BenchRow(
            source=where, n_prompt=r.n_prompt, n_gen=r.n_gen, n_depth=r.n_depth, tokens_per_s=r.tokens_per_s_mean,
            n_batch=run.settings.n_batch, n_ubatch=run.settings.n_ubatch,
            tokens_per_s_std=r.tokens_per_s_std, model_filename=run.model_path, model_type=run.model_desc or None,
            model_size=run.model_size_bytes, model_n_params=run.n_params, threads=run.threads, n_gpu_layers=0,
            backends=backend, flash_attn=r.flash_attn or run.settings.flash_attn, type_k=run.settings.type_k,
            type_v=run.settings.type_v, repack=run.settings.repack, cpu_info=run.system.get("cpu_model"), samples_ts=list(r.samples),
            samples_ns=list(r.samples_ns), quant=run.quant, gguf_path=run.model_path), rows, skipped)
    return rows, skipped


# ---- CSV -----------------------------------------------------------------------------------------

def _parse_csv(text: str, name: str):
    reader = csv.DictReader(io.StringIO(text))
    cols = set(reader.fieldnames or [])
    missing = [c for c in _NEEDED if c not in cols]
    if not ({"model_filename", "model_type"} & cols):
        missing.append("model_filename")
    if missing:
        raise BadInputError(f"{name} is CSV but lacks llama-bench's column(s) {', '.join(missing)}",
                            "Write it with 'llama-bench -o csv' (all columns), or pass -o json")
    rows: list[BenchRow] = []
    skipped: list[str] = []
    for rec in reader:
        where = f"{name}:{reader.line_num}"
        if None in rec or any(v is None for v in rec.values()):
            skipped.append(f"{where}: {len(rec) - (None in rec)} values for {len(cols)} columns")
            continue
        _one(rec, where, rows, skipped)
    return rows, skipped


# ---- Markdown table ------------------------------------------------------------------------------

_BUILD = re.compile(r"build:\s*([0-9a-f]{6,40})\s*\((\d+)\)")
_TEST = re.compile(r"^(?:pp\s*(?P<pp>\d+))?(?:\s*\+\s*)?(?:tg\s*(?P<tg>\d+))?(?:\s*@\s*d\s*(?P<d>\d+))?$")
_UNITS = {"B": 1, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40, "KB": 1e3, "MB": 1e6, "GB": 1e9}
_COUNT = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
# llama-bench prints n_batch/n_ubatch columns only when they differ from its defaults (-b 2048 -ub 512)
MD_DEFAULT_BATCH, MD_DEFAULT_UBATCH = 2048, 512
_MD_NAMES = {"threads": "n_threads", "ngl": "n_gpu_layers", "fa": "flash_attn", "backend": "backends"}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _size(s: str) -> int:
    m = re.fullmatch(r"([\d.]+)\s*([KMGT]?i?B)", s.strip(), re.I)
    if not m:
        raise ValueError(f"size '{s}' is not like '1.87 GiB'")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def _count(s: str) -> int:
    m = re.fullmatch(r"([\d.]+)\s*([KMBT]?)", s.strip(), re.I)
    if not m:
        raise ValueError(f"params '{s}' is not like '3.21 B'")
    return int(float(m.group(1)) * _COUNT[m.group(2).upper()])


def _ts(s: str) -> tuple[float, float | None]:
    m = re.fullmatch(r"([\d.]+)(?:\s*(?:±|\+-|\+/-)\s*([\d.]+))?", s.strip())
    if not m:
        raise ValueError(f"t/s '{s}' is not like '38.81 ± 0.40'")
    return float(m.group(1)), float(m.group(2)) if m.group(2) else None


def _tables(lines: list[str]) -> list[tuple[int, int]]:
    """(first, last) line index of each run of consecutive '|' lines."""
    out, start = [], None
    for i, line in enumerate(lines + [""]):
        if line.strip().startswith("|"):
            start = i if start is None else start
        elif start is not None:
            out.append((start, i - 1))
            start = None
    return out


def _build_for(tables: list[tuple[int, int]], k: int, builds: list[tuple[int, re.Match]]):
    """llama-bench prints 'build:' under its table; a log pasted whole has it above. Prefer below."""
    lo, hi = tables[k]
    nxt = tables[k + 1][0] if k + 1 < len(tables) else 1 << 30
    prv = tables[k - 1][1] if k else -1
    below = [m for j, m in builds if hi < j < nxt]
    above = [m for j, m in builds if prv < j < lo]
    return below[0] if below else (above[-1] if above else None)


def _parse_md(text: str, name: str):
    lines = text.splitlines()
    builds = [(i, m) for i, line in enumerate(lines) if (m := _BUILD.search(line))]
    tables = _tables(lines)
    rows: list[BenchRow] = []
    skipped: list[str] = []
    for k, (lo, hi) in enumerate(tables):
        build = _build_for(tables, k, builds)
        header = None
        for i in range(lo, hi + 1):
            where = f"{name}:{i + 1}"
            cells = _cells(lines[i])
            low = [c.lower() for c in cells]
            if "model" in low and "t/s" in low and "test" in low:
                header = low
                continue
            if all(re.fullmatch(r":?-+:?", c) for c in cells if c):
                continue
            if header is None:
                skipped.append(f"{where}: table row without a llama-bench header ('| model | ... | test | t/s |') above it")
                continue
            if len(cells) != len(header):
                skipped.append(f"{where}: {len(cells)} cells for {len(header)} columns")
                continue
            try:
                row = _md_row(dict(zip(header, cells)), where)
            except ValueError as e:
                skipped.append(f"{where}: {e}")
                continue
            if build:
                row.build_commit, row.build_number = build.group(1), int(build.group(2))
            _keep(row, rows, skipped)
    return rows, skipped


def _md_row(rec: dict, where: str) -> BenchRow:
    t = _TEST.fullmatch(rec["test"].replace(" ", "").lower())
    if not t or not (t.group("pp") or t.group("tg")):
        raise ValueError(f"test '{rec['test']}' is not like pp512, tg128, pp512+tg128 or tg128 @ d4096")
    ts, std = _ts(rec["t/s"])
    g = {_MD_NAMES.get(k, k): v for k, v in rec.items()}
    return BenchRow(
        source=where, n_prompt=int(t.group("pp") or 0), n_gen=int(t.group("tg") or 0), n_depth=int(t.group("d") or 0),
        tokens_per_s=ts, tokens_per_s_std=std, model_type=rec["model"],
        model_size=_size(rec["size"]) if rec.get("size") else None,
        model_n_params=_count(rec["params"]) if rec.get("params") else None, params_exact=False,
        threads=_int(g.get("n_threads")), n_gpu_layers=_int(g.get("n_gpu_layers")), backends=_str(g.get("backends")),
        n_batch=_int(g.get("n_batch")) or MD_DEFAULT_BATCH, n_ubatch=_int(g.get("n_ubatch")) or MD_DEFAULT_UBATCH,
        flash_attn=_fa(g.get("flash_attn")), type_k=_str(g.get("type_k")), type_v=_str(g.get("type_v")),
        repack=_repack(g.get("repack")))
