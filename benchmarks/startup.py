"""Start-up time of the CLI against the bare import of its two UI libraries.

Runs ``slmplan --help`` (and ``slmplan catalog``) and ``python -c "import typer, rich"`` alternately in
fresh processes, several rounds, and prints each command's median wall time and the ratio of the
medians. Only the ratio means something (the same machine, the same moment); absolute times move
with the machine and its load.

    python benchmarks/startup.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15, help="alternating rounds (default 15)")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    py = sys.executable
    cmds = {
        "import typer, rich": [py, "-c", "import typer, rich"],
        "slmplan --help": [py, "-m", "slmplan", "--help"],
        "slmplan catalog": [py, "-m", "slmplan", "catalog"],
    }
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for cmd in cmds.values():  # warm the file cache and .pyc files; not counted
        _time(cmd, env)
    for i in range(args.rounds):
        order = list(cmds) if i % 2 == 0 else list(reversed(cmds))
        for name in order:
            times[name].append(_time(cmds[name], env))
    base = statistics.median(times["import typer, rich"])
    print(f"{args.rounds} alternating rounds, median wall time per fresh process ({py}):")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<20} {med * 1000:7.1f} ms   x{med / base:.2f}")


if __name__ == "__main__":
    main()
