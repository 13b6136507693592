"""The feasibility report: golden files pin the Markdown and JSON renderers, the HTML is rendered in a real
headless Chromium, and the three formats carry the same figures.

Regenerate the golden files after an intended change: UPDATE_GOLDEN=1 python -m pytest tests/test_report.py
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from slmplan.devices import get_device
from slmplan.report.build import build_report, load_bench
from slmplan.report.render import to_html, to_json, to_markdown

DATA = Path(__file__).parent / "data"
GOLDEN = Path(__file__).parent / "golden"
NOW = "2026-11-22T12:00:00+00:00"


@pytest.fixture(scope="module")
def report():
    # a real `slmplan bench smollm2-135m -o ...` result from the development machine (see tests/data/README.md)
    run = load_bench(str(DATA / "bench-smollm2-135m.json"))
    return build_report(get_device("pixel-8"), [run], None, top=4, now=NOW)


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1 once"
    assert text == path.read_text(), f"{name} changed; if intended, regenerate with UPDATE_GOLDEN=1"


def test_markdown_golden(report):
    _golden("report-pixel-8.md", to_markdown(report))


def test_json_golden_and_schema(report):
    text = to_json(report)
    _golden("report-pixel-8.json", text)
    data = json.loads(text)
    from slmplan.schema.report import Report

    assert Report.model_validate(data) == report
    # every Figure has a unit and a source
    figs = re.findall(r'"value": [^,]+,\s*"unit": "([^"]*)",\s*"source": "([^"]*)"', text)
    assert len(figs) > 50 and all(u and s for u, s in figs)


def test_content(report):
    r = report
    assert r.recommendation and r.candidates[0].model == r.recommendation.model
    assert any(c.benchmarked and c.quant == "Q4_1" for c in r.candidates)
    m = {x.test: x for x in r.measured}
    assert set(m) == {"pp512", "tg128"} and m["tg128"].ratio_measured_to_predicted > 0
    assert r.not_measured and all("smollm2-135m Q4_1" != x for x in r.not_measured)
    e = r.energy
    assert e.queries_per_day == 100 and e.kwh_per_year.value == pytest.approx(e.wh_per_query.value * 36.5, rel=1e-6)
    assert e.co2_kg_per_year.value == pytest.approx(e.kwh_per_year.value * 481 / 1000, rel=1e-6)
    assert e.joules_per_token.source.startswith("estimate") and "Ember" in e.grid_intensity.source
    assert [c.wh_per_query.value for c in e.cloud] == [0.2, 0.34, 0.3, 0.24]
    assert not any("calibration" in c.wh_per_query.source or "CONTRACT" in c.wh_per_query.source for c in e.cloud)
    kv = r.kv_growth
    assert [p.kv_cache_bytes for p in kv.points] == sorted(p.kv_cache_bytes for p in kv.points)


def test_formats_carry_the_same_figures(report):
    md, html = to_markdown(report), to_html(report, charts={})
    for c in report.candidates:
        total = f"{c.total.value / 2**30:.2f}"
        decode = f"{c.decode_tokens_per_s.value:,.1f}"
        assert total in md and total in html and decode in md and decode in html
    for m in report.measured:
        v = f"{m.measured_tokens_per_s.value:,.2f}"
        assert v in md and v in html
    assert f"{report.energy.wh_per_query.value:.3g}" in md and f"{report.energy.wh_per_query.value:.3g}" in html


def test_unknown_energy_says_depends():
    r = build_report(get_device("local"), [], ["smollm2-135m"], now=NOW)
    assert r.energy.wh_per_query.value is None and r.energy.co2_kg_per_year.value is None
    assert r.energy.cloud_note.startswith("Depends") and all(c.local_to_cloud_ratio is None for c in r.energy.cloud)
    r2 = build_report(get_device("local"), [], ["smollm2-135m"], power_w=15, grid="france", now=NOW)
    assert r2.energy.wh_per_query.value > 0 and r2.energy.grid_intensity.value == 56
    assert "--power-w" in r2.energy.wh_per_query.source


def test_html_is_self_contained(report):
    html = to_html(report)
    assert html.count("<svg") == 4
    assert not re.search(r"""(src|href)=["']https?:""", html) and "<script" not in html and "<link" not in html
    assert '<meta name="viewport"' in html and "@media print" in html


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (.ci/run installs Debian's 'chromium')")
def test_html_renders_in_headless_chromium(report, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(to_html(report))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-1000:]
    assert dom.stdout.count("<svg") == 4 and "Predicted vs measured" in dom.stdout
    assert "Summary for decision makers" in dom.stdout and "Deployment path on Android" in dom.stdout
    shot = tmp_path / "phone.png"
    r = subprocess.run([_chromium(), *flags, f"--screenshot={shot}", "--window-size=412,2400", "--hide-scrollbars",
                        page.as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.exists(), r.stderr[-1000:]
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)[..., :3]
    ink = (img.mean(axis=2) < 0.9).mean()  # share of non-white pixels
    assert ink > 0.03, f"screenshot looks blank ({ink:.1%} ink)"
    colours = {tuple((px * 20).round()) for px in img[::8, ::8].reshape(-1, 3)}
    assert len(colours) > 20  # charts and verdict colours, not just black text


def test_cli_report_formats_and_errors(cli, tmp_path):
    bench = str(DATA / "bench-smollm2-135m.json")
    for ext in ("html", "md", "json"):
        out = tmp_path / f"r.{ext}"
        code, _, err = cli("report", "--device", "raspberry-pi-5-8gb", "--bench", bench, "-o", str(out))
        assert code == 0, err
        assert out.stat().st_size > 1000
    assert json.loads((tmp_path / "r.json").read_text())["device"]["id"] == "raspberry-pi-5-8gb"
    code, out, _ = cli("report", "--schema")
    assert code == 0 and json.loads(out)["title"] == "Report"
    bad = tmp_path / "bad.json"
    bad.write_text('{"runtime": "llama.cpp"}')
    for args, needle in [(("--bench", str(bad)), "is not a slmplan bench result"),
                         (("--bench", "/nope.json"), "no such file"),
                         (("-o", str(tmp_path / "r.pdf")), "cannot tell the report format"),
                         (("--grid", "atlantis"), "no grid intensity for 'atlantis'"),
                         (("--queries-per-day", "0"), "not plausible")]:
        code, _, err = cli("report", "--device", "pixel-8", *args)
        assert code == 2 and err.startswith("Error: ") and needle in err, err


@pytest.mark.runtime
def test_demo_plans_benchmarks_and_reports(cli, tmp_path):
    pytest.importorskip("llama_cpp")
    code, out, err = cli("demo", "--out", str(tmp_path / "demo"), "--reps", "1")
    assert code == 0, err
    files = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert files == ["bench-smollm2-135m.json", "report.html", "report.json", "report.md"]
    rep = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert rep["device"]["id"] == "local" and {m["test"] for m in rep["measured"]} == {"pp512", "tg128"}
    assert "Recommendation:" in out and "3/3 Wrote" in out


# ------------------------------------------------------------------ issue 17: the report a tech lead takes to the meeting
from slmplan.planner import Query, plan, recommend  # noqa: E402
from slmplan.usecase import PRESETS, build_query  # noqa: E402


def test_use_case_presets_and_overrides():
    from slmplan.errors import BadInputError

    assert build_query(None)[0] == Query()  # no use case, no override: the planner's default query
    q, p, over = build_query("summarize")
    assert (q.n_prompt, q.n_gen, q.ctx, p.expected_bound, over) == (2000, 250, 4096, "prefill", [])
    assert build_query("chat")[1].expected_bound == "decode"
    q, _, over = build_query("summarize", prompt_tokens=6000)  # the preset's context grows to hold the override
    assert (q.n_prompt, q.ctx, over) == (6000, 8192, ["prompt tokens"])
    with pytest.raises(BadInputError, match="smaller than one query"):
        build_query("summarize", ctx=1024)
    with pytest.raises(BadInputError, match="unknown use case 'poem'"):
        build_query("poem")
    for preset in PRESETS.values():
        assert preset.prompt_tokens + preset.gen_tokens <= preset.ctx and preset.assumption


@pytest.fixture(scope="module")
def pixel9():
    return build_report(get_device("pixel-9"), use_case="summarize", service="offline meeting-note summaries", now=NOW)


def test_pixel9_summarize_carries_the_five_parts(pixel9):
    r, dev = pixel9, get_device("pixel-9")
    q = build_query("summarize")[0]
    # 1. the use case shapes the query and says where the time goes, consistent with the predicted numbers
    assert (r.query.prompt_tokens, r.query.generated_tokens, r.use_case.id) == (2000, 250, "summarize")
    primary = next(c for c in plan(dev, q) if (c.model, c.quant) == (r.picks[0].model, r.picks[0].quant))
    prefill_bound = primary.speed.ttft_s > q.n_gen / primary.speed.decode_tokens_per_s
    assert ("prefill-bound" if prefill_bound else "decode-bound") in r.use_case.predicted_split
    assert r.service.description == "offline meeting-note summaries" and not r.service.placeholder
    # 2. battery: shares of the profile's battery, from the energy estimate
    b = r.battery
    wh = primary.energy.wh_per_query
    assert b.battery_wh.value == dev.battery_wh and "mAh" in b.battery_wh.source
    assert b.percent_per_query.value == pytest.approx(wh / dev.battery_wh * 100)
    assert b.percent_per_day.value == pytest.approx(b.percent_per_query.value * 100)
    assert b.queries_per_charge.value == pytest.approx(dev.battery_wh / wh)
    assert b.hours_answering_per_charge.value == pytest.approx(dev.battery_wh / dev.power_w)
    assert all(f.source.startswith("estimate") for f in (b.percent_per_query, b.percent_per_day, b.queries_per_charge))
    assert any("throttle" in c for c in b.caveats) and b.measured_wh_per_query is None
    # 3. deployment: only llama.cpp carries a speed; the rest is "not predicted", never a number
    d = r.deployment
    assert d.platform == "Android" and {o.runtime.split(" (")[0] for o in d.options} >= {"llama.cpp", "ONNX Runtime GenAI"}
    for o in d.options:
        if o.slmplan == "predicted":
            assert o.runtime == "llama.cpp" and f"{primary.speed.decode_tokens_per_s:.1f} tokens/s" in o.speed_note
        else:
            assert o.slmplan == "not predicted" and "tokens/s" not in o.speed_note
        assert o.source and o.format and o.produce
    assert not any("MLX" in o.runtime or "Core ML" in o.runtime for o in d.options)  # Apple-only runtimes
    assert d.downloads and all(x.size.source.startswith(("published", "estimate")) for x in d.downloads)
    # 4. two picks from two families, both within the budget, the primary being the recommendation
    p1, p2 = r.picks
    assert p1.model == r.recommendation.model and p1.family != p2.family
    assert all(p.verdict != "does-not-fit" and p.total.value <= p.budget.value and p.license in p.reason for p in r.picks)
    # ... and what would change the choice is the planner re-run, not prose
    tight = r.what_if[0]
    best, _ = recommend(plan(dev.model_copy(update={"memory_budget_gb": 2.0}), q), q)
    assert "2 GB" in tight.change and (tight.pick_model, tight.pick_quant) == (best.model, best.quant)
    assert tight.total.value <= 2 * 2**30 and len(r.what_if) == 3  # not an iOS device: no entitlement row
    # 5. the plain-words summary and the key concepts
    topics = [i.topic for i in r.summary]
    assert topics == ["Service", "Does it fit?", "How fast does it feel?", "Battery", "Privacy", "Offline"]
    assert r.summary[0].text == "offline meeting-note summaries" and r.summary[1].text.startswith("Yes.")
    assert {"Quantization", "KV cache", "Time to first token", "NPU", "Memory budget"} <= {c.term for c in r.glossary}


def test_pixel9_formats_carry_the_new_parts(pixel9):
    md, html, js = to_markdown(pixel9), to_html(pixel9, charts={}), json.loads(to_json(pixel9))
    for text in (md, html):
        for needle in ("Summary for decision makers", "offline meeting-note summaries", "What would change the choice",
                       "Key concepts", "Time to first token", "Deployment path on Android", "not predicted",
                       f"{pixel9.battery.percent_per_day.value:.2f}%", pixel9.picks[1].model, "throttle"):
            assert needle in text, needle
    assert js["use_case"]["id"] == "summarize" and len(js["picks"]) == 2 and js["battery"]["battery_wh"]["value"] == 18.2
    assert js["schema_version"] == 2 and {c["term"] for c in js["glossary"]} >= {"NPU", "KV cache"}


def test_service_placeholder_and_nothing_that_cannot_run():
    from slmplan.schema.device import DeviceProfile

    r = build_report(get_device("pixel-9"), now=NOW, service="  ")
    assert r.service.placeholder and "PLACEHOLDER" in r.summary[0].text
    assert build_report(get_device("pixel-9"), now=NOW, service="a\n| b").service.description == "a | b"
    assert 'class="placeholder"' in to_html(r, charts={}) and "PLACEHOLDER" in to_markdown(r)
    tiny = DeviceProfile(id="tiny", name="Tiny phone", kind="phone", ram_gb=1, memory_budget_gb=0.05,
                         memory_bandwidth_gbs=10, cpu_cores=4, power_w=3, battery_wh=10,
                         sources={"battery_wh": "test", "power_w": "test"})
    r = build_report(tiny, use_case="chat", now=NOW)
    assert r.recommendation is None and r.picks == [] and r.what_if == [] and r.deployment is None
    assert r.summary[1].text.startswith("No.") and r.battery is None


def test_ios_budgets_with_and_without_the_entitlement(cli):
    from slmplan.entitlement import annotate
    from slmplan.planner import fit

    dev = get_device("iphone-15-pro")
    assert dev.memory_budget_gb < dev.memory_budget_gb_entitled <= dev.ram_gb
    res, ent = fit("llama-3.2-3b", dev), fit("llama-3.2-3b", dev.with_entitlement())
    out = annotate(res, ent, dev, used_entitlement=False)
    differs = [(a, b) for a, b in zip(res, ent) if a.verdict != b.verdict]
    assert differs, "the two budgets should split at least one quant of a 3B model"
    for (a, b), r in zip(zip(res, ent), out):
        noted = [n for n in r.memory.notes if "entitlement" in n]
        assert bool(noted) == (a.verdict != b.verdict)
        if a.verdict == "does-not-fit" and b.verdict != "does-not-fit":
            assert "fits only with" in noted[0]
    code, outp, _ = cli("fit", "llama-3.2-3b", "--device", "iphone-15-pro", "--format", "json")
    assert code == 0 and any("entitlement" in n for d in json.loads(outp) for n in d["memory"]["notes"])
    code, outp, _ = cli("plan", "--device", "iphone-15-pro", "--ios-entitlement", "--top", "3")
    assert code == 0 and "budget 4 GB" in outp
    code, _, err = cli("fit", "llama-3.2-1b", "--device", "pixel-9", "--ios-entitlement")
    assert code == 2 and err.startswith("Error: device 'pixel-9' has no budget with the increased-memory-limit")
    r = build_report(dev, use_case="chat", now=NOW)
    assert any("entitlement" in w.change for w in r.what_if) and r.deployment.platform == "iOS / iPadOS"
    assert "without Apple's increased-memory-limit entitlement" in r.summary[1].text
    assert "without Apple's increased-memory-limit entitlement; 4.0 GB with it" in to_markdown(r)
    r2 = build_report(dev.with_entitlement(), use_case="chat", now=NOW)
    assert not any("entitlement" in w.change for w in r2.what_if) and " with Apple's" in r2.summary[1].text
    runtimes = {o.runtime.split(" (")[0] for o in r.deployment.options}
    assert runtimes >= {"llama.cpp", "MLX"}
    # Core ML's published LLM path covers Llama only: listed exactly when a pick is a llama-architecture model
    from slmplan.catalog import get_model, load_catalog

    archs = {get_model(load_catalog(), p.model).architecture for p in r.picks}
    assert ("Core ML" in runtimes) == ("llama" in archs)


def test_cli_use_case_and_service(cli, tmp_path):
    for ext in ("html", "md", "json"):
        out = tmp_path / f"r.{ext}"
        code, _, err = cli("report", "--device", "pixel-9", "--use-case", "summarize", "--service",
                           "offline meeting-note summaries", "-o", str(out))
        assert code == 0, err
        assert "offline meeting-note summaries" in out.read_text()
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["query"] == {"ctx": 4096, "prompt_tokens": 2000, "generated_tokens": 250}
    code, outp, _ = cli("fit", "llama-3.2-1b", "--device", "pixel-9", "--use-case", "summarize", "--gen-tokens", "100",
                        "--format", "json")
    e = json.loads(outp)[0]["energy"]
    assert code == 0 and (e["prompt_tokens"], e["generated_tokens"]) == (2000, 100)
    code, _, err = cli("plan", "--device", "pixel-9", "--use-case", "poem")
    assert code == 2 and err.startswith("Error: unknown use case 'poem'. Use one of: chat, summarize, translate, rewrite")
    code, outp, _ = cli("report", "--help")
    flat = " ".join(w for w in outp.split() if w != "│")  # rich wraps the help in a box
    assert "--use-case" in flat and "summarize = 2000 prompt + 250 answer tokens" in flat


def test_battery_shows_the_rapl_measured_figure_when_bench_had_it():
    run = load_bench(str(DATA / "bench-smollm2-135m.json"))
    assert all(r.joules_per_token is None for r in run.results)  # this machine had no RAPL access
    rapl = run.model_copy(update={"results": [r.model_copy(update={"joules_per_token": 0.5 if r.n_gen == 0 else 2.0})
                                              for r in run.results]})
    r = build_report(get_device("pixel-9"), [rapl], None, top=3, now=NOW)
    m = r.battery.measured_wh_per_query
    assert m.value == pytest.approx((0.5 * 300 + 2.0 * 200) / 3600) and m.source.startswith("measured: Linux RAPL")
    assert build_report(get_device("pixel-9"), [run], None, top=3, now=NOW).battery.measured_wh_per_query is None


def test_runtimes_data_is_sourced_and_well_formed():
    from slmplan.report.deploy import runtimes

    rts = runtimes()
    assert {"llama.cpp", "mlx", "coreml", "onnxruntime-genai", "litert-lm", "executorch", "qualcomm-genie"} <= {r["id"] for r in rts}
    for r in rts:
        assert r["source"] and r["format"] and r["produce"] and r["slmplan"] in ("predicted", "predicted-npu", "measured-only", "not predicted")
        if r["slmplan"] == "predicted-npu":  # names a runtime the NPU estimator fits
            from slmplan.estimate.npu import RUNTIMES
            assert r["npu_runtime"] in RUNTIMES
        assert set(r["backends"]) <= {"ios", "android", "macos", "windows", "linux"}
        assert all(v.count("(") == v.count(")") for v in r["backends"].values()), r["backends"]  # YAML flow maps split on commas
    assert [r["id"] for r in rts if r["slmplan"] == "predicted"] == ["llama.cpp"]


def test_deployment_path_gives_the_npu_runtime_its_own_prediction():
    """Genie on a Snapdragon: the deployment table used to say "not predicted: slmplan does not model this
    runtime" although --runtime npu predicts it; now it gives the NPU estimate, and on a chip without
    Genie data (Tensor G3) it says why there is none."""
    from slmplan.catalog import facts, get_model, load_catalog
    from slmplan.estimate.npu import estimate_npu_speed

    dev = get_device("snapdragon-x-elite-laptop")
    r = build_report(dev, q=Query(ctx=4096), now=NOW)
    genie = next(o for o in r.deployment.options if o.runtime.startswith("Qualcomm Genie"))
    assert genie.slmplan == "predicted" and "--runtime npu" in genie.speed_note
    best = r.deployment.models[0]
    s = estimate_npu_speed(facts(get_model(load_catalog(), best)), dev, 300)
    assert f"~{s.decode_tokens_per_s:.1f} tokens/s decode" in genie.speed_note
    assert any("with --runtime npu" in n for n in r.deployment.notes)
    # the same chip with no Genie path known: the row says why there is no estimate
    no_qnn = dev.model_copy(update={"npu_runtimes": []})
    genie = next(o for o in build_report(no_qnn, q=Query(ctx=4096), now=NOW).deployment.options
                 if o.runtime.startswith("Qualcomm Genie"))
    assert genie.slmplan == "not predicted" and "path known for this chip" in genie.speed_note
    # a chip listing two NPU runtimes: each row predicts with its own (Genie's, not the first listed)
    both = dev.model_copy(update={"npu_runtimes": ["openvino-npu", "qnn"]})
    genie = next(o for o in build_report(both, q=Query(ctx=4096), now=NOW).deployment.options
                 if o.runtime.startswith("Qualcomm Genie"))
    assert f"~{s.decode_tokens_per_s:.1f} tokens/s decode" in genie.speed_note
    # a runtime whose fit rests on fewer than 3 decode rows (Core ML: 1) is not shown as a number
    mac = build_report(get_device("mac-mini-m4"), (), ["llama-3.2-1b"], q=Query(ctx=4096), now=NOW)
    coreml = next(o for o in mac.deployment.options if o.runtime.startswith("Core ML"))
    assert coreml.slmplan == "not predicted" and "too few" in coreml.speed_note
    # a report whose speeds are the NPU's does not pass them off as llama.cpp's
    npu = build_report(dev, q=Query(ctx=4096, runtime="npu"), now=NOW)
    lc = next(o for o in npu.deployment.options if o.runtime == "llama.cpp")
    assert lc.slmplan == "not predicted" and "--runtime npu" in lc.speed_note
    assert any("NPU runtime's (--runtime npu)" in n for n in npu.notes)


def test_report_with_unknown_speed_says_unknown():
    # --runtime npu on a chip with no NPU runtime: decode and TTFT are unknown (None); the report used to
    # crash formatting them
    from slmplan.report import charts

    r = build_report(get_device("pixel-8"), q=Query(ctx=4096, runtime="npu"), now=NOW)
    assert r.candidates and all(c.decode_tokens_per_s.value is None for c in r.candidates)
    md = to_markdown(r)
    assert "unknown speed" in md and "decode speed unknown" in md
    feel = next(i.text for i in r.summary if i.topic == "How fast does it feel?")
    assert "writing speed is unknown" in feel and "wait before the first word is unknown" in feel
    assert charts.speed_vs_memory(r) is None  # no point invented at 0 tokens/s
    assert "unknown tokens/s" in json.dumps(to_json(r)) or not r.what_ifs


def test_download_size_keeps_the_per_layer_embedding_table_when_it_is_mapped():
    """A mapped PLE table is left out of RAM, not out of the file: the download is the same either way."""
    from dataclasses import replace as _replace

    from slmplan.estimate.memory import RuntimeSettings
    from slmplan.planner import Query, fit
    from slmplan.report.deploy import _downloads

    dev = get_device("pixel-8")
    sizes = {}
    for how in ("resident", "mapped"):
        q = Query(settings=_replace(RuntimeSettings(), per_layer_embd=how))
        res = fit("gemma-3n-e2b", dev, "Q4_K_M", q)
        (d,) = [x for x in _downloads(["gemma-3n-e2b"], res) if x.quant == "Q4_K_M"]
        sizes[how] = (d.size.value, res[0].memory)
    (resident, m_res), (mapped, m_map) = sizes["resident"], sizes["mapped"]
    assert m_map.weights_bytes == m_res.weights_bytes - m_res.per_layer_embd_bytes > 0
    assert mapped == resident == m_res.weights_bytes
