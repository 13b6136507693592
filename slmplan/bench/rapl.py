"""CPU package energy from Linux RAPL (powercap), when the kernel exposes it and it is readable."""

from __future__ import annotations

import glob


class Rapl:
    """Counts the whole package (every process on it), so it is only meaningful on a quiet machine."""

    def __init__(self, root: str = "/sys/class/powercap") -> None:
        self.zones: list[tuple[str, int]] = []
        for z in sorted(glob.glob(f"{root}/intel-rapl:[0-9]*")):
            if z.count(":") != 1:
                continue  # sub-zones (core, uncore) are inside their package's count
            try:
                with open(f"{z}/energy_uj") as fh:
                    int(fh.read())
                with open(f"{z}/max_energy_range_uj") as fh:
                    rng = int(fh.read())
            except (OSError, ValueError):
                continue
            self.zones.append((f"{z}/energy_uj", rng))

    def read(self) -> list[int] | None:
        if not self.zones:
            return None
        out = []
        for path, _ in self.zones:
            with open(path) as fh:
                out.append(int(fh.read()))
        return out

    def joules(self, a: list[int] | None, b: list[int] | None) -> float | None:
        if a is None or b is None:
            return None
        total = 0
        for (x, y, (_, rng)) in zip(a, b, self.zones):
            total += y - x if y >= x else y + rng - x  # the counter wraps at max_energy_range_uj
        return total / 1e6
