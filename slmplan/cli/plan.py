"""`slmplan fit`, `slmplan plan`, `slmplan inspect`: estimates for models on devices, and GGUF contents."""

from typing import Annotated, Optional

import typer

from slmplan.cli._options import (
    CatalogOpt,
    DeviceOpt,
    EntOpt,
    FaOpt,
    Fmt,
    FormatOpt,
    PleOpt,
    QCtxOpt,
    QGenOpt,
    QPromptOpt,
    RepackOpt,
    SpeedRuntimeOpt,
    SwaOpt,
    TableOrJson,
    TableOrJsonOpt,
    UseCaseOpt,
    entitled,
    quant_option,
    uc_query,
    with_per_layer_embd,
)
from slmplan.cli.output import cloud_line, emit, out, results_table
from slmplan.errors import BadInputError
from slmplan.textsafe import for_rich


def fit_cmd(model: Annotated[str, typer.Argument(help="Catalog id, path to a .gguf file, or hf://owner/repo/file.gguf.")],
            device: DeviceOpt,
            quant: Annotated[Optional[str], quant_option("One quant variant (default: all of the model's variants).")] = None,
            ctx: QCtxOpt = None, fmt: FormatOpt = Fmt.table, catalog: CatalogOpt = None,
            prompt_tokens: QPromptOpt = None, gen_tokens: QGenOpt = None, swa_full: SwaOpt = True, flash_attn: FaOpt = False,
            use_case: UseCaseOpt = None, ios_entitlement: EntOpt = False, per_layer_embd: PleOpt = "resident",
            runtime: SpeedRuntimeOpt = "llama.cpp", repack: RepackOpt = None) -> None:
    """Does MODEL fit DEVICE? Memory, speed and energy for each quant variant.

    Examples: slmplan fit llama-3.2-1b --device pixel-8; slmplan fit model.gguf --device local --ctx 8192
    """
    from slmplan.devices import get_device
    from slmplan.planner import fit

    q = uc_query(use_case, ctx, prompt_tokens, gen_tokens, swa_full, flash_attn)[0]
    q = with_per_layer_embd(q, per_layer_embd, repack, runtime=runtime)
    base_dev = get_device(device)
    dev = entitled(base_dev, ios_entitlement)
    results = fit(model, dev, quant, q, catalog)
    if base_dev.memory_budget_gb_entitled is not None:  # iOS: show the other budget's verdicts too
        from slmplan.entitlement import annotate

        other = fit(model, base_dev if ios_entitlement else entitled(base_dev, True), quant, q, catalog)
        results = annotate(results, other, base_dev, ios_entitlement)

    def table() -> None:
        out.print(results_table(results, f"{for_rich(model)} on {for_rich(dev.name)} (ctx {q.ctx})"))
        for n in sorted({n for r in results for n in r.memory.notes}):
            out.print(f"  note: {for_rich(n)}")
        out.print(f"  speed: {results[0].speed.method}; bound: {results[0].speed.bound}")
        line = cloud_line(results)
        if line:
            out.print(f"  {line}")

    emit(fmt, [r.model_dump() for r in results], table)


def plan_cmd(device: DeviceOpt, ctx: QCtxOpt = None, fmt: FormatOpt = Fmt.table, catalog: CatalogOpt = None,
             top: Annotated[int, typer.Option("--top", help="Rows in the table (JSON always lists all).")] = 15,
             prompt_tokens: QPromptOpt = None, gen_tokens: QGenOpt = None, swa_full: SwaOpt = True, flash_attn: FaOpt = False,
             use_case: UseCaseOpt = None, ios_entitlement: EntOpt = False,
             task: Annotated[Optional[str], typer.Option("--task", help="chat, summarize or code: how the published benchmarks are weighted in the ranking.")] = None,
             per_layer_embd: PleOpt = "resident", runtime: SpeedRuntimeOpt = "llama.cpp", repack: RepackOpt = None) -> None:
    """Rank every catalog model/quant for DEVICE by published quality (within one source) and recommend one.

    Examples: slmplan plan --device raspberry-pi-5-8gb; slmplan plan --device local --task code --format json
    """
    from slmplan.devices import get_device
    from slmplan.planner import plan, recommend

    q = uc_query(use_case, ctx, prompt_tokens, gen_tokens, swa_full, flash_attn)[0]
    q = with_per_layer_embd(q, per_layer_embd, repack, task=task, runtime=runtime)
    if top <= 0:
        raise BadInputError(f"--top must be positive, got {top}", "Use e.g. --top 15")
    dev = entitled(get_device(device), ios_entitlement)
    results = plan(dev, q, catalog)

    def table() -> None:
        fitting = sum(r.verdict != "does-not-fit" for r in results)
        out.print(results_table(results, f"Plan for {for_rich(dev.name)} (budget {dev.memory_budget_gb:g} GB, ctx {q.ctx}): {fitting}/{len(results)} fit", top))
        best, why = recommend(results, q)
        out.print(f"[bold]Recommendation:[/bold] {for_rich(why)}")
        if dev.calibration:
            out.print(f"  speed: {results[0].speed.method}", markup=False, highlight=False)
        line = cloud_line(results)
        if line:
            out.print(f"  {line}")

    emit(fmt, [r.model_dump() for r in results], table)


def inspect_cmd(model: Annotated[str, typer.Argument(help="Path to a .gguf file (or hf://owner/repo/file.gguf).")],
                fmt: TableOrJsonOpt = TableOrJson.table) -> None:
    """What a GGUF file holds: architecture, tensor types and sizes (reads the header only).

    Example: slmplan inspect SmolLM2-135M-Instruct.Q4_1.gguf
    """
    from slmplan.inspect import inspect_model

    info = inspect_model(model)

    def table() -> None:
        from rich.table import Table

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

    emit(fmt, info, table)
