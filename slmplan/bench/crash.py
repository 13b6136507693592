"""Naming how a benchmark child ended: the signal, the step it was in, what llama.cpp said last."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

_NAMES = {
    signal.SIGILL: "SIGILL (illegal instruction)",
    signal.SIGSEGV: "SIGSEGV (segmentation fault)",
    signal.SIGBUS: "SIGBUS (bus error)",
    signal.SIGFPE: "SIGFPE (arithmetic error)",
    signal.SIGABRT: "SIGABRT (aborted)",
    signal.SIGTERM: "SIGTERM (terminated)",
}


NATIVE_CRASH_SIGNALS = frozenset({"SIGILL", "SIGSEGV", "SIGBUS"})


@dataclass(frozen=True)
class ChildExit:
    """How the child process ended, when it did not finish its work."""

    returncode: int | None
    signal_name: str | None  # 'SIGILL', ... (None: not killed by a signal)
    description: str  # 'SIGILL (illegal instruction)', 'exit code 3', ...
    oom_killed: bool = False

    @property
    def illegal_instruction(self) -> bool:
        return self.signal_name == "SIGILL"

    @property
    def native_crash(self) -> bool:
        """Killed by the CPU for what native code did (illegal instruction, bad memory access): what
        llama.cpp's AMX kernels do on some Xeon VMs (SIGILL on some, SIGSEGV on others)."""
        return self.signal_name in NATIVE_CRASH_SIGNALS


def oom_kill_count() -> int | None:
    """The cgroup's count of OOM kills (cgroup v2 memory.events), to tell an OOM kill from other SIGKILLs."""
    try:
        for line in Path("/sys/fs/cgroup/memory.events").read_text().splitlines():
            key, _, val = line.partition(" ")
            if key == "oom_kill":
                return int(val)
    except (OSError, ValueError):
        return None
    return None


def describe_exit(returncode: int | None, oom_before: int | None = None, oom_after: int | None = None) -> ChildExit:
    if returncode is None:
        return ChildExit(None, None, "it stopped responding")
    if returncode >= 0:
        return ChildExit(returncode, None, f"it exited with code {returncode} before finishing")
    try:
        sig = signal.Signals(-returncode)
    except ValueError:
        return ChildExit(returncode, None, f"it was killed by signal {-returncode}")
    oom = oom_before is not None and oom_after is not None and oom_after > oom_before
    if sig == signal.SIGKILL:
        text = ("it was killed by the out-of-memory killer (SIGKILL)" if oom
                else "it was killed (SIGKILL; most often the out-of-memory killer)")
        return ChildExit(returncode, sig.name, text, oom)
    return ChildExit(returncode, sig.name, f"it died from {_NAMES.get(sig, sig.name)}", oom)
