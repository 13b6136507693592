"""catalog x device x estimators -> verdicts, a ranking and a recommendation."""

from __future__ import annotations

import math
from dataclasses import dataclass

from slmplan.catalog import facts, load_catalog
from slmplan.errors import BadInputError
from slmplan.estimate.energy import estimate_energy
from slmplan.estimate.memory import RuntimeSettings, estimate_memory
from slmplan.estimate.quants import quant_quality_rank
from slmplan.estimate.speed import Hardware, estimate_speed, load_constants
from slmplan.resolve import Candidate, resolve
from slmplan.schema.device import DeviceProfile
from slmplan.schema.estimate import FitResult, Verdict

FITS_FRACTION = 0.8  # at most 80% of the budget: room for the app and for fragmentation
MIN_DECODE_TOKENS_PER_S = 10.0  # faster than people read; below it chat feels slow


@dataclass(frozen=True)
class Query:
    """What is asked of the model: context length ``ctx`` (KV cache size), one query's ``n_prompt`` prompt
    and ``n_gen`` generated tokens (energy, time to first token), runtime ``settings``, and the decode
    speed below which a model counts as too slow for chat."""

    ctx: int = 4096
    n_prompt: int = 300
    n_gen: int = 200
    settings: RuntimeSettings = RuntimeSettings()
    min_decode_tokens_per_s: float = MIN_DECODE_TOKENS_PER_S

    def validate(self) -> None:
        """Raise BadInputError (naming the field) unless the values are usable."""
        if self.ctx <= 0:
            raise BadInputError(f"ctx must be a positive number of tokens, got {self.ctx}", "Use e.g. ctx=4096",
                                params=("ctx",))
        if self.ctx > 1 << 22:
            raise BadInputError(f"ctx={self.ctx} is beyond any model's context", "Use at most ctx=4194304", params=("ctx",))
        if self.n_prompt < 0 or self.n_gen <= 0:
            raise BadInputError(f"n_prompt must be >= 0 and n_gen > 0, got {self.n_prompt} and {self.n_gen}",
                                "Use e.g. n_prompt=300 n_gen=200", params=("n_prompt", "n_gen"))


def hardware(device: DeviceProfile) -> Hardware:
    return Hardware(device.effective_backend, device.memory_bandwidth_gbs, device.cpu_gflops, device.gpu_tflops)


def verdict(total: int, budget: int) -> Verdict:
    if total <= FITS_FRACTION * budget:
        return "fits"
    return "tight" if total <= budget else "does-not-fit"


def evaluate(c: Candidate, device: DeviceProfile, q: Query, constants: dict | None = None) -> FitResult:
    mem = estimate_memory(c.facts, c.quant, q.ctx, device.budget_bytes, q.settings, device.cpu_features,
                          device.effective_backend)
    speed = estimate_speed(c.facts, c.quant, hardware(device), q.ctx, q.n_prompt, q.n_gen, constants)
    energy = estimate_energy(device, speed, q.n_prompt, q.n_gen)
    v = verdict(mem.total_bytes, mem.budget_bytes)
    return FitResult(model=c.facts.id, quant=c.quant, device=device.id, ctx=q.ctx, verdict=v, memory=mem,
                     speed=speed, energy=energy, params=c.facts.params, score=score(v, c, speed.decode_tokens_per_s, q))


def score(v: str, c: Candidate, decode_tps: float, q: Query) -> float | None:
    """Higher is better. Quality grows with log(parameters) and falls with aggressive quantization
    (a heuristic, documented in the README); too-slow decoding and tight memory are penalised."""
    if v == "does-not-fit":
        return None
    s = math.log2(max(c.facts.params, 1e7) / 1e7) * quant_quality_rank(c.quant)
    if decode_tps < q.min_decode_tokens_per_s:
        s *= decode_tps / q.min_decode_tokens_per_s
    if v == "tight":
        s *= 0.9
    return round(s, 4)


def fit(model: str, device: DeviceProfile, quant: str | None = None, q: Query = Query(),
        catalog_path: str | None = None) -> list[FitResult]:
    """Memory, speed, energy and verdict of ``model`` (catalog id, .gguf path or hf://owner/repo/file.gguf)
    on ``device``, one FitResult per quant variant (only ``quant`` when given)."""
    q.validate()
    constants = local_constants(device)
    return [evaluate(c, device, q, constants) for c in resolve(model, quant, catalog_path)]


def local_constants(device: DeviceProfile) -> dict | None:
    """For the local machine, constants from 'slmplan bench --calibrate' when present."""
    if device.id != "local":
        return None
    from slmplan.calibration_store import load_local_constants

    return load_local_constants() or None


def plan(device: DeviceProfile, q: Query = Query(), catalog_path: str | None = None) -> list[FitResult]:
    """Every (model, quant) of the catalog on ``device``, ranked: fitting first, then by score."""
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
    """The best of ``plan``'s ranking and a one-sentence reason (None and the reason when nothing fits)."""
    ok = [r for r in ranked if r.verdict != "does-not-fit"]
    if not ok:
        return None, "nothing in the catalog fits this device's memory budget at this context length"
    best = ok[0]
    head = 1 - best.memory.total_bytes / best.memory.budget_bytes
    why = (f"{best.model} {best.quant}: the highest quality-per-heuristic choice that {best.verdict.replace('-', ' ')} "
           f"({best.memory.total_bytes / 2**30:.2f} GiB of {best.memory.budget_bytes / 2**30:.2f} GiB, {head:.0%} headroom) "
           f"and decodes at ~{best.speed.decode_tokens_per_s:.0f} tokens/s")
    if best.speed.decode_tokens_per_s < q.min_decode_tokens_per_s:
        why += f" (below {q.min_decode_tokens_per_s:.0f} tokens/s: nothing faster fits with better quality)"
    return best, why
