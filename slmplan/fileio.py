"""Small file and environment helpers shared across layers (imports nothing heavy)."""

from __future__ import annotations

import importlib.metadata
import os
import tempfile
from pathlib import Path

from slmplan.errors import BadInputError


def check_writable_target(path: str | os.PathLike) -> Path:
    """Refuse an output path whose folder is missing or which is a folder (before any long work)."""
    p = Path(path).expanduser()
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise BadInputError(f"cannot write {path}: folder {parent} does not exist", "Create the folder or choose another -o path")
    if p.is_dir():
        raise BadInputError(f"cannot write {path}: it is a folder", "Pass a file name, e.g. -o bench.json")
    return p


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write via a temporary file in the same directory and rename: never a half-written file."""
    p = check_writable_target(path)
    parent = p.parent if str(p.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{p.name}.", suffix=".tmp")
    except OSError as e:
        raise BadInputError(f"cannot write {path}: {e.strerror}", "Choose a writable -o path") from None
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


def package_versions(dists: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of the given distributions (absent ones are left out)."""
    out = {}
    for d in dists:
        try:
            out[d] = importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out
