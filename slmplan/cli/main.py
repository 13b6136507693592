"""slmplan command line. Errors become one line 'Error: ...' with exit code 2 (bad input) or 1."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from enum import Enum
from typing import Annotated, Optional

import typer
from rich.table import Table

from slmplan.cli.output import VERDICT_STYLE, emit_json, err, fmt_num, gib, out
from slmplan.errors import BadInputError, SlmplanError, debug_enabled
from slmplan.textsafe import clean, for_rich

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Will this small language model fit this device, and how fast will it run?\n\n"
         "Examples:\n\n"
         "  slmplan fit llama-3.2-1b --device pixel-8\n\n"
         "  slmplan plan --device iphone-15-pro --ctx 2048\n\n"
         "  slmplan inspect model.gguf",
)


class Fmt(str, Enum):
    table = "table"
    json = "json"


CatalogOpt = Annotated[Optional[str], typer.Option("--catalog", help="Model catalog YAML (default: the bundled model_catalog.yaml).")]
FormatOpt = Annotated[Fmt, typer.Option("--format", "-f", help="table for people, json for scripts.")]
DeviceOpt = Annotated[str, typer.Option("--device", "-d", help="Built-in device id, 'local', or a device YAML path.")]
CtxOpt = Annotated[int, typer.Option("--ctx", help="Context length in tokens (KV cache size).")]
PromptOpt = Annotated[int, typer.Option("--prompt-tokens", help="Prompt tokens of one query (energy, time to first token).")]
GenOpt = Annotated[int, typer.Option("--gen-tokens", help="Generated tokens of one query.")]
SwaOpt = Annotated[bool, typer.Option("--swa-full/--no-swa-full", help="Full-size sliding-window KV cache (llama-cpp-python's default) or llama-server's smaller one.")]
FaOpt = Annotated[bool, typer.Option("--flash-attn/--no-flash-attn", help="Flash attention (smaller compute buffer at long contexts).")]
from slmplan.usecase import HELP as _UC_HELP  # noqa: E402 (light: no planner import)

UseCaseOpt = Annotated[Optional[str], typer.Option("--use-case", help=_UC_HELP + " Default: 300 + 200 tokens, ctx 4096.")]
QCtxOpt = Annotated[Optional[int], typer.Option("--ctx", help="Context length in tokens (KV cache size). Default: the use case's, else 4096.")]
QPromptOpt = Annotated[Optional[int], typer.Option("--prompt-tokens", help="Prompt tokens of one query (default: the use case's, else 300).")]
QGenOpt = Annotated[Optional[int], typer.Option("--gen-tokens", help="Generated tokens of one query (default: the use case's, else 200).")]
EntOpt = Annotated[bool, typer.Option("--ios-entitlement", help="iOS/iPadOS: plan with the budget of Apple's increased-memory-limit entitlement.")]


def _query(ctx: int, prompt: int, gen: int, swa_full: bool = True, flash_attn: bool = False):
    from slmplan.estimate.memory import RuntimeSettings
    from slmplan.planner import Query

    return Query(ctx=ctx, n_prompt=prompt, n_gen=gen, settings=RuntimeSettings(swa_full=swa_full, flash_attn=flash_attn))


def _uc_query(use_case, ctx, prompt, gen, swa_full: bool = True, flash_attn: bool = False):
    from slmplan.estimate.memory import RuntimeSettings
    from slmplan.planner import Query
    from slmplan.usecase import build_query

    return build_query(use_case, ctx, prompt, gen, Query(settings=RuntimeSettings(swa_full=swa_full, flash_attn=flash_attn)))


def _entitled(dev, ios_entitlement: bool):
    from slmplan.entitlement import entitled_device

    return entitled_device(dev) if ios_entitlement else dev


@app.command("catalog")
def catalog_cmd(fmt: FormatOpt = Fmt.table, catalog: CatalogOpt = None) -> None:
    """Every model in the catalog with its quant variants.

    Example: slmplan catalog --format json
    """
    from slmplan.catalog import facts, load_catalog

    cat = load_catalog(catalog)
    if fmt == Fmt.json:
        rows = []
        for m in cat.models:
            d = m.model_dump(exclude_none=True)
            d["params_computed"] = facts(m).params
            d["variants"] = [dict(v.model_dump(exclude_none=True), weights_bytes_estimate=facts(m).weights_bytes(v.quant))
                             for v in m.variants]
            rows.append(d)
        emit_json(rows)
        return
    t = Table(title=f"Model catalog ({len(cat.models)} models)")
    for col in ("id", "params", "layers", "ctx", "KV heads", "license", "quants (weights GiB)"):
        t.add_column(col)
    for m in cat.models:
        f = facts(m)
        qs = ", ".join(f"{v.quant} {f.weights_bytes(v.quant) / 2**30:.2f}" for v in m.variants)
        t.add_row(m.id, f"{f.params / 1e9:.2f}B", str(m.layers), str(m.context_length), f"{m.kv_heads}/{m.heads}", for_rich(m.license), qs)
    out.print(t)


@app.command("devices")
def devices_cmd(local: Annotated[bool, typer.Option("--local", help="Detect this machine instead of listing the built-in profiles.")] = False,
                fmt: FormatOpt = Fmt.table) -> None:
    """Built-in device profiles, or this machine with --local.

    Examples: slmplan devices; slmplan devices --local --format json
    """
    from slmplan.devices import builtin_devices
    from slmplan.localdevice import detect_local

    if local:
        err.print("[dim]detecting this machine (first run measures memory bandwidth)...[/dim]")
        devs = [detect_local()]
    else:
        devs = list(builtin_devices())
    from slmplan.estimate.extra_bufts import describe_extra_buffer_types

    if fmt == Fmt.json:
        if local:
            d = devs[0].contract_dict()
            d["llama_cpp_extra_buffer_types"] = describe_extra_buffer_types(devs[0].cpu_features)
            emit_json(d)
        else:
            emit_json([d.contract_dict() for d in devs])
        return
    t = Table(title="Device profiles" if not local else "This machine")
    for col in ("id", "kind", "RAM GB", "budget GB", "bandwidth GB/s", "cores", "NPU TOPS", "backend", "power W"):
        t.add_column(col)
    for d in devs:
        t.add_row(d.id, d.kind, f"{d.ram_gb:g}", f"{d.memory_budget_gb:g}", f"{d.memory_bandwidth_gbs:g}", str(d.cpu_cores),
                  fmt_num(d.npu_tops, 0) if d.npu_tops else "-", d.effective_backend, f"{d.power_w:g}" if d.power_w else "unknown")
    out.print(t)
    if local:
        for k, v in devs[0].sources.items():
            out.print(f"  {k}: {clean(v)}", markup=False, highlight=False)
        out.print(f"  {clean(devs[0].notes)}", markup=False, highlight=False)
        extra = describe_extra_buffer_types(devs[0].cpu_features)
        if extra is None:
            line = "unknown (CPU features not detected)"
        elif not extra:
            line = "none (weights are used as mapped from the file)"
        else:
            line = "; ".join(f"{k} for {', '.join(v)} weights" for k, v in extra.items())
        out.print(f"  llama.cpp repacked weight copies here (extra buffer types, --repack 1): {line}",
                  markup=False, highlight=False)


def _results_table(results, title: str, limit: int | None = None) -> Table:
    t = Table(title=title)
    for col in ("model", "quant", "verdict", "memory GiB (w+kv+comp+ovh)", "budget", "prefill tok/s", "decode tok/s (low-high)", "TTFT s", "Wh/query"):
        t.add_column(col)
    for r in results[:limit]:
        m, s, e = r.memory, r.speed, r.energy
        style = VERDICT_STYLE[r.verdict]
        t.add_row(
            for_rich(r.model), for_rich(r.quant), f"[{style}]{r.verdict}[/{style}]",
            f"{gib(m.total_bytes)} ({gib(m.weights_bytes)}+{gib(m.kv_cache_bytes)}+{gib(m.compute_bytes)}+{gib(m.overhead_bytes)})",
            gib(m.budget_bytes), fmt_num(s.prefill_tokens_per_s),
            f"{s.decode_tokens_per_s:.1f} ({s.decode_tokens_per_s_low:.1f}-{s.decode_tokens_per_s_high:.1f})"
            if s.decode_tokens_per_s is not None else "unknown",
            f"{s.ttft_s:.2f}" if s.prefill_tokens_per_s else "unknown",
            f"{e.wh_per_query:.4f}" if e.wh_per_query is not None else "unknown")
    return t


def _cloud_line(results) -> str | None:
    from slmplan.estimate.energy import cloud_baselines

    e = next((r.energy for r in results if r.energy.wh_per_query), None)
    if not e:
        return None
    parts = [f"{b['wh_per_query']:g} Wh ({b['label']})" for b in cloud_baselines()]
    return (f"Energy per query ({e.prompt_tokens} prompt + {e.generated_tokens} generated tokens) is an estimate; "
            f"cloud baselines, also estimates: {'; '.join(parts)}.")


@app.command("fit")
def fit_cmd(model: Annotated[str, typer.Argument(help="Catalog id, path to a .gguf file, or hf://owner/repo/file.gguf.")],
            device: DeviceOpt,
            quant: Annotated[Optional[str], typer.Option("--quant", "-q", help="One quant variant (default: all of the model's variants).")] = None,
            ctx: QCtxOpt = None, fmt: FormatOpt = Fmt.table, catalog: CatalogOpt = None,
            prompt_tokens: QPromptOpt = None, gen_tokens: QGenOpt = None, swa_full: SwaOpt = True, flash_attn: FaOpt = False,
            use_case: UseCaseOpt = None, ios_entitlement: EntOpt = False,
            per_layer_embd: Annotated[str, typer.Option("--per-layer-embd", help="Gemma 3n/4 per-layer embeddings: resident (llama.cpp on CPU) or mapped (read from storage, as mobile runtimes do).")] = "resident",
            runtime: Annotated[str, typer.Option("--runtime", help="Speed of llama.cpp (default) or npu: the device's NPU runtime.")] = "llama.cpp") -> None:
    """Does MODEL fit DEVICE? Memory, speed and energy for each quant variant.

    Examples: slmplan fit llama-3.2-1b --device pixel-8; slmplan fit model.gguf --device local --ctx 8192
    """
    from dataclasses import replace

    from slmplan.devices import get_device
    from slmplan.planner import fit

    q = _uc_query(use_case, ctx, prompt_tokens, gen_tokens, swa_full, flash_attn)[0]
    if per_layer_embd not in ("resident", "mapped"):
        raise BadInputError(f"--per-layer-embd must be resident or mapped, got '{per_layer_embd}'", "Use --per-layer-embd mapped")
    q = replace(q, runtime=runtime, settings=replace(q.settings, per_layer_embd=per_layer_embd))
    q.validate()
    base_dev = get_device(device)
    dev = _entitled(base_dev, ios_entitlement)
    results = fit(model, dev, quant, q, catalog)
    if base_dev.memory_budget_gb_entitled is not None:  # iOS: show the other budget's verdicts too
        from slmplan.entitlement import annotate

        other = fit(model, base_dev if ios_entitlement else base_dev.with_entitlement(), quant, q, catalog)
        results = annotate(results, other, base_dev, ios_entitlement)
    if fmt == Fmt.json:
        emit_json([r.model_dump() for r in results])
        return
    out.print(_results_table(results, f"{for_rich(model)} on {for_rich(dev.name)} (ctx {q.ctx})"))
    notes = sorted({n for r in results for n in r.memory.notes})
    for n in notes:
        out.print(f"  note: {for_rich(n)}")
    out.print(f"  speed: {results[0].speed.method}; bound: {results[0].speed.bound}")
    line = _cloud_line(results)
    if line:
        out.print(f"  {line}")


@app.command("plan")
def plan_cmd(device: DeviceOpt, ctx: QCtxOpt = None, fmt: FormatOpt = Fmt.table, catalog: CatalogOpt = None,
             top: Annotated[int, typer.Option("--top", help="Rows in the table (JSON always lists all).")] = 15,
             prompt_tokens: QPromptOpt = None, gen_tokens: QGenOpt = None, swa_full: SwaOpt = True, flash_attn: FaOpt = False,
             use_case: UseCaseOpt = None, ios_entitlement: EntOpt = False,
             task: Annotated[Optional[str], typer.Option("--task", help="chat, summarize or code: how the published benchmarks are weighted in the ranking.")] = None,
             per_layer_embd: Annotated[str, typer.Option("--per-layer-embd", help="Gemma 3n/4 per-layer embeddings: resident (llama.cpp on CPU) or mapped (read from storage, as mobile runtimes do).")] = "resident",
             runtime: Annotated[str, typer.Option("--runtime", help="Speed of llama.cpp (default) or npu: the device's NPU runtime.")] = "llama.cpp") -> None:
    """Rank every catalog model/quant for DEVICE by published quality (within one source) and recommend one.

    Examples: slmplan plan --device raspberry-pi-5-8gb; slmplan plan --device local --task code --format json
    """
    from dataclasses import replace

    from slmplan.devices import get_device
    from slmplan.planner import plan, recommend

    q = _uc_query(use_case, ctx, prompt_tokens, gen_tokens, swa_full, flash_attn)[0]
    if per_layer_embd not in ("resident", "mapped"):
        raise BadInputError(f"--per-layer-embd must be resident or mapped, got '{per_layer_embd}'", "Use --per-layer-embd mapped")
    q = replace(q, task=task, runtime=runtime, settings=replace(q.settings, per_layer_embd=per_layer_embd))
    q.validate()
    if top <= 0:
        raise BadInputError(f"--top must be positive, got {top}", "Use e.g. --top 15")
    dev = _entitled(get_device(device), ios_entitlement)
    results = plan(dev, q, catalog)
    if fmt == Fmt.json:
        emit_json([r.model_dump() for r in results])
        return
    fitting = sum(r.verdict != "does-not-fit" for r in results)
    out.print(_results_table(results, f"Plan for {for_rich(dev.name)} (budget {dev.memory_budget_gb:g} GB, ctx {q.ctx}): {fitting}/{len(results)} fit", top))
    best, why = recommend(results, q)
    out.print(f"[bold]Recommendation:[/bold] {for_rich(why)}")
    if dev.calibration:
        out.print(f"  speed: {results[0].speed.method}", markup=False, highlight=False)
    line = _cloud_line(results)
    if line:
        out.print(f"  {line}")


@app.command("inspect")
def inspect_cmd(model: Annotated[str, typer.Argument(help="Path to a .gguf file (or hf://owner/repo/file.gguf).")],
                fmt: FormatOpt = Fmt.table) -> None:
    """What a GGUF file holds: architecture, tensor types and sizes (reads the header only).

    Example: slmplan inspect SmolLM2-135M-Instruct.Q4_1.gguf
    """
    from slmplan.inspect import inspect_model

    info = inspect_model(model)
    if fmt == Fmt.json:
        emit_json(info)
        return
    t = Table(title=f"{for_rich(info['name'])} ({for_rich(info['source'])})", show_header=False)
    for k in ("architecture", "file_type", "params", "layers", "embedding", "ffn", "heads", "kv_heads", "head_dim",
              "vocab", "context_length", "sliding_window", "tied_embeddings", "tensor_count", "tensor_bytes", "file_size",
              "gguf_version", "license"):
        t.add_row(k, for_rich(info.get(k)))
    out.print(t)
    tt = Table(title="Tensor types")
    for col in ("type", "tensors", "MiB"):
        tt.add_column(col)
    for name, (n, b) in sorted(info["types"].items(), key=lambda kv: -kv[1][1]):
        tt.add_row(for_rich(name), str(n), f"{b / 2**20:.2f}")
    out.print(tt)


@app.command("bench")
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
    repack: Annotated[Optional[int], typer.Option("--repack", help="llama.cpp's repacked CPU weights (llama-bench --repack): 1 on, 0 off. Default: on, and measured again with 0 if the CPU dies on an illegal instruction.")] = None,
    quant: Annotated[Optional[str], typer.Option("--quant", "-q", help="For a catalog id: which quant's cached GGUF to use.")] = None,
    calibrate: Annotated[bool, typer.Option("--calibrate", help="Store this machine's fitted speed constants; later 'fit/plan --device local' use them.")] = False,
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
    from slmplan.bench.runner import DEFAULT_TTFT_PROMPT, build_tests
    from slmplan.fileio import write_atomic
    from slmplan.schema.bench import BenchSettings

    runtime = P.check_runtime(runtime)
    if fmt is not None:
        fmt = P.check_choice(fmt, R.FORMATS, "--format")
    file_fmt = None
    if output:
        file_fmt = R.format_for_path(output) or (fmt if fmt in ("json", "csv", "md") else None)
        if file_fmt is None:
            raise BadInputError(f"cannot tell the format of -o {output}", "Use a .json, .csv or .md file name (or --format json)")
        from slmplan.fileio import check_writable_target

        check_writable_target(output, [model])  # before the benchmark, not after it; never over the model
    pps = P.parse_int_list(pp, "--pp", 0, 1 << 17)
    tgs = P.parse_int_list(tg, "--tg", 0, 1 << 16)
    depths = P.parse_int_list(depth, "--depth", 0, 1 << 20)
    tests = build_tests(pps, tgs, depths)
    if not tests and not ttft:
        raise BadInputError("nothing to measure: --pp and --tg are all 0 and --no-ttft is set", "Use e.g. --pp 512 --tg 128")
    P.check_range(reps, "--reps", 1, 1000, "5")
    P.check_range(batch_size, "--batch-size", 1, 1 << 17, "2048")
    P.check_range(ubatch_size, "--ubatch-size", 1, 1 << 17, "512")
    fa = P.check_choice(flash_attn, P.FLASH_ATTN, "--flash-attn")
    tk = P.check_choice(cache_type_k, P.KV_TYPES, "--cache-type-k")
    tv = P.check_choice(cache_type_v, P.KV_TYPES, "--cache-type-v")
    if tv not in ("f16", "f32", "bf16") and fa == "off":
        raise BadInputError("a quantized V cache needs flash attention", "Use --flash-attn on (or auto)")
    if prompt is not None and not prompt.strip():
        raise BadInputError("--prompt is empty", "Give a prompt text, or drop --prompt to use the built-in one")
    from slmplan.localdevice import cpu_info, detect_local

    cores = cpu_info()
    if threads is None:
        threads = cores["physical_cores"]
    P.check_range(threads, "--threads", 1, 4 * cores["logical_cores"], str(cores["physical_cores"]))
    max_ctx = max([t.n_prompt + t.n_gen + t.n_depth for t in tests] + [1024 if ttft else 1])
    if runtime == "onnx":
        from slmplan.bench.prepare import BenchTarget

        folder = P.resolve_onnx_dir(model)
        P.check_onnx_fits_ram(folder, max_ctx, force)
        target = BenchTarget(model, folder, None)
        if calibrate:
            raise BadInputError("--calibrate fits the llama.cpp speed model; it does not apply to --runtime onnx",
                                "Drop --calibrate")
    else:
        target = P.resolve_model(model, quant)
        P.check_fits_ram(target, max_ctx, batch_size, ubatch_size, fa, force)
    if repack not in (None, 0, 1):
        raise BadInputError(f"--repack must be 0 or 1, got {repack}", "Use --repack 0 (off) or --repack 1 (on)")
    settings = BenchSettings(threads=threads, n_batch=batch_size, n_ubatch=ubatch_size, flash_attn=fa, type_k=tk,
                             type_v=tv, reps=reps, warmup=warmup, use_mmap=mmap,
                             repack=None if repack is None else bool(repack))
    device = detect_local()
    run_, shipped = _bench_with_progress(model, target, tests, settings, device, (prompt or DEFAULT_TTFT_PROMPT) if ttft else None,
                                         runtime=runtime)
    if calibrate and not run_.interrupted and not run_.failure:
        from slmplan.bench.calibrate import calibrate as do_calibrate
        from slmplan.calibration_store import local_constants_path

        c = do_calibrate(run_, shipped)
        if c:
            lf = c.extra["local_fit"]
            err.print(f"Calibrated: decode x{lf.get('decode_scale', 1):.3f}, prefill x{lf.get('prefill_scale', 1):.3f} "
                      f"over {lf['rows']} stored measurement(s) -> {local_constants_path()}", markup=False, highlight=False)
    if output:
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
    if run_.interrupted:
        n = sum(len(r.samples) for r in run_.results)
        err.print(f"Interrupted: kept the {n} sample(s) measured so far.", markup=False, highlight=False)
        raise typer.Exit(130)
    _exit_if_failed(run_)


def _exit_if_failed(run_) -> None:
    """A benchmark that stopped early is a runtime failure (exit 1), even with the tests it kept."""
    if run_.failure:
        missing = ", ".join(m.test for m in run_.missing_tests)
        err.print(f"Error: {run_.runtime} benchmark failed: {run_.failure}. Kept the finished tests; missing: {missing}.",
                  markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _bench_with_progress(model, target, tests, settings, device, ttft_prompt, runtime="llama.cpp"):
    """Run the benchmark with a progress bar on stderr (shown only on a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from slmplan.bench.runner import run_benchmark

    console = Console(file=sys.stderr)
    names = [t.name for t in tests] + (["ttft"] if ttft_prompt else [])
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

        return run_benchmark(model, str(target.path), target.facts, tests, settings, device, ttft_prompt,
                            on_event=on_event, runtime=runtime)


@app.command("report")
def report_cmd(
    device: Annotated[Optional[str], typer.Option("--device", "-d", help="Built-in device id, 'local', or a device YAML path.")] = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="OUT.html, OUT.md or OUT.json (default: Markdown on stdout).")] = None,
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
) -> None:
    """A feasibility report for one device: ranked candidates, the recommendation, memory and speed charts,
    predicted vs measured, context-length effect, energy and CO2 against the cloud, privacy notes.

    Examples:

      slmplan report --device pixel-8 -o pixel8.html

      slmplan report --device local --bench bench.json -o report.html

      slmplan report --device iphone-15-pro --models llama-3.2-1b,qwen3-1.7b --grid france -o report.md

      slmplan report --device pixel-9 --use-case summarize --service "offline meeting-note summaries" -o r.html
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
    fmt = "md"
    if output:
        ext = os.path.splitext(output)[1].lower()
        fmt = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json"}.get(ext)
        if fmt is None:
            raise BadInputError(f"cannot tell the report format of -o {output}", "Use a .html, .md or .json file name")
        from slmplan.fileio import check_writable_target

        # before any work, and never over one of the report's own inputs
        report_inputs = [*(bench or []), device, catalog, *(models.split(",") if models else [])]
        check_writable_target(output, report_inputs)
    dev = _entitled(get_device(device), ios_entitlement)
    q, _, overridden = _uc_query(use_case, ctx, prompt, gen)
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


@app.command("demo")
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
    from slmplan.bench.runner import DEFAULT_TTFT_PROMPT, build_tests
    from slmplan.fileio import write_atomic
    from slmplan.localdevice import cpu_info, detect_local
    from slmplan.planner import plan, recommend
    from slmplan.report.build import build_report
    from slmplan.report.render import render
    from slmplan.schema.bench import BenchSettings

    P.check_range(reps, "--reps", 1, 100, "3")
    d = Path(out_dir)
    if d.exists() and not d.is_dir():
        raise BadInputError(f"--out {out_dir} is a file", "Pass a folder name")
    d.mkdir(parents=True, exist_ok=True)
    from slmplan.fileio import check_writable_target

    for name in (f"bench-{model}.json", "report.html", "report.md", "report.json"):
        check_writable_target(str(d / name))  # before the benchmark, not after it
    device = detect_local()
    q = _query(4096, 300, 200)
    ranked = plan(device, q)
    out.print(_results_table(ranked, f"1/3 Plan for this machine ({for_rich(device.name)}): top 5", limit=5))
    best, why = recommend(ranked, q)
    out.print(f"Recommendation: {clean(why)}", markup=False, highlight=False)
    target = P.resolve_model(model)
    tests = build_tests([512], [128], [0])
    P.check_fits_ram(target, 1024, 2048, 512, "auto", False)
    settings = BenchSettings(threads=cpu_info()["physical_cores"], n_batch=2048, n_ubatch=512, flash_attn="auto",
                             reps=reps, warmup=True)
    err.print(f"2/3 Benchmarking {target.path.name} with llama.cpp ({reps} repetitions)...", markup=False, highlight=False)
    run_, _ = _bench_with_progress(model, target, tests, settings, device, DEFAULT_TTFT_PROMPT)
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


hub_app = typer.Typer(help="The Hugging Face Hub: list a repo's GGUF files with a verdict for a device.\n\n"
                             "Example: slmplan hub list bartowski/SmolLM2-135M-Instruct-GGUF --device pixel-8",
                        no_args_is_help=True)
app.add_typer(hub_app, name="hub")


@hub_app.command("list")
def hub_list_cmd(
    repo: Annotated[str, typer.Argument(help="owner/repo on the Hugging Face Hub.")],
    device: Annotated[Optional[str], typer.Option("--device", "-d", help="Also give each file's verdict for this device.")] = None,
    ctx: CtxOpt = 4096,
    revision: Annotated[Optional[str], typer.Option("--revision", help="Branch, tag or commit (default: main).")] = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """The GGUF files of a Hub repo: quant type and size, and with --device the estimated memory and verdict.

    Reads the repo's file list (sizes) and one GGUF header (a few MiB, by HTTP range); nothing is downloaded.

    Example: slmplan hub list unsloth/gemma-3-270m-it-GGUF --device raspberry-pi-5-8gb
    """
    from slmplan.hub import list_gguf_files, remote_facts

    files, summary = list_gguf_files(repo, revision)
    if not files:
        raise BadInputError(f"{repo} has no .gguf files", "Pick a repository with GGUF files (their names end in .gguf)")
    rows = [{"file": f.name, "quant": f.quant, "size_bytes": f.size,
             "split": f"{f.split[0]}/{f.split[1]}" if f.split else None} for f in files]
    if device:
        from slmplan.devices import get_device
        from slmplan.planner import evaluate
        from slmplan.resolve import Candidate

        dev = get_device(device)
        q = _query(ctx, 300, 200)
        q.validate()
        # one header gives the architecture; each quant's weights follow llama.cpp's quant mix
        first = next((f for f in files if f.split is None or f.split[0] == 1), files[0])
        rev = f"@{revision}" if revision else ""
        facts = remote_facts(f"hf://{repo}{rev}/{first.name}")
        for row, f in zip(rows, files):
            if not f.quant:
                row["verdict"] = "unknown (quant type not in the file name)"
                continue
            exact = f.name == first.name
            r = evaluate(Candidate(facts, f.quant if not exact else (facts.file_quant or f.quant)), dev, q)
            row.update({"verdict": r.verdict, "total_bytes": r.memory.total_bytes, "budget_bytes": r.memory.budget_bytes,
                        "decode_tokens_per_s": r.speed.decode_tokens_per_s,
                        "weights": "exact (header read)" if exact else "estimate (quant mix of the same architecture)"})
    if fmt == Fmt.json:
        emit_json({"repo": repo, "gguf": summary, "files": rows})
        return
    t = Table(title=f"{for_rich(repo)}: {len(rows)} GGUF file(s)" + (f" on {for_rich(device)}, ctx {ctx}" if device else ""))
    cols = ["file", "quant", "size GiB"] + (["total GiB", "verdict", "decode tok/s"] if device else [])
    for c in cols:
        t.add_column(c)
    for row in rows:
        cells = [for_rich(row["file"]), for_rich(row["quant"] or "?"), gib(row["size_bytes"])]
        if device:
            v = row.get("verdict", "")
            style = VERDICT_STYLE.get(v, "")
            cells += [gib(row.get("total_bytes")), f"[{style}]{v}[/{style}]" if style else v,
                      fmt_num(row.get("decode_tokens_per_s"))]
        t.add_row(*cells)
    out.print(t)
    if summary:
        total = summary.get("total")
        out.print(clean(f"Hub summary: architecture {summary.get('architecture')}, "
                        + (f"{total / 1e9:.2f} B parameters, " if type(total) in (int, float) else "")
                        + f"context {summary.get('context_length')}"), markup=False, highlight=False)


@app.command("pull")
def pull_cmd(
    model: Annotated[str, typer.Argument(help="Catalog id (its hf_repo says where the GGUF files are).")],
    quant: Annotated[str, typer.Option("--quant", "-q", help="Quant type to download.")] = "Q4_K_M",
    revision: Annotated[Optional[str], typer.Option("--revision", help="Branch, tag or commit (default: main).")] = None,
) -> None:
    """Download a catalog model's GGUF into the standard Hugging Face cache (progress bar, resumable),
    so 'slmplan bench MODEL --quant Q' can run it.

    Example: slmplan pull smollm2-360m --quant Q4_K_M && slmplan bench smollm2-360m --quant Q4_K_M
    """
    from slmplan.hub import pull

    path = pull(model, quant, revision)
    out.print(clean(path), markup=False, highlight=False)


@app.command("convert")
def convert_cmd(
    model: Annotated[str, typer.Argument(help="A .gguf file (architectures: llama; mistral, qwen2, qwen3, phi3 untested).")],
    to: Annotated[str, typer.Option("--to", help="Target format: onnx (ONNX Runtime GenAI).")] = "onnx",
    precision: Annotated[str, typer.Option("--precision", "-p", help="int4 (MatMulNBits, block 32), fp16 or fp32.")] = "int4",
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Output folder (created; must not exist or be empty).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output folder.")] = False,
) -> None:
    """Convert a GGUF model to an ONNX Runtime GenAI model folder, offline (needs the 'convert' extra:
    torch CPU, transformers, onnx).

    The GGUF is dequantized with transformers, then onnxruntime-genai's model builder writes the ONNX
    model, genai_config.json and tokenizer. A quantized GGUF converted to int4 is quantized twice.

    Example: slmplan convert SmolLM2-135M-Instruct.Q4_1.gguf --to onnx --precision int4 -o smollm2-onnx
    """
    from slmplan.convert import convert

    if to.lower() != "onnx":
        raise BadInputError(f"--to {to} is not supported", "Use --to onnx")
    if not output:
        raise BadInputError("-o/--output is required", "Use e.g. -o model-onnx")
    t0 = time.time()
    with err_status("converting") as status:
        dest = convert(model, output, precision, force=force, on_step=lambda m: status(m))
    size = sum(f.stat().st_size for f in dest.iterdir() if f.is_file())
    out.print(f"Wrote {dest} ({size / 2**20:,.1f} MiB, {time.time() - t0:.0f} s). Benchmark it with: "
              f"slmplan bench {dest} --runtime onnx", markup=False, highlight=False)


class err_status:
    """A status line on stderr (spinner on a terminal, plain lines otherwise)."""

    def __init__(self, first: str) -> None:
        from rich.console import Console

        self.console = Console(file=sys.stderr)
        self.first = first
        self._status = None

    def __enter__(self):
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


from slmplan.cli.calibrate import calibrate_cmd  # noqa: E402
app.command("calibrate")(calibrate_cmd)


def _click_exceptions():
    """typer >= 0.26 vendors click as typer._click; older typer uses click itself."""
    try:
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions as cx
    return cx


def run() -> None:
    """Console entry point: one-line errors, exit 2 for bad input, 1 for failures."""
    try:
        rv = app(prog_name="slmplan", standalone_mode=False)
        sys.exit(rv if isinstance(rv, int) else 0)
    except SlmplanError as e:
        if debug_enabled():
            raise
        err.print(f"Error: {clean(e.one_line())}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err.print("Aborted.")
        sys.exit(130)
    except OSError as e:  # an OS error on a path no check above foresaw: still one line, never a traceback
        if debug_enabled():
            raise
        from slmplan.errors import from_os_error

        x = from_os_error(e)
        err.print(f"Error: {clean(x.one_line())}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(x.exit_code)
    except Exception as e:  # click usage errors (vendored or not); anything else is a bug: re-raise
        cx = _click_exceptions()
        if getattr(cx, "NoArgsIsHelpError", None) and isinstance(e, cx.NoArgsIsHelpError):
            sys.exit(0)  # typer already printed the help
        if not isinstance(e, cx.ClickException):
            raise
        ctx = getattr(e, "ctx", None)
        sub = ctx.command_path.split(" ", 1)[1] if ctx and " " in ctx.command_path else ""
        err.print(f"Error: {clean(e.format_message()).rstrip('.')}. Run 'slmplan {sub + ' ' if sub else ''}--help' for usage.",
                  markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("Interrupted.")
        sys.exit(130)


if __name__ == "__main__":
    run()
