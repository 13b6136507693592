"""`slmplan report`: the feasibility report for one device, as HTML, Markdown or JSON."""

import os
import sys
from typing import Annotated, Optional

import typer

from slmplan.cli._options import (
    CatalogOpt,
    EntOpt,
    QCtxOpt,
    QGenOpt,
    QPromptOpt,
    SpeedRuntimeOpt,
    UseCaseOpt,
    device_option,
    entitled,
    output_option,
    uc_query,
    with_per_layer_embd,
)
from slmplan.cli.output import err
from slmplan.errors import BadInputError
from slmplan.textsafe import clean

REPORT_FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json"}


def report_cmd(
    device: Annotated[Optional[str], device_option()] = None,
    output: Annotated[Optional[str], output_option("OUT.html, OUT.md or OUT.json (default: Markdown on stdout).")] = None,
    bench: Annotated[Optional[list[str]], typer.Option("--bench", "-b", help="A 'slmplan bench -o FILE.json' result or llama-bench output (json, jsonl, csv, md); repeat for several.")] = None,
    models: Annotated[Optional[str], typer.Option("--models", "-m", help="Comma-separated catalog ids or .gguf paths (default: the planner's top choices).")] = None,
    ctx: QCtxOpt = None, prompt: QPromptOpt = None, gen: QGenOpt = None, use_case: UseCaseOpt = None,
    service: Annotated[Optional[str], typer.Option("--service", help="Your service in one line, for the report's summary (default: a marked placeholder).")] = None,
    ios_entitlement: EntOpt = False,
    top: Annotated[int, typer.Option("--top", help="How many of the planner's choices to include.")] = 5,
    queries_per_day: Annotated[int, typer.Option("--queries-per-day", help="Usage pattern for the yearly energy and CO2.")] = 100,
    grid: Annotated[Optional[str], typer.Option("--grid", help="Country for the grid's carbon intensity (default: world average).")] = None,
    grid_intensity: Annotated[Optional[float], typer.Option("--grid-intensity", help="Grid carbon intensity in gCO2e/kWh (overrides --grid).")] = None,
    power_w: Annotated[Optional[float], typer.Option("--power-w", help="The device's sustained power while generating, in watts (when the profile has none).")] = None,
    schema: Annotated[bool, typer.Option("--schema", help="Print the JSON Schema of the JSON report and exit.")] = False,
    catalog: CatalogOpt = None,
    runtime: SpeedRuntimeOpt = "llama.cpp",
) -> None:
    """A feasibility report for one device: ranked candidates, the recommendation, memory and speed charts,
    predicted vs measured, context-length effect, energy and CO2 against the cloud, privacy notes.

    Examples:

      slmplan report --device pixel-8 -o pixel8.html

      slmplan report --device local --bench bench.json -o report.html

      slmplan report --device iphone-15-pro --models llama-3.2-1b,qwen3-1.7b --grid france -o report.md

      slmplan report --device pixel-9 --use-case summarize --service "offline meeting-note summaries" -o r.html

      slmplan report --device snapdragon-x-elite-laptop --runtime npu -o npu.html
    """
    from slmplan.devices import get_device
    from slmplan.fileio import write_atomic
    from slmplan.report.build import build_report, load_benches
    from slmplan.report.render import render, schema_json

    if schema:
        sys.stdout.write(schema_json())
        return
    if not device:
        raise BadInputError("--device is required", "Use e.g. --device pixel-8 (see 'slmplan devices') or --device local")
    fmt: str | None = "md"
    report_inputs: list = []
    if output:
        fmt = REPORT_FORMATS.get(os.path.splitext(output)[1].lower())
    if fmt is None:
        raise BadInputError(f"cannot tell the report format of -o {output}", "Use a .html, .md or .json file name")
    if output:
        from slmplan.fileio import check_writable_target

        # before any work, and never over one of the report's own inputs
        report_inputs = [*(bench or []), device, catalog, *(models.split(",") if models else [])]
        check_writable_target(output, report_inputs)
    dev = entitled(get_device(device), ios_entitlement)
    q, _, overridden = uc_query(use_case, ctx, prompt, gen)
    q = with_per_layer_embd(q, q.settings.per_layer_embd, runtime=runtime)  # sets --runtime, validated
    runs = [run for b in (bench or []) for run in load_benches(b, dev)]
    model_list = [m.strip() for m in models.split(",") if m.strip()] if models else None
    rep = build_report(dev, runs, model_list, q, top=top, queries_per_day=queries_per_day,
                       grid=grid, grid_value=grid_intensity, power_w=power_w, use_case=use_case, service=service,
                       overridden=overridden)
    text = render(rep, fmt)
    if output:
        write_atomic(output, text, report_inputs + [r.model_path for r in runs])
        err.print(f"Wrote {clean(output)}", markup=False, highlight=False)
    else:
        sys.stdout.write(text)
