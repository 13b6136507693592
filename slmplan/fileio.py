"""Small file and environment helpers shared across layers (imports nothing heavy).

Reading: ``read_regular`` opens only regular files (a FIFO would block forever, ``/dev/zero`` never
ends) and refuses files above a size cap that fits the kind of file. Writing: ``write_atomic``
writes a temporary file in the target's folder and renames it over the target, so a reader never sees
a half-written file; it replaces only a regular file (or nothing), never a device, FIFO or folder,
and never one of the command's input files. A symbolic link is written through: its target is
replaced and the link stays, as shell redirection does. A new file gets the usual mode (0666 minus
the umask, 0644 typically); an existing file keeps its mode.
"""

from __future__ import annotations

import errno
import importlib.metadata
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from slmplan.errors import BadInputError, RuntimeFailure

KIB, MIB = 1 << 10, 1 << 20
# Size caps per kind of file: far above any real one, low enough to refuse a wrong file at once.
MAX_PROFILE_BYTES = 1 * MIB  # a device profile is ~1 KiB
MAX_CATALOG_BYTES = 4 * MIB  # the bundled catalog is ~20 KiB; 4 MiB parses in a few seconds
MAX_BENCH_JSON_BYTES = 64 * MIB  # a bench result with many samples is ~10 KiB
MAX_STATE_BYTES = 16 * MIB  # slmplan's own cache files (calibration, bandwidth, Hub header index)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a regular file"


def os_reason(e: OSError) -> str:
    return e.strerror or str(e) or type(e).__name__


def _open_regular_fd(p: Path, error: type[BadInputError], hint: str, missing: str, is_dir: str,
                     not_regular: Callable[[str], str], cannot: str) -> tuple[int, os.stat_result]:
    """An open descriptor and its stat for a regular file; the messages name the caller's view of the file.

    ``not_regular`` builds the message from what the path really is (a FIFO, a directory, ...)."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer would otherwise block forever (no effect on files)
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise error(missing, "Check the path") from None
    except IsADirectoryError:
        raise error(is_dir, hint) from None
    except OSError as e:
        raise error(f"{cannot}: {os_reason(e)}", "Check the path and its permissions") from None
    try:
        st = os.fstat(fd)
    except OSError as e:
        os.close(fd)
        raise error(f"{cannot}: {os_reason(e)}", "Check the path and its permissions") from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise error(not_regular(_kind(st.st_mode)), hint)
    return fd, st


def read_regular(path: str | os.PathLike, what: str, max_bytes: int, error: type[BadInputError] = BadInputError,
                 hint: str = "Pass the path of a regular file") -> bytes:
    """The bytes of a regular file, refusing FIFOs, devices, folders and files above ``max_bytes``."""
    p = Path(path)
    cannot = f"cannot read {what} {p}"
    fd, st = _open_regular_fd(p, error, hint, missing=f"{what} {p} does not exist", is_dir=f"{what} {p} is a directory",
                              not_regular=lambda kind: f"{what} {p} is {kind}, not a regular file", cannot=cannot)
    try:
        if st.st_size > max_bytes:
            raise error(f"{what} {p} is {st.st_size / MIB:,.1f} MiB, more than any real one "
                        f"(at most {max_bytes / MIB:,.0f} MiB)", "Check that this is the right file")
        with os.fdopen(fd, "rb") as fh:
            fd = -1
            data = fh.read(max_bytes + 1)  # the file may grow while we read
    except OSError as e:
        raise error(f"{cannot}: {os_reason(e)}", "Check the path and its permissions") from None
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > max_bytes:
        raise error(f"{what} {p} is more than {max_bytes / MIB:,.0f} MiB", "Check that this is the right file")
    return data


def open_regular(path: str | os.PathLike, what: str, error: type[BadInputError] = BadInputError,
                 hint: str = "Pass the path of a regular file"):
    """A binary file object of a regular file (for header reads that bound themselves), else ``error``."""
    p = Path(path)
    fd, _ = _open_regular_fd(p, error, hint, missing=f"{p}: no such file", is_dir=f"{p} is a directory, not {what}",
                             not_regular=lambda kind: f"{p} is {kind}, not {what}", cannot=f"cannot read {p}")
    return os.fdopen(fd, "rb")


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _resolve_target(p: Path, shown: str) -> tuple[Path, os.stat_result | None]:
    """Follow a symbolic link to the file it names; (path to replace, its stat or None if absent)."""
    try:
        lst = os.lstat(p)
    except FileNotFoundError:
        return p, None
    except OSError as e:
        raise BadInputError(f"cannot write {shown}: {os_reason(e)}", "Choose another -o path") from None
    if stat.S_ISLNK(lst.st_mode):
        try:
            real = Path(os.path.realpath(p, strict=False))
            os.stat(p)  # ELOOP for a loop
        except FileNotFoundError:
            return real, None  # a dangling link: create the file it names, as '>' does
        except OSError as e:
            raise BadInputError(f"cannot write {shown}: {os_reason(e)}", "Choose another -o path") from None
        return real, os.stat(real)
    return p, lst


def check_writable_target(path: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """The file to replace for output ``path``, refused (before any long work) when it is a folder, a
    device or FIFO, one of the command's ``inputs``, or in a folder that is missing or not writable."""
    shown = str(path)
    p = Path(path).expanduser()
    target, st = _resolve_target(p, shown)
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise BadInputError(f"cannot write {shown}: it is a folder", "Pass a file name, e.g. -o bench.json")
        if not stat.S_ISREG(st.st_mode):
            raise BadInputError(f"cannot write {shown}: it is {_kind(st.st_mode)}; slmplan replaces only regular files",
                                "Pass the path of a regular file")
        if not os.access(target, os.W_OK):  # as shell redirection: a read-only file is not replaced
            raise BadInputError(f"cannot write {shown}: the file is read-only", "Choose another -o path or make it writable")
        for inp in inputs:
            if inp is None:
                continue
            try:
                ist = os.stat(Path(inp).expanduser())
            except (OSError, ValueError):
                continue  # not a file (a catalog id, a Hub path)
            if _same_file(st, ist):
                raise BadInputError(f"cannot write {shown}: it is this command's input {inp}, which would be overwritten",
                                    "Choose another -o path")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise BadInputError(f"cannot write {shown}: folder {parent} does not exist", "Create the folder or choose another -o path")
    _probe(parent, shown)
    return target


def _probe(parent: Path, shown: str) -> None:
    """Create and remove a temporary file: the only test that also catches read-only file systems and ACLs."""
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".slmplan-", suffix=".tmp")
    except OSError as e:
        raise BadInputError(f"cannot write {shown}: folder {parent}: {os_reason(e)}", "Choose a writable -o path") from None
    os.close(fd)
    os.unlink(tmp)


def _new_file_mode() -> int:
    try:  # Linux says it without changing it (setting it, below, races with other threads)
        with open("/proc/self/status") as fh:
            mask = next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: str | os.PathLike, data: str | bytes, inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Write via a temporary file in the same directory and rename: never a half-written file."""
    inputs = list(inputs)
    target = check_writable_target(path, inputs)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        old_mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        old_mode = None
    try:
        # a short temporary name: "<long name>.tmp" could pass the file system's name limit
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".slmplan-", suffix=".tmp")
    except OSError as e:
        raise BadInputError(f"cannot write {path}: {os_reason(e)}", "Choose a writable -o path") from None
    try:
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w", encoding=None if isinstance(data, bytes) else "utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, old_mode if old_mode is not None else _new_file_mode())
        os.replace(tmp, target)
    except OSError as e:
        _unlink(tmp)
        if e.errno == errno.ENAMETOOLONG:
            raise BadInputError(f"cannot write {path}: {os_reason(e)}", "Choose a shorter -o path") from None
        raise RuntimeFailure(f"cannot write {path}: {os_reason(e)}", "Free some space or choose another -o path") from None
    except BaseException:
        _unlink(tmp)
        raise
    return target


def _unlink(p: str) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def set_aside(path: Path, problem: str) -> None:
    """A corrupt state file: say so on stderr and rename it out of the way, so it is rebuilt."""
    bad = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, bad)
        moved = f"moved to {bad.name}"
    except OSError as e:
        moved = f"could not be moved aside ({os_reason(e)})"
    sys.stderr.write(f"Warning: {path} is corrupt ({problem}); {moved}, it will be rebuilt.\n")


def read_state(path: Path, max_bytes: int = MAX_STATE_BYTES) -> bytes | None:
    """One of slmplan's own state files: None when absent; set aside (and None) when unreadable."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise BadInputError(f"cannot read {path}: {os_reason(e)}", "Check the slmplan cache folder (SLMPLAN_CACHE_DIR)") from None
    try:
        return read_regular(path, "state file", max_bytes)
    except BadInputError as e:
        set_aside(path, e.message)
        return None


def package_versions(dists: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of the given distributions (absent ones are left out)."""
    out = {}
    for d in dists:
        try:
            out[d] = importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out
