"""Options shared by several commands, declared once. Each command module takes these aliases, so a
flag's name, short form and type cannot drift between commands.

Options whose help depends on the command (--device, --output, --quant) are built by a function
that fixes the flag names and takes the help text.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer

from slmplan.usecase import HELP as _UC_HELP  # light: no planner import


class Fmt(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


class TableOrJson(str, Enum):
    """For output that is not a list of flat rows (inspect): no CSV."""

    table = "table"
    json = "json"


def device_option(help: str = "Built-in device id, 'local', or a device YAML path.") -> Any:
    return typer.Option("--device", "-d", help=help)


def output_option(help: str) -> Any:
    return typer.Option("--output", "-o", help=help)


def quant_option(help: str) -> Any:
    return typer.Option("--quant", "-q", help=help)


FormatOpt = Annotated[Fmt, typer.Option("--format", "-f", help="table for people, json or csv for scripts.")]
TableOrJsonOpt = Annotated[TableOrJson, typer.Option("--format", "-f", help="table for people, json for scripts.")]
CatalogOpt = Annotated[Optional[str], typer.Option("--catalog", help="Model catalog YAML (default: the bundled model_catalog.yaml).")]
DeviceOpt = Annotated[str, device_option()]
CtxOpt = Annotated[int, typer.Option("--ctx", help="Context length in tokens (KV cache size).")]
PromptOpt = Annotated[int, typer.Option("--prompt-tokens", help="Prompt tokens of one query (energy, time to first token).")]
GenOpt = Annotated[int, typer.Option("--gen-tokens", help="Generated tokens of one query.")]
RevisionOpt = Annotated[Optional[str], typer.Option("--revision", help="Branch, tag or commit (default: main).")]
SwaOpt = Annotated[bool, typer.Option("--swa-full/--no-swa-full", help="Full-size sliding-window KV cache (llama-cpp-python's default) or llama-server's smaller one.")]
FaOpt = Annotated[bool, typer.Option("--flash-attn/--no-flash-attn", help="Flash attention (smaller compute buffer at long contexts).")]
# the query of fit/plan/report: a use case's preset, each length overridable
UseCaseOpt = Annotated[Optional[str], typer.Option("--use-case", help=_UC_HELP + " Default: 300 + 200 tokens, ctx 4096.")]
QCtxOpt = Annotated[Optional[int], typer.Option("--ctx", help="Context length in tokens (KV cache size). Default: the use case's, else 4096.")]
QPromptOpt = Annotated[Optional[int], typer.Option("--prompt-tokens", help="Prompt tokens of one query (default: the use case's, else 300).")]
QGenOpt = Annotated[Optional[int], typer.Option("--gen-tokens", help="Generated tokens of one query (default: the use case's, else 200).")]
PleOpt = Annotated[str, typer.Option("--per-layer-embd", help="Gemma 3n/4 per-layer embeddings: resident (llama.cpp on CPU) or mapped (read from storage, as mobile runtimes do).")]
SpeedRuntimeOpt = Annotated[str, typer.Option("--runtime", help="Speed of llama.cpp (default) or npu: the device's NPU runtime.")]
RepackOpt = Annotated[Optional[int], typer.Option(
    "--repack", help="llama.cpp's repacked CPU weights (llama-bench --repack): 1 (default) counts the extra copy llama.cpp "
                     "makes on the device's CPU, 0 plans for running without it.")]
EntOpt = Annotated[bool, typer.Option("--ios-entitlement", help="iOS/iPadOS: plan with the budget of Apple's increased-memory-limit entitlement.")]

# Python parameter name (as library errors name it, see slmplan.errors) -> this CLI's flag.
PARAM_FLAGS: dict[str, str] = {
    "ctx": "--ctx", "n_prompt": "--prompt-tokens", "n_gen": "--gen-tokens", "quant": "--quant",
    "catalog_path": "--catalog", "top": "--top", "queries_per_day": "--queries-per-day", "power_w": "--power-w",
    "grid_value": "--grid-intensity", "precision": "--precision", "out": "-o", "force": "--force",
    "prompt_tokens": "--prompt-tokens", "gen_tokens": "--gen-tokens", "service": "--service", "use_case": "--use-case",
    "runtime": "--runtime", "pp": "--pp", "tg": "--tg", "depth": "--depth", "reps": "--reps", "threads": "--threads",
    "n_batch": "--batch-size", "n_ubatch": "--ubatch-size", "flash_attn": "--flash-attn", "type_k": "--cache-type-k",
    "type_v": "--cache-type-v", "prompt": "--prompt",
}


def query(ctx: int, prompt: int, gen: int, swa_full: bool = True, flash_attn: bool = False):
    """The planner's Query from the shared options."""
    from slmplan.estimate.memory import RuntimeSettings
    from slmplan.planner import Query

    return Query(ctx=ctx, n_prompt=prompt, n_gen=gen, settings=RuntimeSettings(swa_full=swa_full, flash_attn=flash_attn))


def uc_query(use_case, ctx, prompt, gen, swa_full: bool = True, flash_attn: bool = False):
    """(Query, preset, overridden names) from --use-case and the length options."""
    from slmplan.estimate.memory import RuntimeSettings
    from slmplan.planner import Query
    from slmplan.usecase import build_query

    return build_query(use_case, ctx, prompt, gen, Query(settings=RuntimeSettings(swa_full=swa_full, flash_attn=flash_attn)))


def entitled(dev, ios_entitlement: bool):
    """The device with the iOS increased-memory-limit budget when --ios-entitlement is given."""
    from slmplan.entitlement import entitled_device

    return entitled_device(dev) if ios_entitlement else dev


def with_per_layer_embd(q, per_layer_embd: str, repack: int | None = None, **changes):
    """The query with --per-layer-embd, --repack (and other Query fields) set, validated."""
    from dataclasses import replace

    from slmplan.errors import BadInputError

    if per_layer_embd not in ("resident", "mapped"):
        raise BadInputError(f"--per-layer-embd must be resident or mapped, got '{per_layer_embd}'", "Use --per-layer-embd mapped")
    if repack not in (None, 0, 1):
        raise BadInputError(f"--repack must be 0 or 1, got {repack}", "Use --repack 0 (off) or --repack 1 (on)")
    settings = replace(q.settings, per_layer_embd=per_layer_embd, repack=q.settings.repack if repack is None else bool(repack))
    q = replace(q, settings=settings, **changes)
    q.validate()
    return q
