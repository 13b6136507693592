"""`slmplan hub list` and `slmplan pull`: GGUF files on the Hugging Face Hub."""

from typing import Annotated, Optional

import typer

from slmplan.cli._options import CtxOpt, Fmt, FormatOpt, RevisionOpt, device_option, quant_option, query
from slmplan.cli.output import VERDICT_STYLE, emit, fmt_num, gib, out
from slmplan.textsafe import clean, for_rich

hub_app = typer.Typer(help="The Hugging Face Hub: list a repo's GGUF files with a verdict for a device.\n\n"
                           "Example: slmplan hub list bartowski/SmolLM2-135M-Instruct-GGUF --device pixel-8",
                      no_args_is_help=True, rich_markup_mode=None)


@hub_app.command("list")
def hub_list_cmd(
    repo: Annotated[str, typer.Argument(help="owner/repo on the Hugging Face Hub.")],
    device: Annotated[Optional[str], device_option("Also give each file's verdict for this device.")] = None,
    ctx: CtxOpt = 4096,
    revision: RevisionOpt = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """The GGUF files of a Hub repo: quant type and size, and with --device the estimated memory and verdict.

    Reads the repo's file list (sizes) and one GGUF header (a few MiB, by HTTP range); nothing is downloaded.

    Example: slmplan hub list unsloth/gemma-3-270m-it-GGUF --device raspberry-pi-5-8gb
    """
    from slmplan.planner import repo_files_with_verdicts

    dev = None
    if device:
        from slmplan.devices import get_device

        dev = get_device(device)
    data = repo_files_with_verdicts(repo, revision, dev, query(ctx, 300, 200))
    rows, summary = data["files"], data["gguf"]

    def table() -> None:
        from rich.table import Table

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

    emit(fmt, data, table, lambda: rows)


def pull_cmd(
    model: Annotated[str, typer.Argument(help="Catalog id (its hf_repo says where the GGUF files are).")],
    quant: Annotated[str, quant_option("Quant type to download.")] = "Q4_K_M",
    revision: RevisionOpt = None,
) -> None:
    """Download a catalog model's GGUF into the standard Hugging Face cache (progress bar, resumable),
    so 'slmplan bench MODEL --quant Q' can run it.

    Example: slmplan pull smollm2-360m --quant Q4_K_M && slmplan bench smollm2-360m --quant Q4_K_M
    """
    from slmplan.hub import pull

    path = pull(model, quant, revision)
    out.print(clean(path), markup=False, highlight=False)
