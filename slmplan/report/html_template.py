"""The HTML report's Jinja2 template (inline CSS, no scripts, no external files)."""

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
.summary { border-left: 5px solid #2F4B7C; } .summary dt { font-weight: 600; margin-top: .45em; } .summary dd { margin: 0 0 .2em 0; }
.placeholder { background: #fff3cd; border: 1px dashed var(--warn); padding: 0 4px; }
.pick { margin: .5em 0; } .pick .role { font-size: .8em; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.rt { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; margin: 8px 0; }
.rt h4 { margin: 0 0 .2em; font-size: 1em; } .rt p { margin: .15em 0; }
.tag { display: inline-block; font-size: .75em; padding: 0 6px; border-radius: 8px; background: var(--bg2); border: 1px solid var(--line); }
.tag.predicted, .tag.measured { color: var(--ok); border-color: var(--ok); }
dl.concepts dt { font-weight: 600; } dl.concepts dd { margin: 0 0 .5em 0; }
td.wrap { white-space: normal; text-align: left; }
@media (max-width: 600px) { body { font-size: 14px; padding: 10px; } th, td { padding: 4px 5px; } }
@media print { body { max-width: none; } .chart, table, .card { break-inside: avoid; } a { color: inherit; } }
</style></head><body>
<h1>{{ r.title }}</h1>
<p class="muted">Generated {{ r.generated_at }} by slmplan {{ r.slmplan_version }}. Context {{ r.query.ctx }} tokens;
a query = {{ r.query.prompt_tokens }} prompt + {{ r.query.generated_tokens }} generated tokens.</p>

{% if r.summary %}<div class="card summary" id="summary"><strong>Summary for decision makers</strong>
<dl>{% for i in r.summary %}<dt>{{ i.topic }}</dt><dd>{% if i.topic == "Service" and r.service and r.service.placeholder %}<span class="placeholder">{{ i.text }}</span>{% else %}{{ i.text }}{% endif %}</dd>{% endfor %}</dl></div>{% endif %}

<div class="card rec"><strong>Recommendation:</strong>
{% if r.recommendation %}<strong>{{ r.recommendation.model }} {{ r.recommendation.quant }}</strong> — {{ r.recommendation.why }}.
{% else %}none — {{ r.recommendation_note }}.{% endif %}</div>

{% if r.picks %}<h2>Two picks and why</h2>
{% for p in r.picks %}<div class="pick"><span class="role">{{ p.role }}</span><br><strong>{{ p.model }} {{ p.quant }}</strong>
<span class="muted">({{ p.family or "unknown family" }}, license {{ p.license or "unknown" }})</span> — {{ p.reason }}</div>{% endfor %}{% endif %}
{% if r.what_if %}<h3>What would change the choice</h3><p class="muted">Each row re-runs the planner with one thing changed.</p>
<div class="scroll"><table><tr><th class="l">if…</th><th class="l">then (planner's first choice)</th></tr>
{% for w in r.what_if %}<tr><td class="wrap">{{ w.change }}</td><td class="wrap">{{ w.summary }}</td></tr>{% endfor %}</table></div>{% endif %}
{% if r.glossary %}<h3>Key concepts</h3><dl class="concepts">{% for c in r.glossary %}<dt>{{ c.term }}</dt><dd>{{ c.explanation }}</dd>{% endfor %}</dl>{% endif %}

{% if r.use_case %}{% set u = r.use_case %}<h2>Use case</h2>
<p><strong>{{ u.label|capitalize }}</strong>{% if u.id != "default" %} (<code>--use-case {{ u.id }}</code>){% endif %}: {{ u.assumption }}.
One query = {{ r.query.prompt_tokens }} prompt + {{ r.query.generated_tokens }} answer tokens, context {{ r.query.ctx }} tokens.
Expected {{ bound.get(u.expected_bound, u.expected_bound) }}.</p>
{% if u.predicted_split %}<p>Predicted: {{ u.predicted_split }}.</p>{% endif %}{% endif %}

{% if r.battery %}{% set b = r.battery %}<h2>Battery ({{ b.model }} {{ b.quant }}, estimates)</h2>
<div class="scroll"><table><tr><th class="l">figure</th><th>value</th><th class="l">source</th></tr>
<tr><td class="l">battery</td><td>{{ sig(b.battery_wh) }} Wh</td><td class="src">{{ b.battery_wh.source }}</td></tr>
<tr><td class="l">per query</td><td>{{ pct(b.percent_per_query) }}</td><td class="src">{{ b.percent_per_query.source }}</td></tr>
<tr><td class="l">per day ({{ b.queries_per_day }} queries)</td><td>{{ pct(b.percent_per_day) }}</td><td class="src">{{ b.percent_per_day.source }}</td></tr>
<tr><td class="l">queries per charge</td><td>{{ num(b.queries_per_charge, 0) }}</td><td class="src">{{ b.queries_per_charge.source }}</td></tr>
<tr><td class="l">hours answering per charge</td><td>{{ num(b.hours_answering_per_charge) }}</td><td class="src">{{ b.hours_answering_per_charge.source }}</td></tr>
{% if b.measured_wh_per_query %}<tr><td class="l">measured per query</td><td>{{ sig(b.measured_wh_per_query) }} Wh</td><td class="src">{{ b.measured_wh_per_query.source }}</td></tr>{% endif %}
</table></div><ul class="muted">{% for c in b.caveats %}<li>{{ c }}</li>{% endfor %}</ul>{% endif %}

{% if r.deployment %}{% set dp = r.deployment %}<h2>Deployment path on {{ dp.platform }}</h2>
<p class="muted">For {{ dp.models|join(", ") }}.</p>
{% for o in dp.options %}<div class="rt"><h4>{{ o.runtime }} <span class="tag {{ o.slmplan.split(' ')[0] }}">{{ o.slmplan }}</span></h4>
<p><strong>Runs on:</strong> {{ o.backend }}. <strong>File:</strong> {{ o.format }}.</p>
<p><strong>How to produce it:</strong> {{ o.produce }}</p>
<p class="muted">{{ o.speed_note }}. Source: {{ o.source }}</p></div>{% endfor %}
<h3>Download size per quant</h3>
<div class="scroll"><table><tr><th class="l">model</th><th class="l">quant</th><th class="l">format</th><th>size</th><th class="l">source</th></tr>
{% for x in dp.downloads %}<tr><td class="l">{{ x.model }}</td><td class="l">{{ x.quant }}</td><td class="l">{{ x.format }}</td><td>{{ size_gb(x.size) }}</td><td class="src">{{ x.size.source }}</td></tr>{% endfor %}
</table></div><ul class="muted">{% for n in dp.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}

<h2>Device</h2>
<p><strong>{{ d.name }}</strong> (<code>{{ d.id }}</code>, {{ d.kind }}): {{ d.ram_gb }} GB RAM, memory budget
{{ d.memory_budget_gb }} GB for one app{{ entitlement_text(d) }}, {{ d.memory_bandwidth_gbs }} GB/s memory bandwidth, {{ d.cpu_cores }} CPU cores{% if d.get('power_w') %}, {{ d.power_w }} W{% else %}, power unknown{% endif %}{% if d.get('battery_wh') %}, {{ d.battery_wh }} Wh battery{% endif %}.</p>

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
