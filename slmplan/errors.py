"""Errors that reach the user.

Every error carries a message (what is wrong) and a hint (what to do). The CLI prints
``Error: <message> <hint>`` on one line and exits 2 for bad input, 1 for runtime failures.
This module imports nothing from slmplan so every layer can raise these.

Library code names its Python parameters, never a CLI flag: ``ctx must be positive ... Use e.g.
ctx=4096``, with ``params=("ctx",)``. The CLI rewrites the listed names into its flags
(``--ctx ... Use e.g. --ctx 4096``) in one place, ``slmplan.cli.app``.
"""

from __future__ import annotations


class SlmplanError(Exception):
    """Base class. ``exit_code`` 2 = bad input, 1 = runtime failure."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None, *, params: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.params = params  # Python parameter names the text mentions (the CLI maps them to flags)

    def one_line(self) -> str:
        text = self.message.rstrip(".")
        if self.hint:
            hint = self.hint if self.hint.endswith(("?", "!", ".")) else self.hint + "."
            text = f"{text}. {hint}"
        else:
            text = f"{text}."
        return " ".join(text.split())


class BadInputError(SlmplanError):
    """The user gave something unusable: unknown id, bad value, bad file."""


class UnknownIdError(BadInputError):
    pass


class CatalogError(BadInputError):
    pass


class DeviceError(BadInputError):
    pass


class GGUFError(BadInputError):
    """A file that is not a readable GGUF (missing, truncated, corrupted)."""


class RuntimeFailure(SlmplanError):
    """Something failed while running (a runtime crashed, a measurement failed)."""

    exit_code = 1


class MissingExtraError(SlmplanError):
    """An optional dependency is not installed."""

    exit_code = 2

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python package '{package}', which is not installed",
            f"Install it with: pip install 'slmplan[{extra}]'",
        )


def debug_enabled() -> bool:
    """SLMPLAN_DEBUG=1 (or true/yes/on) shows tracebacks; 0, false, no, off and empty do not."""
    import os

    return os.environ.get("SLMPLAN_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


def from_os_error(e: OSError) -> SlmplanError:
    """An OS error on a path as a one-line error: bad input (exit 2) for what the path names, a
    runtime failure (exit 1) for what the system ran out of."""
    import errno

    where = f"{e.filename}: " if getattr(e, "filename", None) else ""
    reason = e.strerror or type(e).__name__
    if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EACCES,
                   errno.EPERM, errno.EROFS, errno.ENXIO):
        return BadInputError(f"{where}{reason}", "Check the path and its permissions")
    return RuntimeFailure(f"{where}{reason}", "Check the disk and the file system, then try again")


def env_float(name: str, lo: float, hi: float, meaning: str, hint: str) -> float | None:
    """A number from environment variable ``name``: None when unset or empty, else within ``lo``..``hi``
    (NaN and infinities refused) or a one-line BadInputError that says what it should be."""
    import os

    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        v = float(raw)
    except ValueError:
        v = float("nan")
    if not lo <= v <= hi:  # also refuses nan and inf
        raise BadInputError(f"{name}={raw[:40]!r} is not {meaning}", hint)
    return v
