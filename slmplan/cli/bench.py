"""`slmplan bench` and `slmplan demo`: parse, call slmplan.bench.api (which checks and runs the benchmark), print."""

import sys
from typing import Annotated, Optional

import typer

from slmplan.cli._options import query as _query
from slmplan.cli.output import err, out
from slmplan.cli.output import results_table as _results_table
from slmplan.errors import BadInputError
from slmplan.textsafe import clean, for_rich


def bench_cmd(
    model: Annotated[str, typer.Argument(help="Path to a .gguf file, or a catalog id with a local GGUF (bundled: smollm2-135m, gemma-3-270m).")],
    runtime: Annotated[str, typer.Option("--runtime", "-r", help="llama.cpp (a .gguf) or onnx (a folder from 'slmplan convert').")] = "llama.cpp",
    threads: Annotated[Optional[int], typer.Option("--threads", "-t", help="Threads for generation and prompt processing (default: physical cores, as llama-bench).")] = None,
    pp: Annotated[str, typer.Option("--pp", "-p", help="Prompt-processing test sizes, comma-separated; 0 = none.")] = "512",
    tg: Annotated[str, typer.Option("--tg", "-n", help="Generation test sizes, comma-separated; 0 = none.")] = "128",
    depth: Annotated[str, typer.Option("--depth", "-d", help="Context depth(s) already in the KV cache before each test (llama-bench -d).")] = "0",
    reps: Annotated[int, typer.Option("--reps", help="Timed repetitions per test (after one warmup run).")] = 5,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Logical batch size (llama-bench -b).")] = 2048,
    ubatch_size: Annotated[int, typer.Option("--ubatch-size", "-ub", help="Physical batch size (llama-bench -ub).")] = 512,
    flash_attn: Annotated[str, typer.Option("--flash-attn", "-fa", help="auto | on | off (llama-bench's default: auto).")] = "auto",
    cache_type_k: Annotated[str, typer.Option("--cache-type-k", help="KV cache type for K (f16, q8_0, ...).")] = "f16",
    cache_type_v: Annotated[str, typer.Option("--cache-type-v", help="KV cache type for V (quantized V needs flash attention).")] = "f16",
    ttft: Annotated[bool, typer.Option("--ttft/--no-ttft", help="Also time the first token of a real chat prompt.")] = True,
    prompt: Annotated[Optional[str], typer.Option("--prompt", help="The prompt for --ttft (default: a built-in ~100-word request).")] = None,
    warmup: Annotated[bool, typer.Option("--warmup/--no-warmup", help="One untimed run before the timed ones.")] = True,
    mmap: Annotated[bool, typer.Option("--mmap/--no-mmap", help="Map the weights from the file (llama.cpp's default).")] = True,
    repack: Annotated[Optional[int], typer.Option("--repack", help="llama.cpp's repacked CPU weights (llama-bench --repack): 1 on, 0 off. Default: on, and measured again with 0 if llama.cpp crashes in the repacked kernels (illegal instruction, segmentation fault, bus error).")] = None,
    quant: Annotated[Optional[str], typer.Option("--quant", "-q", help="For a catalog id: which quant's cached GGUF to use.")] = None,
    calibrate: Annotated[bool, typer.Option("--calibrate", help="Calibrate this machine's profile on this run and earlier calibrating ones (the fit of 'slmplan calibrate'); later 'fit/plan --device local' use it.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Run even if the predicted footprint exceeds the RAM available now.")] = False,
    fmt: Annotated[Optional[str], typer.Option("--format", "-f", help="table | json | csv | md (default: table, or from -o's extension).")] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Also write the result to this file (.json/.csv/.md), atomically.")] = None,
) -> None:
    """Measure a model on this machine like llama.cpp's llama-bench, plus memory, time to first token and
    the planner's prediction for the same run.

    Each run happens in a child process. Ctrl-C stops it and keeps the samples measured so far.

    Examples:

      slmplan bench smollm2-135m

      slmplan bench model.gguf --threads 2 --pp 512 --tg 128 --reps 5 -o bench.json

      slmplan bench gemma-3-270m --depth 0,4096 --calibrate
    """
    from slmplan.bench import prepare as P
    from slmplan.bench import render as R
    from slmplan.bench.api import BenchOptions, plan_benchmark
    from slmplan.fileio import write_atomic

    if P.check_runtime(runtime) == "onnx" and calibrate:
        raise BadInputError("--calibrate fits the llama.cpp speed model; it does not apply to --runtime onnx",
                            "Drop --calibrate")
    if fmt is not None:
        fmt = P.check_choice(fmt, R.FORMATS, "--format")
    file_fmt = None
    if output:
        file_fmt = R.format_for_path(output) or (fmt if fmt in ("json", "csv", "md") else None)
        if file_fmt is None:
            raise BadInputError(f"cannot tell the format of -o {output}", "Use a .json, .csv or .md file name (or --format json)")
        from slmplan.fileio import check_writable_target

        check_writable_target(output, [model])  # before the benchmark, not after it; never over the model
    if repack not in (None, 0, 1):
        raise BadInputError(f"--repack must be 0 or 1, got {repack}", "Use --repack 0 (off) or --repack 1 (on)")
    plan = plan_benchmark(model, BenchOptions(
        runtime=runtime, threads=threads, pp=pp, tg=tg, depth=depth, reps=reps, n_batch=batch_size, n_ubatch=ubatch_size,
        flash_attn=flash_attn, type_k=cache_type_k, type_v=cache_type_v, ttft=ttft, prompt=prompt, warmup=warmup, mmap=mmap,
        repack=None if repack is None else bool(repack), quant=quant, force=force))
    target = plan.target
    run_ = _bench_with_progress(plan)
    if output:
        assert file_fmt is not None  # checked against the output's name before the run
        write_atomic(output, R.render(run_, file_fmt), [model, str(target.path)])
        err.print(f"Wrote {clean(output)}", markup=False, highlight=False)
    shown = fmt or "table"
    if shown == "table":
        for t in R.tables(run_):
            out.print(t)
        for line in R.summary_lines(run_):
            out.print(line, markup=False, highlight=False)
    else:
        sys.stdout.write(R.render(run_, shown))
    for w in run_.warnings:
        err.print(f"Warning: {clean(w)}", markup=False, highlight=False, soft_wrap=True)
    if calibrate and not run_.interrupted and not run_.failure:
        _calibrate_local(run_)
    if run_.interrupted:
        n = sum(len(r.samples) for r in run_.results)
        err.print(f"Interrupted: kept the {n} sample(s) measured so far.", markup=False, highlight=False)
        raise typer.Exit(130)
    _exit_if_failed(run_)


def _calibrate_local(run_) -> None:
    """Fit this machine's calibration on the run (after its results are out: a failure here loses nothing)."""
    from slmplan.bench.calibrate import calibrate_local
    from slmplan.calibration_store import local_calibration_path
    from slmplan.device_calibration import quant_factors_text
    from slmplan.errors import SlmplanError
    from slmplan.localdevice import detect_local

    try:
        got = calibrate_local(run_, detect_local())
    except SlmplanError as e:
        err.print(f"Warning: not calibrated: {clean(e.message)}", markup=False, highlight=False, soft_wrap=True)
        return
    if got is None:
        err.print("Warning: not calibrated: no complete test in this run", markup=False, highlight=False)
        return
    cal, notes = got
    for n in notes:
        err.print(f"note: {clean(n)}", markup=False, highlight=False, soft_wrap=True)
    parts = []
    if cal.decode:
        parts.append(f"decode time per token = {cal.decode.a:.3f} x predicted streaming time + "
                     f"{cal.decode.b_layer_s * 1e3:.4f} ms x layers"
                     + (f" (x{cal.decode.a_own / cal.decode.a:.3f} that for the measured model: the other models get the "
                        "device's share of its deviation)" if cal.decode.a_own else "")
                     + (f"; {qt}" if (qt := quant_factors_text(cal.decode.quant_factors)) else ""))
    if cal.prefill:
        parts.append(f"prefill x{cal.prefill.scale:.3f}"
                     + (f"; {qt}" if (qt := quant_factors_text(cal.prefill.quant_factors, "prompt tokens/s")) else ""))
    err.print(f"Calibrated: {clean(cal.method)} ({'; '.join(parts)}) -> {local_calibration_path()}; "
              "'fit/plan --device local' use it", markup=False, highlight=False, soft_wrap=True)


def _exit_if_failed(run_) -> None:
    """A benchmark that stopped early is a runtime failure (exit 1), even with the tests it kept."""
    if run_.failure:
        missing = ", ".join(m.test for m in run_.missing_tests)
        err.print(f"Error: {run_.runtime} benchmark failed: {run_.failure}. Kept the finished tests; missing: {missing}.",
                  markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _bench_with_progress(plan):
    """Run a checked benchmark plan with a progress bar on stderr (shown only on a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from slmplan.bench.api import measure

    console = Console(file=sys.stderr)
    settings, target = plan.settings, plan.target
    names = [t.name for t in plan.tests] + (["ttft"] if plan.ttft_prompt else [])
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal,
                  auto_refresh=False) as bar:  # redraw on events only: no thread competing with the benchmark
        task = bar.add_task(f"loading {for_rich(target.path.name)}", total=len(names) * settings.reps)
        bar.refresh()

        def on_event(ev):
            kind = ev["event"]
            if kind == "start":
                bar.update(task, description=f"{ev['test']}" + (" (warmup)" if settings.warmup else ""))
            elif kind == "sample":
                bar.update(task, advance=1, description=ev["test"])
            elif kind == "retry":
                bar.reset(task)
                bar.update(task, description="retrying with --repack 0")
                if not console.is_terminal:
                    console.print("llama.cpp died with repacking on; measuring again with --repack 0", markup=False,
                                  highlight=False)
            bar.refresh()

        return measure(plan, on_event)


def demo_cmd(
    out_dir: Annotated[str, typer.Option("--out", help="Folder for the bench result and the reports.")] = "slmplan-demo",
    reps: Annotated[int, typer.Option("--reps", help="Timed repetitions of the benchmark.")] = 3,
    model: Annotated[str, typer.Option("--model", help="Bundled model to benchmark (smollm2-135m or gemma-3-270m).")] = "smollm2-135m",
) -> None:
    """Everything on defaults: plan for this machine, benchmark the bundled small model, write the report.

    Example: slmplan demo --out demo
    """
    from pathlib import Path

    from slmplan.bench import prepare as P
    from slmplan.bench import render as R
    from slmplan.bench.api import BenchOptions, plan_benchmark
    from slmplan.devices import get_device
    from slmplan.fileio import write_atomic
    from slmplan.planner import plan, recommend
    from slmplan.report.build import build_report
    from slmplan.report.render import render

    P.check_range(reps, "--reps", 1, 100, "3")
    d = Path(out_dir)
    if d.exists() and not d.is_dir():
        raise BadInputError(f"--out {out_dir} is a file", "Pass a folder name")
    d.mkdir(parents=True, exist_ok=True)
    from slmplan.fileio import check_writable_target

    for name in (f"bench-{model}.json", "report.html", "report.md", "report.json"):
        check_writable_target(str(d / name))  # before the benchmark, not after it
    device = get_device("local")  # with this machine's 'bench --calibrate' calibration when there is one
    q = _query(4096, 300, 200)
    ranked = plan(device, q)
    out.print(_results_table(ranked, f"1/3 Plan for this machine ({for_rich(device.name)}): top 5", limit=5))
    best, why = recommend(ranked, q)
    out.print(f"Recommendation: {clean(why)}", markup=False, highlight=False)
    bench_plan = plan_benchmark(model, BenchOptions(reps=reps))  # pp512, tg128 and TTFT, llama-bench's defaults
    err.print(f"2/3 Benchmarking {bench_plan.target.path.name} with llama.cpp ({reps} repetitions)...", markup=False,
              highlight=False)
    run_ = _bench_with_progress(bench_plan)
    for t in R.tables(run_):
        out.print(t)
    for w in run_.warnings:
        err.print(f"Warning: {clean(w)}", markup=False, highlight=False, soft_wrap=True)
    bench_path = d / f"bench-{model}.json"
    write_atomic(str(bench_path), R.to_json(run_))
    rep = build_report(device, [run_], None, q)
    written = [bench_path]
    for ext in ("html", "md", "json"):
        p = d / f"report.{ext}"
        write_atomic(str(p), render(rep, ext))
        written.append(p)
    out.print(f"3/3 Wrote {', '.join(str(p) for p in written)}. Open {d / 'report.html'} in a browser.",
              markup=False, highlight=False)
    if run_.interrupted:
        raise typer.Exit(130)
    _exit_if_failed(run_)
