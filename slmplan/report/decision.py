"""The decision part of the report: two picks with reasons, what would change the choice (re-planned,
not written as prose), the battery figures, and the plain-words summary and glossary for executives.
"""

from __future__ import annotations

from dataclasses import replace

from slmplan.catalog import load_catalog
from slmplan.errors import SlmplanError
from slmplan.planner import Query, plan, recommend
from slmplan.schema.device import DeviceProfile
from slmplan.schema.estimate import FitResult
from slmplan.schema.report import Battery, Concept, Figure, Pick, SummaryItem, Unit, WhatIf
from slmplan.usecase import WORDS_PER_TOKEN_SOURCE, UseCasePreset, words

GIB = 1 << 30
# Brysbaert (2019), "How many words do we read per minute?", J. Memory and Language: 238 words/min
# silent reading of non-fiction, i.e. about 4 words per second.
READING_WPS = 238 / 60
READING_SOURCE = "silent reading speed of about 238 words per minute (Brysbaert 2019, J. Memory and Language)"
# Jakob Nielsen, "Response Times: The 3 Important Limits" (Nielsen Norman Group, 1993): ~1 s keeps the
# flow of thought, ~10 s is the limit for keeping the user's attention on the task.
WAIT_SOURCE = "response-time limits of ~1 s and ~10 s (Jakob Nielsen, 'Response Times: The 3 Important Limits', 1993)"
TIGHT_BUDGET_GB = 2.0  # the ceiling mobile teams commonly set for one feature's model


def _fig(value, unit: Unit, source: str) -> Figure:
    return Figure(value=None if value is None else float(value), unit=unit, source=source)


def _gib(f: Figure) -> str:
    return "unknown" if f.value is None else f"{f.value / GIB:.1f}"


def catalog_info() -> dict[str, dict]:
    try:
        return {m.id: {"family": m.family, "license": m.license, "architecture": m.architecture, "name": m.name}
                for m in load_catalog().models}
    except SlmplanError:
        return {}


def rank_basis(r: FitResult) -> str:
    """How the planner ranked this candidate, in words (the planner's score may be a heuristic or published quality)."""
    q = r.quality or {}
    if q.get("method") == "published" and q.get("benchmarks"):
        src = q.get("source")
        return f"ranked by published quality ({', '.join(q['benchmarks'])}{' in ' + src if src else ''})"
    return "ranked by the planner's size x quant heuristic, not a measured quality score"


def seconds(s: float | None) -> str:
    if s is None:
        return "unknown"
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 90:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    return f"{s / 60:.1f} min"


def _pick(role: str, rank: int, r: FitResult, info: dict, reason: str) -> Pick:
    m, s = r.memory, r.speed
    sp = s.method or "estimate"
    pp = s.prefill_tokens_per_s or None
    return Pick(role=role, model=r.model, quant=r.quant, family=info.get("family"), license=info.get("license"),
                rank=rank, verdict=r.verdict, total=_fig(m.total_bytes, "bytes", "estimate: slmplan memory model"),
                budget=_fig(m.budget_bytes, "bytes", "device profile: memory_budget_gb"),
                decode_tokens_per_s=_fig(s.decode_tokens_per_s, "tokens/s", sp),
                ttft=_fig(s.ttft_s if pp else None, "s", sp if pp else "unknown: prefill speed unknown"),
                wh_per_query=_fig(r.energy.wh_per_query, "Wh/query", r.energy.method), reason=reason)


def _facts_sentence(r: FitResult) -> str:
    m, s = r.memory, r.speed
    head = 1 - m.total_bytes / m.budget_bytes
    ttft = f", first token after ~{seconds(s.ttft_s)}" if s.prefill_tokens_per_s and s.ttft_s is not None else ""
    speed = (f"answers at ~{s.decode_tokens_per_s:.0f} tokens/s" if s.decode_tokens_per_s
             else "answers at an unknown speed (no speed data for this device and runtime)")
    return (f"needs {m.total_bytes / GIB:.2f} of {m.budget_bytes / GIB:.2f} GiB ({head:.0%} headroom), "
            f"{speed}{ttft} (predicted)")


def picks(ranked: list[FitResult], q: Query) -> list[Pick]:
    """Primary = the planner's recommendation; alternative = the best-ranked candidate of another family."""
    best, _ = recommend(ranked, q)
    if best is None:
        return []
    info = catalog_info()
    ok = [r for r in ranked if r.verdict != "does-not-fit"]
    fam = lambda r: info.get(r.model, {}).get("family", r.model)  # noqa: E731
    rank_of = {(r.model, r.quant): i + 1 for i, r in enumerate(ranked)}
    bi = info.get(best.model, {})
    out = [_pick("primary", rank_of[(best.model, best.quant)], best, bi,
                 f"The planner's first choice ({rank_basis(best)}): it {_facts_sentence(best)}; "
                 f"license {bi.get('license', 'unknown')}.")]
    alt = next((r for r in ok if fam(r) != fam(best)), None)
    if alt is not None:
        ai = info.get(alt.model, {})
        out.append(_pick("alternative", rank_of[(alt.model, alt.quant)], alt, ai,
                         f"The best-ranked model of another family ({ai.get('family', alt.model)}, rank "
                         f"{rank_of[(alt.model, alt.quant)]}), a fallback if {bi.get('family', best.model)} is "
                         f"ruled out by its license or by quality on your own data: it {_facts_sentence(alt)}; "
                         f"license {ai.get('license', 'unknown')}."))
    return out


def _scaled(device: DeviceProfile, factor: float) -> DeviceProfile:
    upd = {"memory_bandwidth_gbs": device.memory_bandwidth_gbs * factor}
    for k in ("cpu_gflops", "cpu_quant_gflops", "gpu_tflops"):
        if getattr(device, k):
            upd[k] = getattr(device, k) * factor
    return device.model_copy(update=upd)


def _what_if(change: str, device: DeviceProfile, q: Query, primary: FitResult) -> WhatIf:
    ranked = plan(device, q)
    best, _ = recommend(ranked, q)
    same = next((r for r in ranked if (r.model, r.quant) == (primary.model, primary.quant)), None)
    then = (f"; {primary.model} {primary.quant} would be '{same.verdict}' there" if same is not None else "")
    if best is None:
        return WhatIf(change=change, pick_model=None, pick_quant=None, verdict=None, changes_choice=True,
                      summary=f"nothing in the catalog fits{then}")
    s = best.speed
    ttft = s.ttft_s if s.prefill_tokens_per_s else None
    changed = (best.model, best.quant) != (primary.model, primary.quant)
    text = (f"{'the choice changes to' if changed else 'the choice stays'} {best.model} {best.quant} ({best.verdict}, "
            f"{best.memory.total_bytes / GIB:.2f} GiB, "
            f"{f'~{s.decode_tokens_per_s:.0f}' if s.decode_tokens_per_s else 'unknown'} tokens/s, first token "
            f"{seconds(ttft)}){then if changed else ''}")
    sp = s.method or "estimate"
    return WhatIf(change=change, pick_model=best.model, pick_quant=best.quant, verdict=best.verdict,
                  total=_fig(best.memory.total_bytes, "bytes", "estimate: slmplan memory model"),
                  decode_tokens_per_s=_fig(s.decode_tokens_per_s, "tokens/s", sp),
                  ttft=_fig(ttft, "s", sp if ttft is not None else "unknown: prefill speed unknown"),
                  changes_choice=changed, summary=text)


def what_ifs(device: DeviceProfile, q: Query, primary: FitResult) -> list[WhatIf]:
    """Re-run the planner with a tighter budget, a longer input, a slower device (and the iOS entitlement)."""
    out = []
    budget = TIGHT_BUDGET_GB if device.memory_budget_gb > TIGHT_BUDGET_GB else round(device.memory_budget_gb / 2, 2)
    out.append(_what_if(f"a tighter memory budget: {budget:g} GB instead of {device.memory_budget_gb:g} GB",
                        device.model_copy(update={"memory_budget_gb": budget}), q, primary))
    ctx = min(q.ctx * 4, 1 << 22)
    n_prompt = max(min(q.n_prompt * 4, ctx - q.n_gen), q.n_prompt)
    out.append(_what_if(f"a 4x longer input: {n_prompt} prompt tokens (~{words(n_prompt)} words), context {ctx}",
                        device, replace(q, ctx=ctx, n_prompt=n_prompt), primary))
    out.append(_what_if("a device half as fast (half the memory bandwidth and compute, same memory budget)",
                        _scaled(device, 0.5), q, primary))
    ent = device.with_entitlement()
    if ent is not None and device.memory_budget_gb_entitled != device.memory_budget_gb:
        out.append(_what_if(f"the app has Apple's increased-memory-limit entitlement (budget "
                            f"{device.memory_budget_gb_entitled:g} GB instead of {device.memory_budget_gb:g} GB)",
                            ent, q, primary))
    return out


def battery(device: DeviceProfile, best: FitResult, q: Query, per_day: int, measured: Figure | None) -> Battery | None:
    wh_b = device.battery_wh
    if wh_b is None and device.kind not in ("phone", "tablet", "laptop"):
        return None  # mains-powered: no battery figures
    wh_q = best.energy.wh_per_query
    b_src = device.sources.get("battery_wh", "device profile") if wh_b else \
        "unknown: the profile has no battery_wh (add it to a YAML profile)"
    est = f"estimate: {wh_q:.3g} Wh per query (power_w x predicted time) / {wh_b:g} Wh battery" if wh_q and wh_b else None
    unknown = "unknown: needs both the energy per query (power_w) and battery_wh"
    pq = wh_q / wh_b * 100 if wh_q and wh_b else None
    per_charge = wh_b / wh_q if wh_q and wh_b else None
    hours = wh_b / device.power_w if wh_b and device.power_w else None
    caveats = [
        f"Estimates from the profile's power figure ({device.power_w:g} W: {device.sources.get('power_w', 'device profile')}) "
        "and the predicted time per query, not a measurement on this device." if device.power_w else
        "The profile has no power figure: pass --power-w to estimate the battery use.",
        "Sustained power: phones and fanless tablets hold their peak power for only a few minutes; under continuous "
        "load they throttle, so back-to-back or long answers run slower than predicted (the energy per answer changes "
        "less than the time).",
        "Only the chip's power while answering is counted; the screen, the radio and the rest of the device draw power "
        "too. The battery figure is the rated capacity of a new battery.",
    ]
    return Battery(
        model=best.model, quant=best.quant, battery_wh=_fig(wh_b, "Wh", b_src), queries_per_day=per_day,
        percent_per_query=_fig(pq, "% of a full charge", est or unknown),
        percent_per_day=_fig(pq * per_day if pq is not None else None, "% of a full charge per day",
                             f"{est}; x {per_day} queries/day" if est else unknown),
        queries_per_charge=_fig(per_charge, "queries", est.replace(" / ", " into ") if est else unknown),
        hours_answering_per_charge=_fig(hours, "hours", f"estimate: {wh_b:g} Wh battery / {device.power_w:g} W while "
                                        "answering without pause" if hours else unknown),
        measured_wh_per_query=measured, caveats=caveats)


def measured_wh_per_query(benches, q: Query) -> Figure | None:
    """Wh per query from RAPL-measured J/token of a benchmark (prefill and generation), where bench had RAPL."""
    for run in benches:
        pp = next((r for r in run.results if r.n_gen == 0 and r.joules_per_token is not None), None)
        tg = next((r for r in run.results if r.n_prompt == 0 and r.joules_per_token is not None), None)
        if pp and tg:
            wh = (pp.joules_per_token * q.n_prompt + tg.joules_per_token * q.n_gen) / 3600
            machine = run.system.get("cpu_model", "the benchmark machine")
            return _fig(wh, "Wh/query", f"measured: Linux RAPL CPU package energy of {run.model} ({pp.test}, {tg.test}) on "
                        f"{machine}, scaled to {q.n_prompt} + {q.n_gen} tokens; that machine, not necessarily this device")
    return None


GLOSSARY = [
    ("Quantization", "Storing the model's numbers with fewer bits (for example 4 instead of 16) so it takes about a "
     "quarter of the memory and runs faster, at a small cost in answer quality; 'Q4_K_M' names one such format."),
    ("Token", "The unit a model reads and writes: a word or part of a word; English averages about 0.75 words per token."),
    ("KV cache", "The model's short-term memory of the conversation so far; it grows with the length of the text "
     "and has to fit in memory next to the model itself."),
    ("Time to first token", "How long the user waits before the first word of the answer appears: the time the "
     "model needs to read the whole input. Long inputs (summaries) make this the wait that matters."),
    ("Decode speed", "How fast the answer is written once it has started, in tokens per second; faster than "
     "reading speed (~5 tokens/s) feels instant."),
    ("NPU", "A chip block built for AI arithmetic (Apple's Neural Engine, Qualcomm's Hexagon, Google's TPU). It "
     "needs its own runtime and model format; slmplan predicts it with --runtime npu where published "
     "measurements of the chip's NPU runtime exist (an estimate; the default predictions are llama.cpp's on the CPU or GPU)."),
    ("Memory budget", "How much memory the phone's operating system lets one app use before it closes the app, "
     "far less than the RAM printed on the box; the model, its KV cache and the app must fit in it."),
]


def glossary() -> list[Concept]:
    return [Concept(term=t, explanation=e) for t, e in GLOSSARY]


def _budget_basis(device: DeviceProfile) -> str:
    e = device.memory_budget_gb_entitled
    if e is None:
        return ""
    return (" with Apple's increased-memory-limit entitlement" if e == device.memory_budget_gb
            else " without Apple's increased-memory-limit entitlement")


def summary(device: DeviceProfile, uc: UseCasePreset, q: Query, pick_list: list[Pick], best: FitResult | None,
            bat: Battery | None, service: str | None, download: Figure | None) -> list[SummaryItem]:
    items = [SummaryItem(topic="Service", text=service or
                         "[PLACEHOLDER: describe the service here, e.g. slmplan report --service \"offline "
                         "summaries of meeting notes\"]")]
    if best is None or not pick_list:
        items.append(SummaryItem(topic="Does it fit?", text=f"No. No model in the catalog fits the "
                                 f"{device.memory_budget_gb:g} GB one app may use on the {device.name} with a "
                                 f"{q.ctx}-token context. Options: a shorter context, a device with more memory, or the cloud."))
    else:
        p = pick_list[0]
        alt = f" Alternative from another model family: {pick_list[1].model} {pick_list[1].quant}." if len(pick_list) > 1 else ""
        items.append(SummaryItem(topic="Does it fit?", text=(
            f"Yes. {p.model} ({p.quant}) needs about {_gib(p.total)} GB of the {_gib(p.budget)} GB "
            f"one app may use on the {device.name}{_budget_basis(device)} (predicted).{alt}")))
        s = best.speed
        dec, ttft = s.decode_tokens_per_s, s.ttft_s
        gen_s = q.n_gen / dec if dec else None
        if dec:
            wps = dec * 0.75
            feel = "faster than people read" if wps >= READING_WPS else "slower than people read"
            then = f"then text appears at about {wps:.0f} words per second, {feel}"
        else:
            then = "the writing speed is unknown (no speed data for this device and runtime)"
        if s.prefill_tokens_per_s and ttft is not None:
            wait = ("no noticeable wait" if ttft <= 1 else "a noticeable pause" if ttft <= 10
                    else "a long wait, beyond the ~10 s users stay focused")
            first = (f"the first words appear after about {seconds(ttft)}, while the model reads the "
                     f"~{words(q.n_prompt)}-word input ({wait}); ")
            total = (f"; the whole ~{words(q.n_gen)}-word answer takes about {seconds(ttft + gen_s)}"
                     if gen_s is not None else "")
        else:
            first, total = "the wait before the first word is unknown (no compute figure for this device), ", ""
        items.append(SummaryItem(topic="How fast does it feel?", text=(
            f"For {uc.label}: {first}{then}{total} "
            "(predictions, not measured on this device).")))
    if bat is not None and bat.percent_per_day.value is not None:
        items.append(SummaryItem(topic="Battery", text=(
            f"{bat.queries_per_day} queries a day use about {bat.percent_per_day.value:.1f}% of a full charge "
            f"(about {bat.percent_per_query.value:.2f}% each; estimate from the chip's power, before throttling)"
            + ("; a large share of a charge: a smaller or faster model, or fewer queries, cuts it." if
               bat.percent_per_day.value > 20 else "."))))
    elif bat is not None:
        items.append(SummaryItem(topic="Battery", text="Unknown: the device profile lacks a power or battery figure."))
    size = f" (a one-time download of about {download.value / 1e9:.1f} GB)" if download and download.value else ""
    items.append(SummaryItem(topic="Privacy", text=(
        "The text the user enters and the answer stay on the device: nothing is sent to a server, so there is no "
        "third party to trust and nothing to log elsewhere.")))
    items.append(SummaryItem(topic="Offline", text=f"Works without a network once the model is on the device{size}; "
                             "no per-query cloud cost."))
    return items


__all__ = ["picks", "what_ifs", "battery", "measured_wh_per_query", "glossary", "summary", "rank_basis",
           "WORDS_PER_TOKEN_SOURCE", "READING_SOURCE"]
