"""catalog x device x estimators -> verdicts, a ranking and a recommendation."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from slmplan.arch import check_estimable
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
from slmplan.quality import TASKS, choose_source, figure
from slmplan.resolve import Candidate, is_gguf_path, resolve
from slmplan.schema.device import DeviceProfile
from slmplan.schema.estimate import FitResult, Verdict

RUNTIMES = ("llama.cpp", "npu")
# --runtime npu runs the NPU runtime's own 4-bit format (w4a16, Q4NX, int4: 4-bit weights with per-group
# scales), not a GGUF variant: a plan without --quant sizes each model once, as llama.cpp's Q4_0 (4.5 bits
# per weight, the same figure the NPU speed estimate reads)
NPU_QUANT = "Q4_0"
FITS_FRACTION = 0.8  # at most 80% of the budget: room for the app and for fragmentation
MIN_DECODE_TOKENS_PER_S = 10.0
PUBLISHED_SCORE_RESOLUTION = 0.5  # benchmark points


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
    task: str | None = None  # chat | summarize | code: how the published benchmarks are weighted
    runtime: str = "llama.cpp"  # or "npu": the device's NPU runtime (slmplan.estimate.npu)

    def validate(self) -> None:
        """Raise BadInputError (naming the field) unless the values are usable."""
        if self.ctx <= 0:
            raise BadInputError(f"ctx must be a positive number of tokens, got {self.ctx}", "Use e.g. ctx=4096",
                                params=("ctx",))
        if self.ctx > 1 << 22:
            raise BadInputError(f"ctx={self.ctx} is beyond any model's context", "Use at most ctx=4194304", params=("ctx",))
        if self.task is not None and self.task not in TASKS:
            raise BadInputError(f"unknown task '{self.task}'", f"Use one of: {', '.join(TASKS)}")
        if self.n_prompt < 0 or self.n_gen <= 0:
            raise BadInputError(f"n_prompt must be >= 0 and n_gen > 0, got {self.n_prompt} and {self.n_gen}",
                                "Use e.g. n_prompt=300 n_gen=200", params=("n_prompt", "n_gen"))
        if self.runtime not in RUNTIMES:
            raise BadInputError(f"unknown runtime '{self.runtime}' for speed predictions", f"Use one of: {', '.join(RUNTIMES)}",
                                params=("runtime",))


def hardware(device: DeviceProfile, settings: RuntimeSettings | None = None) -> Hardware:
    return hardware_for(device, settings.repack if settings is not None else True)


def verdict(total: int, budget: int) -> Verdict:
    if total <= FITS_FRACTION * budget:
        return "fits"
    return "tight" if total <= budget else "does-not-fit"


def evaluate(c: Candidate, device: DeviceProfile, q: Query, constants: SpeedConstants | None = None) -> FitResult:
    check_estimable(c.facts)
    settings = q.settings if q.runtime != "npu" else replace(q.settings, repack=False)  # no llama.cpp CPU copy
    mem = estimate_memory(c.facts, c.quant, q.ctx, device.budget_bytes, settings, device.cpu_features,
                          device.effective_backend)
    if q.runtime == "npu":
        fmt = (f"the runtime's own 4-bit format sized as {NPU_QUANT}, 4.5 bits per weight" if c.quant == NPU_QUANT
               else f"the weights as {c.quant}")
        mem = mem.model_copy(update={"notes": [f"memory for the NPU runtime: llama.cpp's allocation of {fmt}, its "
                                               "KV cache and buffers (without its CPU repacking) as an estimate; the "
                                               "runtime's own buffers are not modelled", *mem.notes]})
    if device.id == "local" and settings.repack and device.effective_backend == "cpu":  # settings.repack: not --runtime npu
        from slmplan.localdevice import repack_crash

        crash = repack_crash()
        if crash:
            mem = mem.model_copy(update={"notes": [
                f"on this machine llama.cpp crashed with its repacked CPU weights on ({crash['what']}; slmplan bench, "
                f"{crash['when']}) and ran with them off: apps need repacking off here (llama-bench --repack 0, "
                "llama-cli --no-repack, llama.cpp's model parameter use_extra_bufts = false); --repack 0 plans for that",
                *mem.notes]})
    if c.computed:
        note = (f"{c.quant} is not a published variant of {c.facts.id} in the catalog: sizes computed with "
                "llama.cpp's quant-mix rules")
        mem = mem.model_copy(update={"notes": [note, *mem.notes], "weights_method": f"computed: {mem.weights_method}"})
    if q.runtime == "npu":
        from slmplan.estimate.npu import estimate_npu_speed

        speed = estimate_npu_speed(c.facts, device, q.n_prompt)
        unlisted = _npu_architecture_note(c.facts.architecture, speed.backend)
        if unlisted:
            mem = mem.model_copy(update={"notes": [unlisted, *mem.notes]})
    else:
        speed = estimate_speed(c.facts, c.quant, hardware(device, q.settings), q.ctx, q.n_prompt, q.n_gen, constants)
        if device.calibration is not None:  # measured on this device (slmplan calibrate): correct the estimate
            from slmplan.device_calibration import apply_calibration

            speed = apply_calibration(speed, c.facts, c.quant, device, q.ctx, q.n_prompt, q.n_gen)
    energy = estimate_energy(device, speed, q.n_prompt, q.n_gen)
    v = verdict(mem.total_bytes, mem.budget_bytes)
    return FitResult(model=c.facts.id, quant=c.quant, device=device.id, ctx=q.ctx, verdict=v, memory=mem,
                     speed=speed, energy=energy, params=c.facts.params, score=score(v, c, speed.decode_tokens_per_s, q),
                     active_params=c.facts.active_params(c.quant) if c.facts.is_moe else c.facts.params)


def _npu_architecture_note(arch: str, backend: str) -> str | None:
    """A note when the NPU runtime's documentation does not list the model's architecture (data/runtimes.yaml):
    the estimate is then for a model the runtime may not run."""
    from slmplan.runtimes import runtimes

    npu = backend.removeprefix("npu:")
    for rt in runtimes():
        if rt.get("npu_runtime") == npu and rt["architectures"] != "all" and arch not in rt["architectures"]:
            return (f"{rt['name']} documents {', '.join(rt['architectures'])} models, not {arch}: the NPU speed is "
                    "for a model this runtime may not run yet")
    return None


def score(v: str, c: Candidate, decode_tps: float | None, q: Query) -> float | None:
    """The size heuristic, for models without a published score: quality grows with log(parameters)
    and falls with aggressive quantization (documented in the README); too-slow decoding and tight
    memory are penalised. ``rank`` replaces it by the published quality where there is one."""
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
    """Memory, speed, energy and verdict of ``model`` (catalog id, .gguf path or hf://owner/repo/file.gguf)
    on ``device``, one FitResult per quant variant (only ``quant`` when given)."""
    q.validate()
    cands = resolve(model, quant, catalog_path)
    if q.runtime == "npu" and quant is None and not (model.startswith("hf://") or is_gguf_path(model)):
        cands = [npu_candidate(cands[0].facts, [c.quant for c in cands])]  # a catalog model: its NPU format, once
    return rank([evaluate(c, device, q) for c in cands], q.task, keep_order=True)


def npu_candidate(f, published: list[str]) -> Candidate:
    """The one candidate of a catalog model under --runtime npu: its weights sized as ``NPU_QUANT``."""
    return Candidate(f, NPU_QUANT, computed=NPU_QUANT not in published)


def plan(device: DeviceProfile, q: Query = Query(), catalog_path: str | None = None) -> list[FitResult]:
    """Every (model, quant) of the catalog on ``device``, ranked: fitting first, then by score."""
    q.validate()
    cat = load_catalog(catalog_path)
    constants = load_constants()
    out = []
    for m in cat.models:
        f = facts(m)
        if q.runtime == "npu":
            out.append(evaluate(npu_candidate(f, [v.quant for v in m.variants]), device, q, constants))
            continue
        for v in m.variants:
            out.append(evaluate(Candidate(f, v.quant), device, q, constants))
    return rank(out, q.task, q.min_decode_tokens_per_s)


def rank(results: list[FitResult], task: str | None = None, min_decode: float = MIN_DECODE_TOKENS_PER_S,
         keep_order: bool = False) -> list[FitResult]:
    """Constraints first (memory headroom: fits, then tight, then does-not-fit; then the speed floor),
    then quality: the published benchmark score of one source (the one scoring the most candidates
    that fit) times the quant's loss prior; models without a score there follow, by the size heuristic."""
    ok_models = sorted({r.model for r in results if r.verdict != "does-not-fit"}) or sorted({r.model for r in results})
    source = choose_source(ok_models, task)
    scored = []
    for r in results:
        fig = figure(r.model, r.quant, source, task)
        s = r.score
        if fig.method == "published" and fig.value is not None and r.verdict != "does-not-fit":
            s = round(fig.value, 4)
        scored.append(r.model_copy(update={"quality": fig.as_dict(), "score": s}))
    if keep_order:
        return scored
    order = {"fits": 0, "tight": 1, "does-not-fit": 2}

    def quality_key(r: FitResult) -> float:
        # a published score's resolution is about half a point (its standard error on the benchmark's
        # few thousand questions): candidates closer than that are a tie, won by the smaller resident
        # footprint (so Q8_0 of a model beats its F16 copy at the same published quality)
        if (r.quality or {}).get("method") == "published" and r.score is not None:
            return -round(r.score / PUBLISHED_SCORE_RESOLUTION)
        return -(r.score or 0)

    return sorted(scored, key=lambda r: (order[r.verdict], (r.speed.decode_tokens_per_s or 0.0) < min_decode,
                                         (r.quality or {}).get("method") != "published", quality_key(r),
                                         r.memory.total_bytes - r.memory.reclaimable_bytes))


def recommend(ranked: list[FitResult], q: Query = Query()) -> tuple[FitResult | None, str]:
    """The best of ``plan``'s ranking and a one-sentence reason (None and the reason when nothing fits)."""
    ok = [r for r in ranked if r.verdict != "does-not-fit"]
    if not ok:
        return None, "nothing in the catalog fits this device's memory budget at this context length"
    best = ok[0]
    head = 1 - best.memory.total_bytes / best.memory.budget_bytes
    qual = best.quality or {}
    if qual.get("method") == "published":
        basis = (f"the highest published quality ({', '.join(qual['benchmarks'])} {qual['benchmark_score']:.1f} in "
                 f"{qual['source']}; x{qual['quant_factor']:.3f} for {best.quant}: {qual['quant_basis'].split(',')[0]})")
    else:
        basis = "the highest size-heuristic choice (no published score for the candidates)"
    fit_txt = "it fits" if best.verdict == "fits" else "memory is tight"
    why = (f"{best.model} {best.quant}: {basis}; {fit_txt} "
           f"({best.memory.total_bytes / 2**30:.2f} GiB of {best.memory.budget_bytes / 2**30:.2f} GiB, {head:.0%} headroom) "
           + (f"and decodes at ~{best.speed.decode_tokens_per_s:.0f} tokens/s" if best.speed.decode_tokens_per_s
              else "(decode speed unknown)"))
    if best.speed.decode_tokens_per_s and best.speed.decode_tokens_per_s < q.min_decode_tokens_per_s:
        why += f" (below {q.min_decode_tokens_per_s:.0f} tokens/s: nothing faster fits with better quality)"
    return best, why


def repo_files_with_verdicts(repo_id: str, revision: str | None = None, device: DeviceProfile | None = None,
                            q: Query | None = None) -> dict:
    """A Hub repo's GGUF files (``{"repo", "gguf", "files"}``, the ``hub list --format json`` shape); with a
    DeviceProfile each file also gets the estimated memory, decode speed and verdict for ``q`` (a Query).

    One header gives the architecture (read by HTTP range, a few MiB); the other quants' weights follow
    llama.cpp's quant mix for that architecture, and each row says whether its weights are exact or an estimate.
    """
    from slmplan.hub import list_gguf_files, remote_facts

    files, summary = list_gguf_files(repo_id, revision)
    if not files:
        raise BadInputError(f"{repo_id} has no .gguf files", "Pick a repository with GGUF files (their names end in .gguf)")
    rows: list[dict] = [{"file": f.name, "quant": f.quant, "size_bytes": f.size,
                         "split": f"{f.split[0]}/{f.split[1]}" if f.split else None} for f in files]
    if device is not None:
        q = q or Query()
        q.validate()
        first = next((f for f in files if f.split is None or f.split[0] == 1), files[0])
        rev = f"@{revision}" if revision else ""
        facts = remote_facts(f"hf://{repo_id}{rev}/{first.name}")
        for row, f in zip(rows, files):
            if not f.quant:
                row["verdict"] = "unknown (quant type not in the file name)"
                continue
            exact = f.name == first.name
            r = evaluate(Candidate(facts, f.quant if not exact else (facts.file_quant or f.quant)), device, q)
            row.update({"verdict": r.verdict, "total_bytes": r.memory.total_bytes, "budget_bytes": r.memory.budget_bytes,
                        "decode_tokens_per_s": r.speed.decode_tokens_per_s,
                        "weights": "exact (header read)" if exact else "estimate (quant mix of the same architecture)"})
    return {"repo": repo_id, "gguf": summary, "files": rows}
