"""The typer app: every command registered in one place, and ONE table from exception type to the
message and exit code the user sees. Command bodies live in one module per command group."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Optional

import typer

from slmplan.cli import bench, calibrate, catalog, convert, hub, plan, report
from slmplan.cli._options import PARAM_FLAGS
from slmplan.cli.output import err
from slmplan.errors import SlmplanError, debug_enabled
from slmplan.textsafe import clean

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
    help="Will this small language model fit this device, and how fast will it run?\n\n"
         "Examples:\n\n"
         "  slmplan fit llama-3.2-1b --device pixel-8\n\n"
         "  slmplan plan --device iphone-15-pro --ctx 2048\n\n"
         "  slmplan inspect model.gguf",
)
app.command("catalog")(catalog.catalog_cmd)
app.command("devices")(catalog.devices_cmd)
app.command("fit")(plan.fit_cmd)
app.command("plan")(plan.plan_cmd)
app.command("inspect")(plan.inspect_cmd)
app.command("bench")(bench.bench_cmd)
app.command("report")(report.report_cmd)
app.command("demo")(bench.demo_cmd)
app.add_typer(hub.hub_app, name="hub")
app.command("pull")(hub.pull_cmd)
app.command("convert")(convert.convert_cmd)
app.command("calibrate")(calibrate.calibrate_cmd)


def flags_for(text: str, params: tuple[str, ...]) -> str:
    """A library message in CLI terms: each named parameter becomes its flag (``ctx=4096`` -> ``--ctx 4096``,
    ``force=True`` -> ``--force``, ``ctx`` -> ``--ctx``). Names inside paths or longer words are left alone."""
    for name in params:
        flag = PARAM_FLAGS.get(name)
        if not flag:
            continue
        edge = rf"(?<![\w/.\-]){re.escape(name)}"
        text = re.sub(edge + r"=True\b", flag, text)
        text = re.sub(edge + r"=(?=[^\s=])", flag + " ", text)
        text = re.sub(edge + r"(?![\w/\-=])", flag, text)
    return text


def _slmplan_error(e: SlmplanError) -> tuple[Optional[str], int]:
    if debug_enabled():
        raise e
    return f"Error: {clean(flags_for(e.one_line(), e.params))}", e.exit_code


def _os_error(e: OSError) -> tuple[Optional[str], int]:
    # an OS error on a path no check foresaw: still one line, never a traceback
    if debug_enabled():
        raise e
    from slmplan.errors import from_os_error

    return _slmplan_error(from_os_error(e))


def _usage_error(e: typer.TyperException) -> tuple[Optional[str], int]:
    # click's usage errors (typer re-exports click's ClickException base as TyperException)
    if type(e).__name__ == "NoArgsIsHelpError":
        return None, 0  # the help is already printed
    ctx = getattr(e, "ctx", None)
    sub = ctx.command_path.split(" ", 1)[1] if ctx and " " in ctx.command_path else ""
    return f"Error: {clean(e.format_message()).rstrip('.')}. Run 'slmplan {sub + ' ' if sub else ''}--help' for usage.", 2


# Exception type -> (message for stderr or None, exit code). First match wins: subclasses first.
ERRORS: list[tuple[type[BaseException], Callable]] = [
    (SlmplanError, _slmplan_error),
    (typer.TyperException, _usage_error),
    (OSError, _os_error),
    (typer.Exit, lambda e: (None, e.exit_code)),
    (typer.Abort, lambda e: ("Aborted.", 130)),
    (KeyboardInterrupt, lambda e: ("Interrupted.", 130)),
]


def run() -> None:
    """Console entry point: one-line errors, exit 2 for bad input, 1 for failures."""
    try:
        rv = app(prog_name="slmplan", standalone_mode=False)
    except BaseException as e:  # noqa: BLE001 - mapped by the table; anything else is a bug and re-raised
        handler = next((h for t, h in ERRORS if isinstance(e, t)), None)
        if handler is None:
            raise
        message, code = handler(e)
        if message:
            err.print(message, markup=False, highlight=False, soft_wrap=True)
        sys.exit(code)
    sys.exit(rv if isinstance(rv, int) else 0)
