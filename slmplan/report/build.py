"""Assemble a feasibility report: planner results for a device, benchmark evidence, energy and CO2.

Every figure carries its unit and source; unknown stays unknown (null), never a guessed number.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import yaml

from slmplan.errors import BadInputError, SlmplanError
from slmplan.estimate.energy import cloud_baselines
from slmplan.estimate.memory import estimate_memory
from slmplan.fileio import MAX_BENCH_JSON_BYTES, package_versions, read_regular
from slmplan.planner import Query as PlanQuery
from slmplan.planner import fit, plan, rank, recommend
from slmplan.report import decision
from slmplan.report.deploy import deployment
from slmplan.schema.bench import BenchRun
from slmplan.schema.device import DeviceProfile
from slmplan.schema.estimate import FitResult
from slmplan.schema.report import (
    BenchMemory,
    Candidate,
    CloudComparison,
    Energy,
    Figure,
    KVGrowth,
    KVPoint,
    Measured,
    Query,
    Recommendation,
    Report,
    RuntimeRow,
    Service,
    Unit,
    UseCase,
)
from slmplan.usecase import WORDS_PER_TOKEN_SOURCE, build_query, preset

GRID_FILE = Path(__file__).resolve().parent.parent / "data" / "grid_intensity.yaml"
KV_CTX_STEPS = (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)

PRIVACY = [
    "Everything the user types and everything the model answers stays on the device: the prompt, the "
    "conversation history and the answer are processed in the phone's or laptop's own memory and are "
    "never sent to a server. Nothing needs to be logged anywhere else.",
    "It works offline: on a plane, in a basement, in a hospital with a locked-down network. Speed does "
    "not depend on the connection and there is no per-query cloud bill.",
    "What still leaves the device is only what the app itself sends: downloading the model once (or with "
    "app updates), and anything the app chooses to sync.",
    "Hybrid fallback: a small on-device model will not do everything a large cloud model does (long "
    "documents, deep reasoning, fresh world knowledge). A sensible design answers on the device by default "
    "and sends a request to the cloud only when the local model cannot handle it, and only with the user's "
    "consent for that request. Then only those requests leave the device, not every conversation.",
]


@lru_cache(maxsize=1)
def grid_table() -> dict:
    return yaml.safe_load(GRID_FILE.read_text())


def grid_intensity(region: str | None, value: float | None) -> tuple[Figure, str]:
    if value is not None:
        if not 0 <= value <= 2000:
            raise BadInputError(f"grid_value={value} g/kWh is not plausible", "Use a value between 0 and 2000",
                                params=("grid_value",))
        return Figure(value=value, unit="gCO2e/kWh", source="given by the user (--grid-intensity)"), "custom"
    t = grid_table()
    key = (region or "world").lower()
    if key not in t["g_per_kwh"]:
        raise BadInputError(f"no grid intensity for '{region}'",
                            f"Use one of: {', '.join(sorted(t['g_per_kwh']))}, or grid_value=G", params=("grid_value",))
    return Figure(value=t["g_per_kwh"][key], unit="gCO2e/kWh", source=t["source"] if str(t["year"]) in t["source"] else f"{t['source']}, year {t['year']}"), key


def load_bench(path: str) -> BenchRun:
    """A ``slmplan bench -o FILE.json`` result, validated (BadInputError when it is not one)."""
    p = Path(path)
    if not p.exists():
        raise BadInputError(f"bench result {path}: no such file", "Pass a JSON file written by 'slmplan bench -o FILE.json'")
    raw = read_regular(p, "bench result", MAX_BENCH_JSON_BYTES, hint="Pass a JSON file written by 'slmplan bench -o FILE.json'")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadInputError(f"bench result {path} is not JSON", "Pass a file written by 'slmplan bench -o FILE.json'") from None
    where = _non_finite(data)
    if where is not None:  # json.loads accepts NaN and Infinity; a measurement never is one
        raise BadInputError(f"bench result {path} holds a non-finite number at {where}",
                            "Pass a file written by 'slmplan bench -o FILE.json'")
    try:
        return BenchRun.model_validate(data)
    except Exception as e:  # pydantic ValidationError: say which field, and what is wrong with it
        errs = e.errors() if hasattr(e, "errors") else []
        first = (".".join(map(str, errs[0]["loc"])) + ": " + errs[0]["msg"]) if errs else str(e).splitlines()[0]
        raise BadInputError(f"{path} is not a slmplan bench result ({first})",
                            "Pass a file written by 'slmplan bench -o FILE.json'") from None


def load_benches(path: str, device: DeviceProfile | None = None) -> list[BenchRun]:
    """A 'slmplan bench' JSON, or llama-bench output (json, jsonl, csv, md): one run per model it measured,
    each test with the planner's prediction for ``device``."""
    from slmplan.importers.bench_runs import is_slmplan_bench, runs_from_llama_bench

    if not Path(path).is_file() or is_slmplan_bench(path):
        return [load_bench(path)]
    return runs_from_llama_bench(path, device)


def _non_finite(x, where: str = "top level", depth: int = 0) -> str | None:
    if isinstance(x, float) and not math.isfinite(x):
        return where
    if depth > 32:
        return None
    items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
    for k, v in items:
        hit = _non_finite(v, f"{where}.{k}" if where != "top level" else str(k), depth + 1)
        if hit:
            return hit
    return None


def check_bench_models(benches: Sequence[BenchRun], models: list[str] | None) -> None:
    """With --models, every --bench must be of one of them: else its measurements would sit in a report
    about other models, next to their predictions."""
    if not models:
        return
    names = {Path(m).name for m in models} | set(models)
    for run in benches:
        if run.model in names or run.model_path in names or Path(run.model_path).name in names:
            continue
        raise BadInputError(f"--bench of {Path(run.model_path).name} ({run.model}) is not among --models {', '.join(models)}",
                            "Add that model to --models, or drop that --bench")


def _fig(value, unit: Unit, source: str) -> Figure:
    return Figure(value=None if value is None else float(value), unit=unit, source=source)


def _candidate(rank_: int, r: FitResult, benchmarked: bool) -> Candidate:
    m, s, e = r.memory, r.speed, r.energy
    est = "estimate: slmplan memory model"
    sp = s.method or "estimate"
    pp = s.prefill_tokens_per_s or None
    return Candidate(
        rank=rank_, model=r.model, quant=r.quant, verdict=r.verdict, params=r.params,
        weights=_fig(m.weights_bytes, "bytes", m.weights_method or est), kv_cache=_fig(m.kv_cache_bytes, "bytes", est),
        compute=_fig(m.compute_bytes, "bytes", est), overhead=_fig(m.overhead_bytes, "bytes", est + " (runtime baseline)"),
        total=_fig(m.total_bytes, "bytes", est), budget=_fig(m.budget_bytes, "bytes", "device profile: memory_budget_gb"),
        prefill_tokens_per_s=_fig(pp, "tokens/s", sp if pp else "unknown: the profile has no compute figure"),
        decode_tokens_per_s=_fig(s.decode_tokens_per_s, "tokens/s", sp),
        decode_tokens_per_s_low=_fig(s.decode_tokens_per_s_low, "tokens/s", sp + " (low bound)"),
        decode_tokens_per_s_high=_fig(s.decode_tokens_per_s_high, "tokens/s", sp + " (high bound)"),
        ttft=_fig(s.ttft_s if pp else None, "s", sp if pp else "unknown: prefill speed unknown"),
        joules_per_token=_fig(e.joules_per_token, "J/token", e.method),
        wh_per_query=_fig(e.wh_per_query, "Wh/query", e.method), benchmarked=benchmarked)


def _bench_candidates(run: BenchRun, device: DeviceProfile, q: PlanQuery) -> list[FitResult]:
    """The planner's view of a benchmarked model: from its file when it still exists, else its catalog id."""
    for spec, quant in ((run.model_path, None), (run.model, run.quant)):
        try:
            res = fit(spec, device, quant=quant, q=q)
        except SlmplanError:
            continue
        label = Path(run.model_path).name
        return [r.model_copy(update={"model": label}) if r.model == run.model_path else r for r in res]
    return []


def build_report(device: DeviceProfile, benches: Sequence[BenchRun] = (), models: list[str] | None = None,
                 q: PlanQuery | None = None, top: int = 5, queries_per_day: int = 100, grid: str | None = None,
                 grid_value: float | None = None, power_w: float | None = None, now: str | None = None,
                 use_case: str | None = None, service: str | None = None, overridden: Sequence[str] = ()) -> Report:
    """The feasibility report for ``device``: the planner's ``top`` choices (or ``models``: catalog ids or
    .gguf paths) for query ``q`` (default: the ``use_case`` preset, see slmplan.usecase.build_query),
    benchmark evidence from ``benches`` (BenchRun, e.g. from ``load_bench``), energy and CO2 for
    ``queries_per_day`` on the grid of country ``grid`` (or ``grid_value`` gCO2e/kWh), with ``power_w``
    standing in for a profile without a power figure. Render it with ``render_report``."""
    uc = preset(use_case)
    service = " ".join((service or "").split()) or None  # one line in every format
    if service and len(service) > 300:
        raise BadInputError(f"service is {len(service)} characters long", "Describe it in one line (at most 300 characters)",
                            params=("service",))
    if q is None:
        q = build_query(use_case)[0]
    if queries_per_day <= 0 or queries_per_day > 1_000_000:
        raise BadInputError(f"queries_per_day={queries_per_day} is not plausible", "Use e.g. queries_per_day=100",
                            params=("queries_per_day",))
    if top <= 0:
        raise BadInputError(f"top must be positive, got {top}", "Use e.g. top=5", params=("top",))
    if power_w is not None:
        if not 0 < power_w <= 5000:
            raise BadInputError(f"power_w={power_w} is not plausible", "Use the device's sustained power in watts, e.g. power_w=6",
                                params=("power_w",))
        device = device.model_copy(update={"power_w": power_w,
                                           "sources": {**device.sources, "power_w": "given by the user (--power-w)"}})
    grid_fig, region = grid_intensity(grid, grid_value)
    q.validate()
    check_bench_models(list(benches), models)

    results: list[FitResult] = []
    if models:
        for m in models:
            results += fit(m, device, q=q)
    else:
        ranked_all = plan(device, q)
        results += [r for r in ranked_all if r.verdict != "does-not-fit"][:top] or ranked_all[:top]
    bench_keys = set()
    for run in benches:
        for r in _bench_candidates(run, device, q):
            bench_keys.add((r.model, r.quant))
            results.append(r)
    seen, uniq = set(), []
    for r in results:
        if (r.model, r.quant) not in seen:
            seen.add((r.model, r.quant))
            uniq.append(r)
    ranked = rank(uniq)
    # the picks come from the planner's whole ranking (or the user's --models), benchmarked files included
    pool = ranked if models else rank(uniq + [r for r in ranked_all if (r.model, r.quant) not in seen])
    best, why = recommend(pool, q)
    pick_list = decision.picks(pool, q)
    pick_results = [next(r for r in pool if (r.model, r.quant) == (p.model, p.quant)) for p in pick_list]
    candidates = [_candidate(i + 1, r, (r.model, r.quant) in bench_keys) for i, r in enumerate(ranked)]

    measured, mem = _measured(benches)
    bat = decision.battery(device, best, q, queries_per_day, decision.measured_wh_per_query(benches, q)) if best else None
    deploy = deployment(device, pick_results, pool, {run.runtime for run in benches})
    download = next((d.size for d in (deploy.downloads if deploy else []) if d.model == best.model
                     and d.quant == best.quant), None) if best else None
    split = None
    if best and best.speed.prefill_tokens_per_s and best.speed.decode_tokens_per_s and best.speed.ttft_s is not None:
        t_gen = q.n_gen / best.speed.decode_tokens_per_s
        bound = "prefill-bound: the time to first token dominates" if best.speed.ttft_s > t_gen else \
            "decode-bound: writing the answer dominates"
        split = (f"{best.model} {best.quant}: ~{decision.seconds(best.speed.ttft_s)} reading the input, "
                 f"~{decision.seconds(t_gen)} writing the answer ({bound}; predicted)")
    not_measured = [f"{c.model} {c.quant}" for c in candidates if not c.benchmarked]
    kv = _kv_growth(best, device, q) if best else None
    energy = _energy(best, device, q, queries_per_day, grid_fig, region) if best else None
    notes = [
        "Verdict: 'fits' = predicted total at most 80% of the device's memory budget, 'tight' = up to 100%, "
        "'does-not-fit' above.",
        ("Predicted speeds are the device's NPU runtime's (--runtime npu), an estimate fitted on published NPU "
         "measurements (decode ~12% mean error held out for a chip with published rows, ~25% for a chip without; "
         "prefill ~13% / ~31%); memory is llama.cpp's allocation of the same weights. Low/high show the spread."
         if q.runtime == "npu" else
         "Predicted speeds come from slmplan's speed model fitted on published llama.cpp measurements (decode median "
         "error ~3% on Apple GPUs, ~14-20% on CPUs; prefill on CPUs is much less certain). Low/high show the spread."),
        "The ranking's quality is a published benchmark score from one source (named in the recommendation) times a "
        "KL-divergence prior for the quant; models without a score there are ranked by a size heuristic.",
    ]
    notes.append(f"Words and reading speed in the summary: {WORDS_PER_TOKEN_SOURCE}; {decision.READING_SOURCE}; {decision.WAIT_SOURCE}. "
                 "Use-case lengths are assumptions (see Use case).")
    if device.calibration:
        notes.append(f"Speeds on this device are {device.calibration.method} (slmplan calibrate, {device.calibration.date}).")
    if device.id == "local":
        notes.append("Device 'local' is this machine as detected now: its budget is 90% of the memory available at "
                     "the time of the report.")
    return Report(
        title=f"On-device LLM feasibility: {device.name}",
        generated_at=now or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        slmplan_version=package_versions(("slmplan",)).get("slmplan", "unknown"), device=device.contract_dict(),
        query=Query(ctx=q.ctx, prompt_tokens=q.n_prompt, generated_tokens=q.n_gen),
        use_case=UseCase(id=uc.id, label=uc.label, assumption=uc.assumption + (
            f" (overridden here: {', '.join(overridden)})" if overridden else ""), overridden=list(overridden),
            expected_bound=uc.expected_bound, predicted_split=split),
        service=Service(description=service, placeholder=not service),
        summary=decision.summary(device, uc, q, pick_list, best, bat, service, download),
        glossary=decision.glossary(), picks=pick_list,
        what_if=decision.what_ifs(device, q, best) if best else [], battery=bat, deployment=deploy,
        candidates=candidates,
        recommendation=Recommendation(model=best.model, quant=best.quant,
                                      why=why.removeprefix(f"{best.model} {best.quant}: ")) if best else None,
        recommendation_note=why, measured=measured, bench_memory=mem, runtimes=_runtimes(benches),
        not_measured=not_measured,
        kv_growth=kv, energy=energy, privacy=PRIVACY, notes=notes)


def _measured(benches: Sequence[BenchRun]) -> tuple[list[Measured], list[BenchMemory]]:
    rows, mem = [], []
    for run in benches:
        machine = f"{run.system.get('cpu_model', 'unknown CPU')}, {run.threads} threads ({run.runtime})"
        src = f"measured: {'llama-bench' if run.runtime.startswith('llama-bench') else 'slmplan bench'} on {machine}, {run.started_at}"
        pred_src = (run.prediction.method if run.prediction else "no prediction recorded")
        name = Path(run.model_path).name
        for r in run.results:
            rows.append(Measured(
                model=name, quant=run.quant, file=run.model_path, test=r.test,
                measured_tokens_per_s=_fig(r.tokens_per_s_mean, "tokens/s",
                                           f"{src}; mean of {len(r.samples)} repetitions (± {r.tokens_per_s_std:.2f})"),
                predicted_tokens_per_s=_fig(r.predicted_tokens_per_s, "tokens/s", pred_src),
                ratio_measured_to_predicted=r.ratio_measured_to_predicted,
                joules_per_token=_fig(r.joules_per_token, "J/token",
                                      f"measured: Linux RAPL CPU package energy during the timed runs, {machine}"
                                      if r.joules_per_token is not None else
                                      "not measured: Linux RAPL energy counters were not readable on the benchmark machine"),
                machine=machine,
                measured_at=run.started_at, warnings=run.warnings))
        m = run.memory
        t = run.ttft
        mem.append(BenchMemory(
            model=name, file=run.model_path,
            peak_rss=_fig(m.peak_rss_bytes, "bytes", f"{src}; process peak RSS (VmHWM)"),
            weights_mapped=_fig(m.weights_mapped_bytes, "bytes", "measured: llama.cpp's reported model buffer"),
            predicted_weights=_fig(m.predicted_weights_bytes, "bytes", "estimate: slmplan memory model"),
            ttft=_fig(t.ttft_s_median, "s", f"{src}; {t.prompt_tokens}-token chat prompt, median") if t else None,
            predicted_ttft=_fig(t.predicted_ttft_s, "s", pred_src) if t else None))
    return rows, mem


def _kv_growth(best: FitResult, device: DeviceProfile, q: PlanQuery) -> KVGrowth | None:
    from slmplan.resolve import resolve

    try:
        (c,) = [c for c in resolve(best.model, best.quant) if c.quant == best.quant][:1]
    except (SlmplanError, ValueError):
        try:
            (c,) = resolve(best.model)[:1]
        except (SlmplanError, ValueError):
            return None
    limit = max(c.facts.n_ctx_train or q.ctx, q.ctx)
    points = []
    for ctx in sorted({*(x for x in KV_CTX_STEPS if x <= limit), q.ctx}):
        est = estimate_memory(c.facts, c.quant, ctx, device.budget_bytes, q.settings)
        points.append(KVPoint(ctx=ctx, kv_cache_bytes=est.kv_cache_bytes, total_bytes=est.total_bytes))
    return KVGrowth(model=best.model, quant=best.quant, budget_bytes=device.budget_bytes, points=points)


def _energy(best: FitResult, device: DeviceProfile, q: PlanQuery, per_day: int, grid: Figure, region: str) -> Energy:
    e = best.energy
    wh = e.wh_per_query
    kwh = wh * per_day * 365 / 1000 if wh is not None else None
    co2 = kwh * grid.value / 1000 if kwh is not None and grid.value is not None else None
    method = e.method
    src = method if method.startswith(("measured", "unknown", "estimate")) else f"estimate: {method}"
    cloud = []
    for b in cloud_baselines():
        cloud.append(CloudComparison(
            label=b["label"], wh_per_query=_fig(b["wh_per_query"], "Wh/query", f"estimate: {b['source']}"),
            local_to_cloud_ratio=round(wh / b["wh_per_query"], 4) if wh is not None else None))
    if wh is None:
        note = ("Depends: this device profile has no power figure, so the energy per query on the device is unknown. "
                "Pass --power-w with the device's sustained power while generating to compare with the cloud.")
    else:
        note = (f"About {wh:.3g} Wh per query on the device against 0.2-0.34 Wh per cloud chatbot query (estimates). "
                "Both sides are estimates: device power varies with the SoC's state, and cloud figures are averages "
                "published by their authors, not measurements of this query. The comparison depends on them.")
    return Energy(
        model=best.model, quant=best.quant, joules_per_token=_fig(e.joules_per_token, "J/token", src),
        wh_per_query=_fig(wh, "Wh/query", src), method=method, queries_per_day=per_day,
        kwh_per_year=_fig(kwh, "kWh/year", f"{src}; x {per_day} queries/day x 365" if wh is not None else src),
        grid_intensity=grid, grid_region=region,
        co2_kg_per_year=_fig(co2, "kgCO2e/year", "kWh/year x grid intensity" if co2 is not None else "unknown: energy unknown"),
        cloud=cloud, cloud_note=note)


def _runtimes(benches: Sequence[BenchRun]) -> list[RuntimeRow]:
    rows = []
    for run in benches:
        src = f"measured: slmplan bench ({run.runtime}, {run.threads} threads), {run.started_at}"
        pp = next((r for r in run.results if r.n_gen == 0 and r.n_depth == 0), None)
        tg = next((r for r in run.results if r.n_prompt == 0 and r.n_depth == 0), None)
        rows.append(RuntimeRow(
            model=Path(run.model_path).name, runtime=run.runtime,
            prefill_tokens_per_s=_fig(pp.tokens_per_s_mean if pp else None, "tokens/s", f"{src}; {pp.test}" if pp else "not measured"),
            decode_tokens_per_s=_fig(tg.tokens_per_s_mean if tg else None, "tokens/s", f"{src}; {tg.test}" if tg else "not measured"),
            ttft=_fig(run.ttft.ttft_s_median if run.ttft else None, "s", src if run.ttft else "not measured"),
            peak_rss=_fig(run.memory.peak_rss_bytes, "bytes", f"{src}; process peak RSS"),
            load=_fig(run.load_s, "s", f"{src}; model load"),
            model_size=_fig(run.model_size_bytes, "bytes", "the runtime's model size (weights as loaded)")))
    return rows
