"""The JSON-lines protocol between the benchmark's parent and its child process (typed).

The parent writes one ``WorkerSpec`` as JSON on the child's stdin; the child answers with one
event per line on its stdout. Every event has an ``event`` key; ``step`` events say what the child
is doing (so a crash can be located), ``sample`` events carry each timed repetition as soon as it
is measured (so an interrupted or crashed run keeps its samples).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class TestSpecDict(TypedDict):
    name: str
    n_prompt: int
    n_gen: int
    n_depth: int


class SettingsDict(TypedDict):
    threads: int
    n_batch: int
    n_ubatch: int
    flash_attn: str
    type_k: str
    type_v: str
    poll: int
    repack: bool


class TTFTSpecDict(TypedDict):
    prompt: str
    reps: int


class WorkerSpec(TypedDict):
    runtime: str
    model: str
    tests: list[TestSpecDict]
    settings: SettingsDict
    reps: int
    warmup: bool
    use_mmap: bool
    ttft: TTFTSpecDict | None


class TestOutput(TypedDict):
    """What a backend returns for one test."""

    samples_ns: list[int]
    runtime_ns: list[int]  # the runtime's own timing of each repetition (empty when it has none)
    energy_j: list[float | None]
    buffers: dict[str, float]
    flash_attn: str | None
    threadpool: bool | None


class TTFTOutput(TypedDict):
    samples_ns: list[int]
    tokenize_ns: list[int]
    n_prompt_tokens: int
    chat_template: bool
    first_token: str


EventKind = Literal["step", "memory", "loaded", "start", "sample", "test_done", "done", "error"]
Phase = Literal["warmup", "depth", "timed"]
Event = dict[str, Any]  # {"event": EventKind, ...}; see slmplan.bench.worker for each kind's fields
