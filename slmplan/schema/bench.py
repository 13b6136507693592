"""`slmplan bench` results. The documented top-level keys of the bench JSON are kept; the rest is added.

Throughput follows llama-bench: each repetition gives tokens/s = (n_prompt + n_gen) / time, and the
mean and (sample) standard deviation are taken over those per-repetition figures.
"""

from __future__ import annotations

from typing import Annotated, Optional

from pydantic import Field

from slmplan.schema.base import StrictModel as _M

SCHEMA_VERSION = 1
# a measured speed or time: finite and not negative (a bench JSON edited by hand must not pass as one)
NonNegFinite = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class BenchSettings(_M):
    threads: int
    n_batch: int = Field(description="logical batch (llama-bench -b)")
    n_ubatch: int = Field(description="physical batch (llama-bench -ub)")
    flash_attn: str = Field(description="requested: auto | on | off")
    type_k: str = "f16"
    type_v: str = "f16"
    reps: int
    warmup: bool
    poll: int = Field(50, description="threadpool polling level, as llama-bench --poll")
    use_mmap: bool = True
    swa_full: bool = False
    repack: Optional[bool] = Field(None, description="llama.cpp's CPU extra buffer types (llama-bench --repack): "
                                   "what ran; None before the run (= llama.cpp's default, on) or for a runtime without them")
    repack_reason: Optional[str] = Field(None, description="why repack is not llama.cpp's default, when slmplan turned it off")


class ContextBuffers(_M):
    """llama.cpp's own report for one test's context, next to the planner's estimate."""

    kv_cache_bytes: Optional[int] = None
    compute_bytes: Optional[int] = None
    output_bytes: Optional[int] = None
    predicted_kv_cache_bytes: Optional[int] = None
    predicted_compute_bytes: Optional[int] = Field(None, description="compute + output buffers, as the planner counts them")
    kv_ratio: Optional[float] = Field(None, description="measured / predicted")
    compute_ratio: Optional[float] = Field(None, description="(compute + output) measured / predicted")


class TestResult(_M):
    __test__ = False  # not a pytest test class
    test: str = Field(description="ppN, tgN, with @dN for a context depth (llama-bench's naming)")
    n_prompt: int
    n_gen: int
    n_depth: int
    tokens_per_s_mean: NonNegFinite
    tokens_per_s_std: NonNegFinite
    samples: list[NonNegFinite] = Field(description="tokens/s of each timed repetition")
    samples_ns: list[int] = Field(description="wall time of each timed repetition, ns")
    tokens_per_s_median: NonNegFinite
    llama_cpp_eval_ns: list[int] = Field(default_factory=list,
                                         description="llama.cpp's own timing (llama_perf_context) of each repetition")
    harness_overhead: Optional[float] = Field(None, description="median wall time / llama.cpp's own time - 1")
    energy_j: list[Optional[float]] = Field(default_factory=list,
                                            description="CPU package energy (Linux RAPL) of each repetition; empty/null when not readable")
    joules_per_token: Optional[float] = Field(None, description="median RAPL energy / tokens; null = not measured")
    complete: bool = Field(True, description="false when interrupted before all repetitions ran")
    flash_attn: Optional[str] = Field(None, description="as llama.cpp resolved it for this context")
    threadpool_attached: Optional[bool] = None
    predicted_tokens_per_s: Optional[float] = None
    ratio_measured_to_predicted: Optional[float] = None
    buffers: ContextBuffers = ContextBuffers()


class TTFTResult(_M):
    prompt_tokens: int
    chat_template: bool = Field(description="the prompt was formatted with the model's chat template")
    ttft_s_mean: NonNegFinite
    ttft_s_std: NonNegFinite
    ttft_s_median: NonNegFinite
    samples_s: list[NonNegFinite]
    tokenize_s_mean: float
    first_token: str
    predicted_ttft_s: Optional[float] = None
    ratio_measured_to_predicted: Optional[float] = None
    method: str = "wall time of tokenize + prefill (n_batch chunks) + greedy sampling of the first token, fresh KV cache each repetition"


class MemoryReport(_M):
    peak_rss_bytes: Optional[int] = Field(None, description="the child process's peak resident set (VmHWM)")
    rss_before_load_bytes: Optional[int] = None
    rss_after_load_bytes: Optional[int] = None
    rss_anon_bytes: Optional[int] = Field(None, description="anonymous memory at the end of the last test")
    rss_file_bytes: Optional[int] = Field(None, description="file-backed (mmap'ed weights) at the end of the last test")
    swap_bytes: Optional[int] = None
    major_faults: Optional[int] = None
    weights_mapped_bytes: Optional[int] = Field(None, description="llama.cpp: CPU_Mapped model buffer")
    weights_repacked_bytes: Optional[int] = Field(None, description="llama.cpp: its CPU extra buffers (CPU_REPACK, AMX model: an anonymous copy)")
    extra_buffers: dict[str, int] = Field(default_factory=dict, description="that copy per buffer type, as llama.cpp reported it")
    kv_cache_bytes_max: Optional[int] = None
    compute_bytes_max: Optional[int] = None
    llama_buffers: dict[str, int] = Field(default_factory=dict, description="every buffer llama.cpp reported at load")
    predicted_weights_bytes: Optional[int] = None
    predicted_repack_bytes: Optional[int] = None
    predicted_extra_buffers: dict[str, int] = Field(default_factory=dict)
    weights_ratio: Optional[float] = None
    method: str = ("buffers parsed from llama.cpp's own log; RSS from /proc/self/status between tests "
                   "(the kernel tracks the peak, nothing samples during timed runs)")


class Prediction(_M):
    device: str
    constants: str = Field(description="'shipped' speed model or 'local calibration'")
    bandwidth_gbs: float
    cpu_gflops: Optional[float]
    method: str
    # the peak of the quantized dot products where below cpu_gflops (x86 AVX-512 cores: 256-bit kernels)
    cpu_quant_gflops: Optional[float] = None
    cpu_kernels: Optional[str] = None  # llama.cpp's CPU kernel family the prediction assumed (x86-avx2, arm64)


class MissingTest(_M):
    __test__ = False
    test: str
    reason: str


class BenchAttempt(_M):
    """One child process run; a crash with repacking on is followed by one without."""

    repack: Optional[bool]
    outcome: str
    samples_kept: bool


class BenchRun(_M):
    """One ``slmplan bench`` run: settings, one TestResult per test, time to first token, memory, and the
    planner's prediction for the same run (the ``bench --format json`` / ``-o FILE.json`` shape)."""

    schema_version: int = SCHEMA_VERSION
    runtime: str
    model: str = Field(description="what the user asked for (catalog id or path)")
    model_path: str
    model_desc: str = ""
    quant: Optional[str] = None
    n_params: Optional[int] = None
    model_size_bytes: Optional[int] = None
    threads: int
    settings: BenchSettings
    results: list[TestResult] = Field(default_factory=list)
    ttft: Optional[TTFTResult] = None
    memory: MemoryReport = MemoryReport()
    load_s: Optional[float] = None
    system: dict = Field(default_factory=dict)
    prediction: Optional[Prediction] = None
    warnings: list[str] = Field(default_factory=list)
    interrupted: bool = False
    failure: Optional[str] = Field(None, description="why the run stopped before the end (a runtime failure), if it did")
    missing_tests: list[MissingTest] = Field(default_factory=list)
    attempts: list[BenchAttempt] = Field(default_factory=list)
    started_at: str = ""
    duration_s: float = 0.0
