"""Quality figures for ranking: published benchmark scores times a quant-loss prior.

* Published scores (``data/calibration/quality_published.csv``): each row a model, benchmark, score
  and the publication it comes from. Harnesses differ between publications, so scores are compared
  only within one source: ``choose_source`` picks the source that scores the most of the candidates.
* Quant loss (``data/calibration/quant_quality_llama3_8b.csv``): llama.cpp's mean KL divergence of each
  quant type against FP16 on LLaMA 3 8B (tools/perplexity/README.md). The loss depends on the model,
  so it is a prior: the factor is exp(-KLD), 1.0 for 16/32-bit weights. Types the table lacks fall
  back to the bits-per-weight heuristic of ``quant_quality_rank`` and say so.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from slmplan.estimate.quants import quant_quality_rank

DATA = Path(__file__).resolve().parent / "data" / "calibration"
TASKS = ("chat", "summarize", "code")

# benchmark family -> weight per task. No coding benchmark is in the published table: "code" leans
# on the reasoning benchmarks (GSM8K, MMLU-Pro) as the nearest proxy and says so.
_FAMILY = {"MMLU": "knowledge", "MMLU-5shot": "knowledge", "MMLU-Redux": "knowledge", "MMLU-Pro": "reasoning",
           "GSM8K": "reasoning", "GSM8K-CoT-8shot": "reasoning", "IFEval": "instructions",
           "IFEval-strict-prompt": "instructions"}
TASK_WEIGHTS = {
    None: {"knowledge": 1.0, "reasoning": 1.0, "instructions": 1.0},
    "chat": {"instructions": 0.5, "knowledge": 0.35, "reasoning": 0.15},
    "summarize": {"instructions": 0.5, "knowledge": 0.5, "reasoning": 0.0},
    "code": {"reasoning": 0.8, "knowledge": 0.2, "instructions": 0.0},
}
TASK_NOTES = {"code": "no coding benchmark in the published table: reasoning benchmarks (GSM8K, MMLU-Pro) as proxy"}


@dataclass(frozen=True)
class Score:
    model: str
    metric: str
    score: float
    setting: str
    source: str


@dataclass(frozen=True)
class QualityFigure:
    """What a candidate's rank rests on; ``method`` is 'published' or 'heuristic'."""

    value: float | None  # benchmark score (0-100) x quant factor; None under the heuristic
    benchmark_score: float | None
    benchmarks: tuple[str, ...]
    source: str | None
    quant_factor: float
    quant_basis: str
    method: str
    note: str = ""

    def as_dict(self) -> dict:
        return {"value": None if self.value is None else round(self.value, 2),
                "benchmark_score": None if self.benchmark_score is None else round(self.benchmark_score, 2),
                "benchmarks": list(self.benchmarks), "source": self.source,
                "quant_factor": round(self.quant_factor, 4), "quant_basis": self.quant_basis,
                "method": self.method, "note": self.note}


@lru_cache(maxsize=1)
def published_scores() -> tuple[Score, ...]:
    with open(DATA / "quality_published.csv", newline="") as fh:
        return tuple(Score(r["model"], r["metric"], float(r["score"]), r["setting"], _source(r["source"]))
                     for r in csv.DictReader(fh))


def _source(s: str) -> str:
    # rows say "Qwen3 Technical Report Table 18/20 (baseline column)": the publication is the part
    # before the table number; the parenthesis says whose measurement it is, which stays the same source
    s = s.split("(")[0].strip()
    for cut in (" Table", " instruction-tuned table", " benchmark table", " evaluation"):
        if cut in s:
            s = s[: s.index(cut)]
    return s.strip()


@lru_cache(maxsize=1)
def _kld() -> dict[str, float]:
    out: dict[str, float] = {}
    with open(DATA / "quant_quality_llama3_8b.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["imatrix"] == "no":  # the plain quantization, as most published GGUF files are
                out[r["quant"].upper()] = float(r["mean_kld"])
    return out


def quant_factor(quant: str) -> tuple[float, str]:
    q = quant.upper()
    if q in ("F32", "F16", "BF16"):
        return 1.0, "reference precision"
    kld = _kld().get(q)
    if kld is not None:
        return math.exp(-kld), f"exp(-KLD {kld:g}), llama.cpp perplexity scoreboard (LLaMA 3 8B vs FP16), a prior"
    return quant_quality_rank(q), "heuristic by bits per weight (no KL divergence published for this type)"


def choose_source(model_ids: list[str], task: str | None = None) -> str | None:
    """The publication scoring the most of ``model_ids`` on benchmarks the task weighs."""
    w = TASK_WEIGHTS[task]
    cover: dict[str, set[str]] = {}
    for s in published_scores():
        if s.model in model_ids and w.get(_FAMILY.get(s.metric, ""), 0) > 0:
            cover.setdefault(s.source, set()).add(s.model)
    if not cover:
        return None
    return max(sorted(cover), key=lambda src: len(cover[src]))


def benchmark_score(model_id: str, source: str, task: str | None = None) -> tuple[float, tuple[str, ...]] | None:
    """Task-weighted mean of the model's scores in one source (each benchmark family weighted)."""
    w = TASK_WEIGHTS[task]
    rows = [s for s in published_scores() if s.model == model_id and s.source == source
            and w.get(_FAMILY.get(s.metric, ""), 0) > 0]
    if not rows:
        return None
    num = sum(w[_FAMILY[s.metric]] * s.score for s in rows)
    den = sum(w[_FAMILY[s.metric]] for s in rows)
    return num / den, tuple(sorted(s.metric for s in rows))


def figure(model_id: str, quant: str, source: str | None, task: str | None = None) -> QualityFigure:
    qf, basis = quant_factor(quant)
    b = benchmark_score(model_id, source, task) if source else None
    if b is None or source is None:
        return QualityFigure(None, None, (), None, qf, basis, "heuristic",
                             "no published score in the compared source: ranked by the size heuristic")
    return QualityFigure(b[0] * qf, b[0], b[1], source, qf, basis, "published", TASK_NOTES.get(task or "", ""))
