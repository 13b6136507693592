"""`slmplan calibrate`: fit a device profile to llama-bench results measured on that device."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from slmplan.cli.output import emit_json, err, out
from slmplan.errors import BadInputError


class _Fmt(str, Enum):
    table = "table"
    json = "json"


def load_results(paths: list[str], catalog: str | None = None, model: str | None = None,
                 quant: str | None = None) -> list:
    """Parse and identify every file (the first unreadable file or unidentifiable row is an error)."""
    from slmplan.importers.identify import identify_rows
    from slmplan.importers.llama_bench import read_bench_file

    files = []
    for p in paths:
        f = read_bench_file(p)
        identify_rows(f.rows, catalog, model, quant)
        for s in f.skipped:
            err.print(f"skipped {s}", markup=False, highlight=False, soft_wrap=True)
        files.append(f)
    return files


def calibrate_cmd(
    results: Annotated[list[str], typer.Argument(help="llama-bench output (-o json, jsonl, csv, md, or its pasted table) or 'slmplan bench -o' JSON files.")],
    device: Annotated[str, typer.Option("--device", "-d", help="The profile to calibrate: built-in id, 'local', or a device YAML path.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Where to write the calibrated profile (NEW.yaml).")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Catalog id of the model the rows measured, when the file does not tell (applies to every row).")] = None,
    quant: Annotated[Optional[str], typer.Option("--quant", "-q", help="Quant of the rows, when neither the file name nor llama.cpp's description tells.")] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", "-t", help="Use only the rows run with this many threads (files with several settings).")] = None,
    catalog: Annotated[Optional[str], typer.Option("--catalog", help="Model catalog YAML (default: the bundled model_catalog.yaml).")] = None,
    fmt: Annotated[_Fmt, typer.Option("--format", "-f", help="table for people, json for scripts.")] = _Fmt.table,
) -> None:
    """Measure once on the real device, then predict every model on it: fit DEVICE's speed corrections to
    llama-bench RESULTS taken on that device and write them as a new device profile.

    Examples:

      llama-bench -m Llama-3.2-1B-Instruct-Q4_K_M.gguf -m Qwen3-1.7B-Q4_K_M.gguf -o json > phone.json

      slmplan calibrate --device pixel-8 phone.json -o pixel-8-calibrated.yaml

      slmplan plan --device pixel-8-calibrated.yaml
    """
    from slmplan.device_calibration import calibrate, profile_yaml
    from slmplan.devices import get_device
    from slmplan.fileio import check_writable_target, write_atomic

    if not output.endswith((".yaml", ".yml")):
        raise BadInputError(f"-o {output}: the calibrated profile is YAML", "Use a .yaml file name, e.g. -o phone-calibrated.yaml")
    check_writable_target(output)
    base = get_device(device)
    files = load_results(results, catalog, model, quant)
    dev, notes = calibrate(files, base, catalog, threads=threads)
    for n in notes:
        err.print(f"note: {n}", markup=False, highlight=False, soft_wrap=True)
    write_atomic(output, profile_yaml(dev))
    cal = dev.calibration
    if cal and cal.decode and cal.decode.models < 3:
        err.print(f"note: decode rows of {cal.decode.models} model(s): how models of other sizes deviate on this device "
                  "is not measured, so the bounds are the spread seen across published devices after one model "
                  f"(x{cal.decode.ratio_low:.2f}-x{cal.decode.ratio_high:.2f}). Rows of three models of different sizes fit it (one "
                  "llama-bench run: -m SMALL.gguf -m MEDIUM.gguf -m LARGE.gguf); see the README for how much each helps.",
                  markup=False, highlight=False, soft_wrap=True)
    if fmt == _Fmt.json:
        emit_json({"output": output, "device": dev.id, "calibration": cal.model_dump() if cal else None})
    else:
        _table(dev, cal)
    err.print(f"Wrote {output}; use it with --device {output}", markup=False, highlight=False)


def _table(dev, cal) -> None:
    from rich.table import Table

    from slmplan.device_calibration import quant_factors_text

    t = Table(title=dev.name)
    for col in ("row", "model", "quant", "test", "measured tok/s", "planner tok/s", "calibrated tok/s", "residual"):
        t.add_column(col)
    for r in cal.residuals:
        t.add_row(Path(r.source).name, r.model, r.quant, r.test, f"{r.measured_tokens_per_s:.2f}",
                  f"{r.predicted_tokens_per_s:.2f}" if r.predicted_tokens_per_s else "unknown",
                  f"{r.fitted_tokens_per_s:.2f}" if r.fitted_tokens_per_s else "-",
                  f"{r.residual_pct:+.1f}%" if r.residual_pct is not None else (r.note or "-"))
    out.print(t)
    out.print(f"  {cal.method}", markup=False, highlight=False, soft_wrap=True)
    if cal.decode:
        d = cal.decode
        own = f" (the measured model(s): x{d.a_own / d.a:.3f} that)" if d.a_own else ""
        out.print(f"  decode: time per token = {d.a:.4f} x predicted streaming time + {d.b_layer_s * 1e3:.4f} ms x layers{own} "
                  f"({d.rows} rows, {d.models} model(s)); bounds x{d.ratio_low:.2f}-x{d.ratio_high:.2f} from {d.bounds}",
                  markup=False, highlight=False, soft_wrap=True)
        out.print(f"  fixed cost per layer: {d.form}", markup=False, highlight=False, soft_wrap=True)
        if qt := quant_factors_text(d.quant_factors):
            out.print(f"  {qt}", markup=False, highlight=False, soft_wrap=True)
    if cal.prefill:
        p = cal.prefill
        out.print(f"  prefill: tokens/s = {p.scale:.4f} x planner ({p.rows} rows); bounds x{p.ratio_low:.2f}-x{p.ratio_high:.2f}")
        if qt := quant_factors_text(p.quant_factors, "prompt tokens/s"):
            out.print(f"  {qt}", markup=False, highlight=False, soft_wrap=True)
    if cal.llama_cpp_build:
        out.print(f"  llama.cpp build: {cal.llama_cpp_build}")
