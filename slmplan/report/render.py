"""The report as self-contained HTML (inline CSS and SVG charts), GitHub Markdown, or JSON."""

from __future__ import annotations

import json
import re

from slmplan.report.html_template import TEMPLATE
from slmplan.schema.report import Figure, Report
from slmplan.textsafe import strip_controls

GIB = 1 << 30


def gib(f: Figure | int | None) -> str:
    v = f.value if isinstance(f, Figure) else f
    return "unknown" if v is None else f"{v / GIB:.2f}"


def num(f: Figure | float | None, digits: int = 1) -> str:
    v = f.value if isinstance(f, Figure) else f
    if v is None:
        return "unknown"
    return f"{v:,.{digits}f}"


def sig(f: Figure | float | None) -> str:
    v = f.value if isinstance(f, Figure) else f
    return "unknown" if v is None else f"{v:.3g}"


def ms(f: Figure | None) -> str:
    if f is None or f.value is None:
        return "unknown"
    return f"{f.value:,.1f} s" if f.value >= 10 else f"{f.value * 1000:,.0f} ms"


def pct(f: Figure | None) -> str:
    if f is None or f.value is None:
        return "unknown"
    return "<0.01%" if 0 < f.value < 0.01 else f"{f.value:.2f}%"


def size_gb(f: Figure | None) -> str:
    return "unknown" if f is None or f.value is None else f"{f.value / 1e9:.2f} GB"


USE_CASE_BOUND = {"prefill": "prefill-bound: the wait for the first token matters most",
                  "decode": "decode-bound: the speed of writing the answer matters most"}


def entitlement_text(d: dict) -> str:
    e = d.get("memory_budget_gb_entitled")
    if e is None:
        return ""
    if e == d["memory_budget_gb"]:
        return " (with Apple's increased-memory-limit entitlement)"
    return f" (without Apple's increased-memory-limit entitlement; {e} GB with it)"


def to_json(r: Report) -> str:
    return json.dumps(r.model_dump(), indent=2) + "\n"


def schema_json() -> str:
    return json.dumps(Report.model_json_schema(), indent=2) + "\n"


# ----------------------------------------------------------------------------------------- Markdown
NUMERIC = re.compile(r"^(unknown|[-+]?[\d,.]+( ?(ms|s|J|Wh|kWh|kg CO2e|gCO2e/kWh))?( \([\d,.]+-[\d,.]+\))?)$")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def esc(x: str) -> str:
        return str(x).replace("|", "\\|")

    def align(i: int) -> str:
        return " ---: " if rows and all(NUMERIC.match(str(r[i])) for r in rows) else " --- "
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align(i) for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return out


def to_markdown(r: Report) -> str:
    d = r.device
    L = [f"# {r.title}", "",
         f"Generated {r.generated_at} by slmplan {r.slmplan_version}. Context {r.query.ctx} tokens; a query = "
         f"{r.query.prompt_tokens} prompt + {r.query.generated_tokens} generated tokens.", "",
         *_md_summary(r),
         "## Device", "",
         f"**{d['name']}** (`{d['id']}`, {d['kind']}): {d['ram_gb']} GB RAM, memory budget {d['memory_budget_gb']} GB "
         f"for one app{entitlement_text(d)}, {d['memory_bandwidth_gbs']} GB/s memory bandwidth, {d['cpu_cores']} CPU cores"
         + (f", {d['power_w']} W" if d.get("power_w") else ", power unknown")
         + (f", {d['battery_wh']} Wh battery" if d.get("battery_wh") else "") + ".", ""]
    L += ["## Recommendation", ""]
    if r.recommendation:
        L += [f"**{r.recommendation.model} {r.recommendation.quant}** — {r.recommendation.why}.", ""]
    else:
        L += [f"No recommendation: {r.recommendation_note}.", ""]
    L += _md_decision(r) + _md_use_case(r) + _md_battery(r) + _md_deployment(r)
    L += ["## Candidates", ""]
    L += _md_table(["#", "model", "quant", "verdict", "total GiB", "budget GiB", "prefill t/s", "decode t/s (low-high)",
                    "time to first token", "measured"],
                   [[str(c.rank), c.model, c.quant, c.verdict, gib(c.total), gib(c.budget), num(c.prefill_tokens_per_s),
                     f"{num(c.decode_tokens_per_s)} ({num(c.decode_tokens_per_s_low)}-{num(c.decode_tokens_per_s_high)})",
                     ms(c.ttft), "yes" if c.benchmarked else "no"] for c in r.candidates])
    L += ["", "Memory breakdown (GiB, predicted):", ""]
    L += _md_table(["model", "quant", "weights", "KV cache", "compute", "overhead", "total"],
                   [[c.model, c.quant, gib(c.weights), gib(c.kv_cache), gib(c.compute), gib(c.overhead), gib(c.total)]
                    for c in r.candidates])
    L += ["", "## Predicted vs measured", ""]
    if r.measured:
        L += _md_table(["model", "test", "measured t/s", "predicted t/s", "measured / predicted", "measured J/token", "machine"],
                       [[m.model, m.test, num(m.measured_tokens_per_s, 2), num(m.predicted_tokens_per_s, 2),
                         "unknown" if m.ratio_measured_to_predicted is None else f"{m.ratio_measured_to_predicted:.2f}",
                         sig(m.joules_per_token) if m.joules_per_token.value is not None else "not measured",
                         m.machine] for m in r.measured])
        if r.measured and all(m.joules_per_token.value is None for m in r.measured):
            L += ["", "Energy was not measured: " + r.measured[0].joules_per_token.source.split(": ", 1)[1] + "."]
        L += [""]
        for b in r.bench_memory:
            L += [f"- {b.model}: peak RSS {gib(b.peak_rss)} GiB; weights mapped {gib(b.weights_mapped)} GiB "
                  f"(predicted {gib(b.predicted_weights)}); time to first token {ms(b.ttft)} (predicted {ms(b.predicted_ttft)})"]
        warns = sorted({w for m in r.measured for w in m.warnings})
        L += [f"- Warning from the benchmark: {w}" for w in warns]
    else:
        L += ["No benchmark was given (`--bench FILE.json`): every speed in this report is a prediction."]
    if r.runtimes:
        L += ["", "Benchmarks side by side (runtimes):", ""]
        L += _md_table(["model", "runtime", "prefill t/s", "decode t/s", "time to first token", "peak RSS GiB",
                        "load", "model size GiB"],
                       [[x.model, x.runtime, num(x.prefill_tokens_per_s), num(x.decode_tokens_per_s), ms(x.ttft),
                         gib(x.peak_rss), ms(x.load), gib(x.model_size)] for x in r.runtimes])
    if r.not_measured:
        L += ["", "Not measured (predictions only): " + ", ".join(r.not_measured) + "."]
    if r.kv_growth:
        k = r.kv_growth
        L += ["", f"## Context length effect ({k.model} {k.quant})", ""]
        L += _md_table(["context", "KV cache GiB", "total GiB", "within budget"],
                       [[str(p.ctx), gib(p.kv_cache_bytes), gib(p.total_bytes), "yes" if p.total_bytes <= k.budget_bytes else "no"]
                        for p in k.points])
    if r.energy:
        e = r.energy
        L += ["", f"## Energy and CO2 ({e.model} {e.quant})", ""]
        L += _md_table(["figure", "value", "source"],
                       [["energy per token", f"{sig(e.joules_per_token)} J", e.joules_per_token.source],
                        ["energy per query", f"{sig(e.wh_per_query)} Wh", e.wh_per_query.source],
                        [f"per year at {e.queries_per_day} queries/day", f"{sig(e.kwh_per_year)} kWh", e.kwh_per_year.source],
                        [f"grid intensity ({e.grid_region})", f"{sig(e.grid_intensity)} gCO2e/kWh", e.grid_intensity.source],
                        ["CO2 per year", f"{sig(e.co2_kg_per_year)} kg CO2e", e.co2_kg_per_year.source]])
        L += ["", "Against the cloud:", ""]
        L += _md_table(["cloud baseline", "Wh/query", "device / cloud", "source"],
                       [[c.label, sig(c.wh_per_query), "unknown" if c.local_to_cloud_ratio is None else f"{c.local_to_cloud_ratio:.3g}",
                         c.wh_per_query.source] for c in e.cloud])
        L += ["", e.cloud_note]
    L += ["", "## Privacy and offline use", ""] + [f"- {p}" for p in r.privacy]
    L += ["", "## Notes", ""] + [f"- {n}" for n in r.notes]
    return strip_controls("\n".join(L)) + "\n"  # names from files and profiles may carry escape sequences


def _md_summary(r: Report) -> list[str]:
    if not r.summary:
        return []
    return ["## Summary for decision makers", ""] + [f"- **{i.topic}{'' if i.topic.endswith('?') else ':'}** {i.text}" for i in r.summary] + [""]


def _md_decision(r: Report) -> list[str]:
    L = []
    for p in r.picks:
        L += [f"- **{p.role.capitalize()}: {p.model} {p.quant}** ({p.family or 'unknown family'}, license "
              f"{p.license or 'unknown'}) — {p.reason}"]
    if r.what_if:
        L += ["", "### What would change the choice", "",
              "Each line re-runs the planner with one thing changed:", ""]
        L += [f"- *{w.change}*: {w.summary}." for w in r.what_if]
    if r.glossary:
        L += ["", "### Key concepts", ""] + [f"- **{c.term}**: {c.explanation}" for c in r.glossary]
    return L + [""] if L else []


def _md_use_case(r: Report) -> list[str]:
    u = r.use_case
    if u is None:
        return []
    flag = "" if u.id == "default" else f" (`--use-case {u.id}`)"
    L = ["## Use case", "", f"**{u.label.capitalize()}**{flag}: {u.assumption}. One query = {r.query.prompt_tokens} "
         f"prompt + {r.query.generated_tokens} answer tokens, context {r.query.ctx} tokens. Expected "
         f"{USE_CASE_BOUND.get(u.expected_bound, u.expected_bound)}."]
    if u.predicted_split:
        L += ["", f"Predicted: {u.predicted_split}."]
    return L + [""]


def _md_battery(r: Report) -> list[str]:
    b = r.battery
    if b is None:
        return []
    L = [f"## Battery ({b.model} {b.quant}, estimates)", ""]
    rows = [["battery", f"{sig(b.battery_wh)} Wh", b.battery_wh.source],
            ["per query", pct(b.percent_per_query), b.percent_per_query.source],
            [f"per day at {b.queries_per_day} queries", pct(b.percent_per_day), b.percent_per_day.source],
            ["queries on a full charge", num(b.queries_per_charge, 0), b.queries_per_charge.source],
            ["hours of answering on a full charge", num(b.hours_answering_per_charge), b.hours_answering_per_charge.source]]
    if b.measured_wh_per_query is not None:
        rows.append(["measured energy per query", f"{sig(b.measured_wh_per_query)} Wh", b.measured_wh_per_query.source])
    L += _md_table(["figure", "value", "source"], rows) + [""] + [f"- {c}" for c in b.caveats]
    return L + [""]


def _md_deployment(r: Report) -> list[str]:
    dp = r.deployment
    if dp is None:
        return []
    L = [f"## Deployment path on {dp.platform} ({', '.join(dp.models)})", ""]
    L += _md_table(["runtime", "backend", "file format", "how to produce it", "slmplan", "source"],
                   [[o.runtime, o.backend, o.format, o.produce, o.speed_note, o.source] for o in dp.options])
    L += ["", "Download size per quant:", ""]
    L += _md_table(["model", "quant", "format", "size", "source"],
                   [[d.model, d.quant, d.format, size_gb(d.size), d.size.source] for d in dp.downloads])
    L += [""] + [f"- {n}" for n in dp.notes]
    return L + [""]


# --------------------------------------------------------------------------------------------- HTML


def to_html(r: Report, charts: dict[str, str] | None = None) -> str:
    try:
        import jinja2
    except ImportError:
        from slmplan.errors import MissingExtraError

        raise MissingExtraError("jinja2", "report", "The HTML report") from None
    if charts is None:
        from slmplan.report.charts import all_charts

        charts = all_charts(r)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    warnings = sorted({w for m in r.measured for w in m.warnings})
    return env.from_string(TEMPLATE).render(r=r, d=r.device, charts=charts, warnings=warnings, gib=gib, num=num,
                                            sig=sig, ms=ms, pct=pct, size_gb=size_gb, bound=USE_CASE_BOUND,
                                            entitlement_text=entitlement_text)


def render(r: Report, fmt: str) -> str:
    return {"html": to_html, "md": to_markdown, "json": to_json}[fmt](r)


def render_report(r: Report, fmt: str = "md") -> str:
    """The report as text: ``"html"`` (one self-contained page: inline CSS and SVG charts; needs the
    'report' extra), ``"md"`` (GitHub Markdown) or ``"json"`` (``Report.model_dump()`` as JSON)."""
    if fmt not in ("html", "md", "json"):
        from slmplan.errors import BadInputError

        raise BadInputError(f"fmt={fmt!r} is not one of html, md, json", "Use e.g. fmt='html'", params=("fmt",))
    return render(r, fmt)
