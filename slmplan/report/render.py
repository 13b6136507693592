"""The report as self-contained HTML (inline CSS and SVG charts), GitHub Markdown, or JSON."""

from __future__ import annotations

import json
import re

from slmplan.schema.report import Figure, Report

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
         "## Device", "",
         f"**{d['name']}** (`{d['id']}`, {d['kind']}): {d['ram_gb']} GB RAM, memory budget {d['memory_budget_gb']} GB "
         f"for one app, {d['memory_bandwidth_gbs']} GB/s memory bandwidth, {d['cpu_cores']} CPU cores"
         + (f", {d['power_w']} W" if d.get("power_w") else ", power unknown") + ".", ""]
    L += ["## Recommendation", ""]
    if r.recommendation:
        L += [f"**{r.recommendation.model} {r.recommendation.quant}** — {r.recommendation.why}.", ""]
    else:
        L += [f"No recommendation: {r.recommendation_note}.", ""]
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
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------------------------- HTML
TEMPLATE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ r.title }}</title>
<style>
:root { --fg:#1d2330; --muted:#5b6474; --line:#dde2ea; --ok:#1e7b34; --warn:#a06400; --bad:#b3261e; --bg2:#f6f8fb; }
* { box-sizing: border-box; }
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: var(--fg);
       margin: 0 auto; max-width: 980px; padding: 16px; }
h1 { font-size: 1.6em; margin: .2em 0 .1em; } h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid var(--line); }
.muted { color: var(--muted); font-size: .9em; }
.card { background: var(--bg2); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin: 12px 0; }
.rec { border-left: 5px solid var(--ok); }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; width: 100%; font-size: .9em; margin: 8px 0; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child, td.l, th.l { text-align: left; }
th { background: var(--bg2); }
.fits { color: var(--ok); font-weight: 600; } .tight { color: var(--warn); font-weight: 600; } .does-not-fit { color: var(--bad); font-weight: 600; }
.chart svg { width: 100%; height: auto; max-width: 100%; }
.warn { color: var(--warn); }
.src { color: var(--muted); font-size: .8em; white-space: normal; text-align: left; }
@media (max-width: 600px) { body { font-size: 14px; padding: 10px; } th, td { padding: 4px 5px; } }
@media print { body { max-width: none; } .chart, table, .card { break-inside: avoid; } a { color: inherit; } }
</style></head><body>
<h1>{{ r.title }}</h1>
<p class="muted">Generated {{ r.generated_at }} by slmplan {{ r.slmplan_version }}. Context {{ r.query.ctx }} tokens;
a query = {{ r.query.prompt_tokens }} prompt + {{ r.query.generated_tokens }} generated tokens.</p>

<div class="card rec"><strong>Recommendation:</strong>
{% if r.recommendation %}<strong>{{ r.recommendation.model }} {{ r.recommendation.quant }}</strong> — {{ r.recommendation.why }}.
{% else %}none — {{ r.recommendation_note }}.{% endif %}</div>

<h2>Device</h2>
<p><strong>{{ d.name }}</strong> (<code>{{ d.id }}</code>, {{ d.kind }}): {{ d.ram_gb }} GB RAM, memory budget
{{ d.memory_budget_gb }} GB for one app, {{ d.memory_bandwidth_gbs }} GB/s memory bandwidth, {{ d.cpu_cores }} CPU cores{% if d.get('power_w') %}, {{ d.power_w }} W{% else %}, power unknown{% endif %}.</p>

<h2>Candidates</h2>
<div class="scroll"><table>
<tr><th>#</th><th class="l">model</th><th class="l">quant</th><th class="l">verdict</th><th>total GiB</th><th>budget GiB</th>
<th>prefill t/s</th><th>decode t/s</th><th>low–high</th><th>first token</th><th>measured</th></tr>
{% for c in r.candidates %}<tr><td>{{ c.rank }}</td><td class="l">{{ c.model }}</td><td class="l">{{ c.quant }}</td>
<td class="l {{ c.verdict }}">{{ c.verdict }}</td><td>{{ gib(c.total) }}</td><td>{{ gib(c.budget) }}</td>
<td>{{ num(c.prefill_tokens_per_s) }}</td><td>{{ num(c.decode_tokens_per_s) }}</td>
<td>{{ num(c.decode_tokens_per_s_low) }}–{{ num(c.decode_tokens_per_s_high) }}</td><td>{{ ms(c.ttft) }}</td>
<td>{{ "yes" if c.benchmarked else "no" }}</td></tr>
{% endfor %}</table></div>
{% if charts.get('memory') %}<div class="chart" id="chart-memory">{{ charts.memory|safe }}</div>{% endif %}
{% if charts.get('speed') %}<div class="chart" id="chart-speed">{{ charts.speed|safe }}</div>{% endif %}

<h2>Predicted vs measured</h2>
{% if r.measured %}<div class="scroll"><table>
<tr><th class="l">model</th><th class="l">test</th><th>measured t/s</th><th>predicted t/s</th><th>measured / predicted</th><th>measured J/token</th><th class="l">machine</th></tr>
{% for m in r.measured %}<tr><td class="l">{{ m.model }}</td><td class="l">{{ m.test }}</td><td>{{ num(m.measured_tokens_per_s, 2) }}</td>
<td>{{ num(m.predicted_tokens_per_s, 2) }}</td><td>{{ "unknown" if m.ratio_measured_to_predicted is none else "%.2f"|format(m.ratio_measured_to_predicted) }}</td>
<td>{{ sig(m.joules_per_token) if m.joules_per_token.value is not none else "not measured" }}</td>
<td class="l">{{ m.machine }}</td></tr>{% endfor %}</table></div>
<ul>{% for b in r.bench_memory %}<li>{{ b.model }}: peak RSS {{ gib(b.peak_rss) }} GiB; weights mapped {{ gib(b.weights_mapped) }} GiB
(predicted {{ gib(b.predicted_weights) }}); time to first token {{ ms(b.ttft) }} (predicted {{ ms(b.predicted_ttft) }})</li>{% endfor %}
{% if r.measured[0].joules_per_token.value is none %}<li class="muted">Energy was not measured: Linux RAPL energy counters were not readable on the benchmark machine.</li>{% endif %}
{% for w in warnings %}<li class="warn">Warning from the benchmark: {{ w }}</li>{% endfor %}</ul>
{% if charts.get('measured') %}<div class="chart" id="chart-measured">{{ charts.measured|safe }}</div>{% endif %}
{% else %}<p>No benchmark was given (<code>--bench FILE.json</code>): every speed in this report is a prediction.</p>{% endif %}
{% if r.runtimes %}<h3>Benchmarks side by side</h3><div class="scroll"><table>
<tr><th class="l">model</th><th class="l">runtime</th><th>prefill t/s</th><th>decode t/s</th><th>first token</th><th>peak RSS GiB</th><th>load</th><th>model GiB</th></tr>
{% for x in r.runtimes %}<tr><td class="l">{{ x.model }}</td><td class="l">{{ x.runtime }}</td><td>{{ num(x.prefill_tokens_per_s) }}</td>
<td>{{ num(x.decode_tokens_per_s) }}</td><td>{{ ms(x.ttft) }}</td><td>{{ gib(x.peak_rss) }}</td><td>{{ ms(x.load) }}</td><td>{{ gib(x.model_size) }}</td></tr>{% endfor %}
</table></div>{% endif %}
{% if r.not_measured %}<p class="muted">Not measured (predictions only): {{ r.not_measured|join(", ") }}.</p>{% endif %}

{% if r.kv_growth %}<h2>Context length effect ({{ r.kv_growth.model }} {{ r.kv_growth.quant }})</h2>
{% if charts.get('kv') %}<div class="chart" id="chart-kv">{{ charts.kv|safe }}</div>{% endif %}
<div class="scroll"><table><tr><th class="l">context</th><th>KV cache GiB</th><th>total GiB</th><th>within budget</th></tr>
{% for p in r.kv_growth.points %}<tr><td class="l">{{ p.ctx }}</td><td>{{ gib(p.kv_cache_bytes) }}</td><td>{{ gib(p.total_bytes) }}</td>
<td>{{ "yes" if p.total_bytes <= r.kv_growth.budget_bytes else "no" }}</td></tr>{% endfor %}</table></div>{% endif %}

{% if r.energy %}{% set e = r.energy %}<h2>Energy and CO2 ({{ e.model }} {{ e.quant }})</h2>
<div class="scroll"><table><tr><th class="l">figure</th><th>value</th><th class="l">source</th></tr>
<tr><td class="l">energy per token</td><td>{{ sig(e.joules_per_token) }} J</td><td class="src">{{ e.joules_per_token.source }}</td></tr>
<tr><td class="l">energy per query</td><td>{{ sig(e.wh_per_query) }} Wh</td><td class="src">{{ e.wh_per_query.source }}</td></tr>
<tr><td class="l">per year at {{ e.queries_per_day }} queries/day</td><td>{{ sig(e.kwh_per_year) }} kWh</td><td class="src">{{ e.kwh_per_year.source }}</td></tr>
<tr><td class="l">grid intensity ({{ e.grid_region }})</td><td>{{ sig(e.grid_intensity) }} gCO2e/kWh</td><td class="src">{{ e.grid_intensity.source }}</td></tr>
<tr><td class="l">CO2 per year</td><td>{{ sig(e.co2_kg_per_year) }} kg CO2e</td><td class="src">{{ e.co2_kg_per_year.source }}</td></tr>
</table></div>
<div class="scroll"><table><tr><th class="l">cloud baseline</th><th>Wh/query</th><th>device / cloud</th><th class="l">source</th></tr>
{% for c in e.cloud %}<tr><td class="l">{{ c.label }}</td><td>{{ sig(c.wh_per_query) }}</td>
<td>{{ "unknown" if c.local_to_cloud_ratio is none else "%.3g"|format(c.local_to_cloud_ratio) }}</td><td class="src">{{ c.wh_per_query.source }}</td></tr>{% endfor %}
</table></div><p>{{ e.cloud_note }}</p>{% endif %}

<h2>Privacy and offline use</h2>
<ul>{% for p in r.privacy %}<li>{{ p }}</li>{% endfor %}</ul>
<h2>Notes</h2>
<ul class="muted">{% for n in r.notes %}<li>{{ n }}</li>{% endfor %}</ul>
</body></html>
"""


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
                                            sig=sig, ms=ms)


def render(r: Report, fmt: str) -> str:
    return {"html": to_html, "md": to_markdown, "json": to_json}[fmt](r)


def render_report(r: Report, fmt: str = "md") -> str:
    """The report as text: ``"html"`` (one self-contained page: inline CSS and SVG charts; needs the
    'report' extra), ``"md"`` (GitHub Markdown) or ``"json"`` (``Report.model_dump()`` as JSON)."""
    if fmt not in ("html", "md", "json"):
        from slmplan.errors import BadInputError

        raise BadInputError(f"fmt={fmt!r} is not one of html, md, json", "Use e.g. fmt='html'", params=("fmt",))
    return render(r, fmt)
