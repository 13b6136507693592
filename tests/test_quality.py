"""Ranking by published quality within one source, times the quant-loss prior."""

from __future__ import annotations

import json
import math

import pytest

from slmplan.devices import get_device
from slmplan.planner import Query, plan, recommend
from slmplan.quality import (
    benchmark_score,
    choose_source,
    figure,
    published_scores,
    quant_factor,
)


def test_quant_factor_is_the_kld_prior():
    assert quant_factor("Q4_K_M")[0] == pytest.approx(math.exp(-0.0313))  # llama.cpp scoreboard, no imatrix
    assert quant_factor("Q8_0")[0] > quant_factor("Q4_K_M")[0] > quant_factor("Q2_K")[0]
    assert quant_factor("F16") == (1.0, "reference precision")
    f, basis = quant_factor("IQ3_M")  # not in the table: the heuristic, and it says so
    assert 0 < f < 1 and "heuristic" in basis


def test_scores_come_from_one_source():
    src = choose_source(["qwen3-4b", "qwen3-1.7b", "gemma-3-1b", "llama-3.2-3b"])
    assert src == "Qwen3 Technical Report"  # scores three of the four; the Llama 3.2 card scores one
    s, metrics = benchmark_score("qwen3-4b", src)
    assert s == pytest.approx((77.3 + 81.2) / 2) and metrics == ("IFEval-strict-prompt", "MMLU-Redux")
    # llama-3.2-3b has scores, but only in other publications: never mixed in, heuristic instead
    fig = figure("llama-3.2-3b", "Q4_K_M", src)
    assert fig.method == "heuristic" and fig.value is None and "size heuristic" in fig.note


def test_task_weights_change_the_benchmarks():
    src = "Llama 3.2 model card"
    chat = benchmark_score("llama-3.2-3b", src, "chat")
    code = benchmark_score("llama-3.2-3b", src, "code")
    assert "IFEval" in chat[1] and "IFEval" not in code[1] and "GSM8K-CoT-8shot" in code[1]
    assert "proxy" in figure("llama-3.2-3b", "Q8_0", src, "code").note


def test_every_published_row_has_a_source():
    rows = published_scores()
    assert len(rows) > 50 and all(r.source and 0 < r.score <= 100 for r in rows)


def test_plan_ranks_by_published_quality_under_constraints():
    q = Query(ctx=2048)
    ranked = plan(get_device("macbook-air-m2"), q)
    ok = [r for r in ranked if r.verdict == "fits" and r.speed.decode_tokens_per_s >= q.min_decode_tokens_per_s]
    pub = [r for r in ok if r.quality["method"] == "published"]
    assert pub and ranked[: len(pub)] == pub  # scored candidates that meet both constraints lead
    assert len({r.quality["source"] for r in pub}) == 1  # compared within one source
    # by published quality at the score's resolution (half a point); a tie goes to the smaller footprint
    from slmplan.planner import PUBLISHED_SCORE_RESOLUTION as RES

    keys = [(-round(r.quality["value"] / RES), r.memory.total_bytes - r.memory.reclaimable_bytes) for r in pub]
    assert keys == sorted(keys)
    best, why = recommend(ranked, q)
    assert best == pub[0] and pub[0].quality["source"] in why and ("KLD" in why or "reference precision" in why)
    # higher-precision quant of the same model ranks above the lower one (same benchmark score)
    by = {(r.model, r.quant): r for r in pub}
    if ("qwen3-4b", "Q8_0") in by and ("qwen3-4b", "Q4_K_M") in by:
        assert by[("qwen3-4b", "Q8_0")].quality["value"] > by[("qwen3-4b", "Q4_K_M")].quality["value"]


def test_plan_json_carries_quality_and_task(cli):
    code, out, _ = cli("plan", "--device", "pixel-8", "--format", "json", "--task", "summarize")
    assert code == 0
    rows = json.loads(out)
    first = rows[0]
    for key in ("model", "quant", "verdict", "memory", "speed", "energy"):  # the contract keys stay
        assert key in first
    qual = first["quality"]
    assert set(qual) >= {"value", "benchmarks", "source", "quant_factor", "quant_basis", "method"}
    assert any(r["quality"]["method"] == "heuristic" for r in rows)  # unscored models say so


def test_bad_task_is_one_line_error(cli):
    code, out, err = cli("plan", "--device", "pixel-8", "--task", "poetry")
    assert code == 2 and err.startswith("Error: unknown task") and not out
