"""The feasibility report's data. The JSON output is exactly ``Report.model_dump()``; its JSON Schema
is ``Report.model_json_schema()`` (``slmplan report --schema``). Every number that matters is a
``Figure``: value, unit and where it comes from. A value of null means unknown, never zero.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from slmplan.schema.base import StrictModel as _M
from slmplan.schema.base import Verdict

REPORT_SCHEMA_VERSION = 2  # 2: use case, service, summary, glossary, picks, what-if, battery, deployment

Unit = Literal["bytes", "tokens/s", "s", "hours", "J/token", "Wh", "Wh/query", "kWh/year", "gCO2e/kWh", "kgCO2e/year",
               "queries", "% of a full charge", "% of a full charge per day"]


class Figure(_M):
    value: Optional[float] = Field(description="null = unknown")
    unit: Unit
    source: str = Field(description="measured / estimate / given, and how")


class Candidate(_M):
    rank: int
    model: str
    quant: str
    verdict: Verdict = Field(description="fits | tight | does-not-fit")
    params: int
    weights: Figure
    kv_cache: Figure
    compute: Figure
    overhead: Figure
    total: Figure
    budget: Figure
    prefill_tokens_per_s: Figure
    decode_tokens_per_s: Figure
    decode_tokens_per_s_low: Figure
    decode_tokens_per_s_high: Figure
    ttft: Figure
    joules_per_token: Figure
    wh_per_query: Figure
    benchmarked: bool = False


class Recommendation(_M):
    model: str
    quant: str
    why: str


class Measured(_M):
    model: str
    quant: Optional[str]
    file: str
    test: str
    measured_tokens_per_s: Figure
    predicted_tokens_per_s: Figure
    ratio_measured_to_predicted: Optional[float]
    joules_per_token: Figure
    machine: str
    measured_at: str
    warnings: list[str] = Field(default_factory=list)


class BenchMemory(_M):
    model: str
    file: str
    peak_rss: Figure
    weights_mapped: Figure
    predicted_weights: Figure
    ttft: Optional[Figure] = None
    predicted_ttft: Optional[Figure] = None


class RuntimeRow(_M):
    """One benchmark run, for the side-by-side table of runtimes (llama.cpp GGUF vs ONNX Runtime)."""

    model: str
    runtime: str
    prefill_tokens_per_s: Figure
    decode_tokens_per_s: Figure
    ttft: Figure
    peak_rss: Figure
    load: Figure
    model_size: Figure


class KVPoint(_M):
    ctx: int
    kv_cache_bytes: int
    total_bytes: int


class KVGrowth(_M):
    model: str
    quant: str
    budget_bytes: int
    points: list[KVPoint]
    source: str = "estimate: slmplan memory model (llama.cpp's allocation rules)"


class CloudComparison(_M):
    label: str
    wh_per_query: Figure
    local_to_cloud_ratio: Optional[float] = Field(description="local Wh per query / cloud Wh per query")


class Energy(_M):
    model: str
    quant: str
    joules_per_token: Figure
    wh_per_query: Figure
    method: str
    queries_per_day: int
    kwh_per_year: Figure
    grid_intensity: Figure
    grid_region: str
    co2_kg_per_year: Figure
    cloud: list[CloudComparison]
    cloud_note: str


class Query(_M):
    ctx: int
    prompt_tokens: int
    generated_tokens: int


class UseCase(_M):
    id: str = Field(description="chat | summarize | translate | rewrite | default")
    label: str
    assumption: str = Field(description="what the preset assumes about one query")
    overridden: list[str] = Field(default_factory=list, description="lengths the user set (--prompt-tokens/--gen-tokens/--ctx)")
    expected_bound: str = Field(description="prefill (time to first token matters) or decode (answer speed matters)")
    predicted_split: Optional[str] = Field(default=None, description="for the primary pick: where the predicted time goes")


class Service(_M):
    description: Optional[str] = Field(description="the team's own description (--service); null = placeholder")
    placeholder: bool


class SummaryItem(_M):
    topic: str
    text: str


class Concept(_M):
    term: str
    explanation: str


class Pick(_M):
    role: str = Field(description="primary | alternative")
    model: str
    quant: str
    family: Optional[str]
    license: Optional[str]
    rank: int = Field(description="position in the planner's ranking of the catalog")
    verdict: str
    total: Figure
    budget: Figure
    decode_tokens_per_s: Figure
    ttft: Figure
    wh_per_query: Figure
    reason: str


class WhatIf(_M):
    change: str = Field(description="what was changed and re-planned")
    pick_model: Optional[str] = Field(description="the planner's first choice after the change; null = nothing fits")
    pick_quant: Optional[str]
    verdict: Optional[str]
    total: Optional[Figure] = None
    decode_tokens_per_s: Optional[Figure] = None
    ttft: Optional[Figure] = None
    changes_choice: bool
    summary: str


class Battery(_M):
    model: str
    quant: str
    battery_wh: Figure
    queries_per_day: int
    percent_per_query: Figure
    percent_per_day: Figure
    queries_per_charge: Figure
    hours_answering_per_charge: Figure
    measured_wh_per_query: Optional[Figure] = None
    caveats: list[str]


class RuntimeOption(_M):
    runtime: str
    backend: str
    format: str
    produce: str
    slmplan_convert: bool = Field(description="slmplan convert produces the file")
    slmplan: str = Field(description="predicted | measured | not predicted (the runtimes table: predicted | predicted-npu | measured-only | not predicted)")
    speed_note: str
    source: str


class Download(_M):
    model: str
    quant: str
    format: str
    size: Figure


class Deployment(_M):
    platform: str
    models: list[str]
    options: list[RuntimeOption]
    downloads: list[Download]
    notes: list[str] = Field(default_factory=list)


class Report(_M):
    """The feasibility report for one device (``report --format json`` is ``model_dump()``)."""

    schema_version: int = REPORT_SCHEMA_VERSION
    title: str
    generated_at: str
    slmplan_version: str
    device: dict
    query: Query
    use_case: Optional[UseCase] = None
    service: Optional[Service] = None
    summary: list[SummaryItem] = Field(default_factory=list, description="plain-words summary for non-engineers")
    glossary: list[Concept] = Field(default_factory=list)
    picks: list[Pick] = Field(default_factory=list, description="primary and an alternative from another family")
    what_if: list[WhatIf] = Field(default_factory=list, description="re-planned with a changed query or device")
    battery: Optional[Battery] = None
    deployment: Optional[Deployment] = None
    candidates: list[Candidate]
    recommendation: Optional[Recommendation]
    recommendation_note: str
    measured: list[Measured]
    bench_memory: list[BenchMemory]
    runtimes: list[RuntimeRow] = Field(default_factory=list)
    not_measured: list[str] = Field(description="candidates without a benchmark: their speeds are predictions only")
    kv_growth: Optional[KVGrowth]
    energy: Optional[Energy]
    privacy: list[str]
    notes: list[str]
