"""catalog x device x estimators -> verdicts, a ranking and a recommendation."""

from __future__ import annotations

import math
from dataclasses import dataclass

from slmplan.catalog import facts, load_catalog
from slmplan.errors import BadInputError
from slmplan.estimate.energy import estimate_energy
from slmplan.estimate.memory import RuntimeSettings, estimate_memory
from slmplan.estimate.quants import quant_quality_rank
from slmplan.estimate.speed import (
    Hardware,
    estimate_speed,
    hardware_for,
    load_constants,
)
from slmplan.estimate.speed_constants import SpeedConstants
from slmplan.resolve import Candidate, resolve
from slmplan.schema.device import DeviceProfile
from slmplan.schema.estimate import FitResult

RUNTIMES = ("llama.cpp", "npu")
FITS_FRACTION = 0.8  # at most 80% of the budget: room for the app and for fragmentation
MIN_DECODE_TOKENS_PER_S = 10.0  # faster than people read; below it chat feels slow


@dataclass(frozen=True)
class Query:
    ctx: int = 4096
    n_prompt: int = 300
    n_gen: int = 200
    settings: RuntimeSettings = RuntimeSettings()
    min_decode_tokens_per_s: float = MIN_DECODE_TOKENS_PER_S
    runtime: str = "llama.cpp"  # or "npu": the device's NPU runtime (slmplan.estimate.npu)

    def validate(self) -> None:
        if self.ctx <= 0:
            raise BadInputError(f"--ctx must be a positive number of tokens, got {self.ctx}", "Use e.g. --ctx 4096")
        if self.ctx > 1 << 22:
            raise BadInputError(f"--ctx {self.ctx} is beyond any model's context", "Use at most 4194304")
        if self.n_prompt < 0 or self.n_gen <= 0:
            raise BadInputError("prompt tokens must be >= 0 and generated tokens > 0", "Use e.g. --prompt-tokens 300 --gen-tokens 200")
        if self.runtime not in RUNTIMES:
            raise BadInputError(f"unknown runtime '{self.runtime}' for speed predictions", f"Use one of: {', '.join(RUNTIMES)}")


def hardware(device: DeviceProfile, settings: RuntimeSettings | None = None) -> Hardware:
    return hardware_for(device, settings.repack if settings is not None else True)


def verdict(total: int, budget: int) -> str:
    if total <= FITS_FRACTION * budget:
        return "fits"
    return "tight" if total <= budget else "does-not-fit"


def evaluate(c: Candidate, device: DeviceProfile, q: Query, constants: SpeedConstants | None = None) -> FitResult:
    mem = estimate_memory(c.facts, c.quant, q.ctx, device.budget_bytes, q.settings)
    if c.computed:
        note = (f"{c.quant} is not a published variant of {c.facts.id} in the catalog: sizes computed with "
                "llama.cpp's quant-mix rules")
        mem = mem.model_copy(update={"notes": [note, *mem.notes], "weights_method": f"computed: {mem.weights_method}"})
    if q.runtime == "npu":
        from slmplan.estimate.npu import estimate_npu_speed

        speed = estimate_npu_speed(c.facts, device, q.n_prompt)
    else:
        speed = estimate_speed(c.facts, c.quant, hardware(device, q.settings), q.ctx, q.n_prompt, q.n_gen, constants)
    energy = estimate_energy(device, speed, q.n_prompt, q.n_gen)
    v = verdict(mem.total_bytes, mem.budget_bytes)
    return FitResult(model=c.facts.id, quant=c.quant, device=device.id, ctx=q.ctx, verdict=v, memory=mem,
                     speed=speed, energy=energy, params=c.facts.params, score=score(v, c, speed.decode_tokens_per_s, q))


def score(v: str, c: Candidate, decode_tps: float | None, q: Query) -> float | None:
    """Higher is better. Quality grows with log(parameters) and falls with aggressive quantization
    (a heuristic, documented in the README); too-slow decoding and tight memory are penalised."""
    if v == "does-not-fit":
        return None
    s = math.log2(max(c.facts.params, 1e7) / 1e7) * quant_quality_rank(c.quant)
    if decode_tps is not None and decode_tps < q.min_decode_tokens_per_s:
        s *= decode_tps / q.min_decode_tokens_per_s
    if v == "tight":
        s *= 0.9
    return round(s, 4)


def fit(model: str, device: DeviceProfile, quant: str | None = None, q: Query = Query(),
        catalog_path: str | None = None) -> list[FitResult]:
    q.validate()
    constants = local_constants(device)
    return [evaluate(c, device, q, constants) for c in resolve(model, quant, catalog_path)]


def local_constants(device: DeviceProfile) -> SpeedConstants | None:
    """For the local machine, constants from 'slmplan bench --calibrate' when present."""
    if device.id != "local":
        return None
    from slmplan.calibration_store import load_local_constants

    return load_local_constants() or None


def plan(device: DeviceProfile, q: Query = Query(), catalog_path: str | None = None) -> list[FitResult]:
    q.validate()
    cat = load_catalog(catalog_path)
    constants = local_constants(device) or load_constants()
    out = []
    for m in cat.models:
        f = facts(m)
        for v in m.variants:
            out.append(evaluate(Candidate(f, v.quant), device, q, constants))
    return rank(out)


def rank(results: list[FitResult]) -> list[FitResult]:
    order = {"fits": 0, "tight": 1, "does-not-fit": 2}
    return sorted(results, key=lambda r: (order[r.verdict], -(r.score or 0), r.memory.total_bytes))


def recommend(ranked: list[FitResult], q: Query = Query()) -> tuple[FitResult | None, str]:
    ok = [r for r in ranked if r.verdict != "does-not-fit"]
    if not ok:
        return None, "nothing in the catalog fits this device's memory budget at this context length"
    best = ok[0]
    head = 1 - best.memory.total_bytes / best.memory.budget_bytes
    why = (f"{best.model} {best.quant}: the highest quality-per-heuristic choice that {best.verdict.replace('-', ' ')} "
           f"({best.memory.total_bytes / 2**30:.2f} GiB of {best.memory.budget_bytes / 2**30:.2f} GiB, {head:.0%} headroom) "
           + (f"and decodes at ~{best.speed.decode_tokens_per_s:.0f} tokens/s" if best.speed.decode_tokens_per_s
              else "(decode speed unknown)"))
    if best.speed.decode_tokens_per_s and best.speed.decode_tokens_per_s < q.min_decode_tokens_per_s:
        why += f" (below {q.min_decode_tokens_per_s:.0f} tokens/s: nothing faster fits with better quality)"
    return best, why
