"""`slmplan catalog` and `slmplan devices`: what the planner knows about models and devices."""

from typing import Annotated

import typer

from slmplan.cli._options import CatalogOpt, Fmt, FormatOpt
from slmplan.cli.output import emit, err, fmt_num, out
from slmplan.textsafe import clean, for_rich


def catalog_cmd(fmt: FormatOpt = Fmt.table, catalog: CatalogOpt = None) -> None:
    """Every model in the catalog with its quant variants.

    Example: slmplan catalog --format json
    """
    from slmplan.catalog import catalog_summary, facts, load_catalog

    cat = load_catalog(catalog)

    def table() -> None:
        from rich.table import Table

        t = Table(title=f"Model catalog ({len(cat.models)} models)")
        for col in ("id", "params", "layers", "ctx", "KV heads", "license", "quants (weights GiB)"):
            t.add_column(col)
        for m in cat.models:
            f = facts(m)
            qs = ", ".join(f"{v.quant} {f.weights_bytes(v.quant) / 2**30:.2f}" for v in m.variants)
            t.add_row(m.id, f"{f.params / 1e9:.2f}B", str(m.layers), str(m.context_length), f"{m.kv_heads}/{m.heads}", for_rich(m.license), qs)
        out.print(t)

    def rows():  # CSV: one row per (model, variant)
        for m in catalog_summary(cat):
            for v in m["variants"]:
                yield {**{k: x for k, x in m.items() if k != "variants"}, **{f"variant.{k}": x for k, x in v.items()}}

    emit(fmt, lambda: catalog_summary(cat), table, rows)


def devices_cmd(local: Annotated[bool, typer.Option("--local", help="Detect this machine instead of listing the built-in profiles.")] = False,
                fmt: FormatOpt = Fmt.table) -> None:
    """Built-in device profiles, or this machine with --local.

    Examples: slmplan devices; slmplan devices --local --format json
    """
    from slmplan.devices import builtin_devices
    from slmplan.localdevice import detect_local, repack_crash

    crash = None
    if local:
        err.print("[dim]detecting this machine (first run measures memory bandwidth)...[/dim]")
        devs = [detect_local()]
        crash = repack_crash()
    else:
        devs = list(builtin_devices())
    from slmplan.estimate.extra_bufts import describe_extra_buffer_types

    def table() -> None:
        from rich.table import Table

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
            if crash:
                out.print(f"  Warning: llama.cpp crashed here with repacking on ({clean(crash['what'])}; slmplan bench, "
                          f"{crash['when']}): run it with repacking off (--repack 0, --no-repack)", markup=False, highlight=False)

    rows = [d.contract_dict() for d in devs]
    if local:
        rows[0]["llama_cpp_extra_buffer_types"] = describe_extra_buffer_types(devs[0].cpu_features)
        rows[0]["llama_cpp_repack_crash"] = crash
    emit(fmt, rows if not local else rows[0], table, lambda: rows)
