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
    assert [c.wh_per_query.value for c in e.cloud] == [0.2, 0.34, 0.3]
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
