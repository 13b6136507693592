"""The benchmark as a library call: options -> a checked plan -> a measured run.

    from slmplan import BenchOptions, run_benchmark
    run = run_benchmark("smollm2-135m", BenchOptions(pp=(512,), tg=(128,), reps=3))
    print(run.results[1].tokens_per_s_median)

Errors name the parameter (``reps 0 is out of range``); the CLI turns those names into its flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slmplan.errors import BadInputError

if TYPE_CHECKING:
    from slmplan.bench.prepare import BenchTarget
    from slmplan.bench.protocol import Event
    from slmplan.bench.runner import TestSpec
    from slmplan.schema.bench import BenchRun, BenchSettings
    from slmplan.schema.device import DeviceProfile


@dataclass(frozen=True)
class BenchOptions:
    """What to measure, with llama-bench's defaults (``pp``/``tg``/``depth`` also take "128,512")."""

    runtime: str = "llama.cpp"  # or "onnx" for an ONNX Runtime GenAI folder
    threads: int | None = None  # default: the physical cores, as llama-bench
    pp: tuple[int, ...] | str = (512,)
    tg: tuple[int, ...] | str = (128,)
    depth: tuple[int, ...] | str = (0,)
    reps: int = 5
    n_batch: int = 2048
    n_ubatch: int = 512
    flash_attn: str = "auto"
    type_k: str = "f16"
    type_v: str = "f16"
    ttft: bool = True  # also time the first token of a real chat prompt
    prompt: str | None = None  # that prompt (default: a built-in ~100-word request)
    warmup: bool = True
    mmap: bool = True
    repack: bool | None = None  # None: llama.cpp's default (on) with one rerun off after a crash in the repacked kernels
    quant: str | None = None  # for a catalog id: which quant's cached GGUF
    force: bool = False  # run even if the predicted footprint exceeds the RAM available now


@dataclass(frozen=True)
class BenchPlan:
    """A checked benchmark, ready to run: the model file, the tests and settings, this machine."""

    model: str
    runtime: str
    target: BenchTarget
    tests: list[TestSpec]
    settings: BenchSettings
    device: DeviceProfile
    ttft_prompt: str | None


def plan_benchmark(model: str, o: BenchOptions = BenchOptions()) -> BenchPlan:
    """Check every option and the model (file complete, fits in the RAM available now) before anything runs."""
    from slmplan.bench import prepare as P
    from slmplan.bench.runner import DEFAULT_TTFT_PROMPT, build_tests
    from slmplan.devices import get_device
    from slmplan.localdevice import cpu_info
    from slmplan.schema.bench import BenchSettings

    runtime = P.check_runtime(o.runtime)
    tests = build_tests(P.parse_int_list(o.pp, "pp", 0, 1 << 17), P.parse_int_list(o.tg, "tg", 0, 1 << 16),
                        P.parse_int_list(o.depth, "depth", 0, 1 << 20))
    if not tests and not o.ttft:
        raise BadInputError("nothing to measure: pp and tg are all 0 and the time-to-first-token test is off",
                            "Use e.g. pp=512 tg=128", params=("pp", "tg"))
    P.check_range(o.reps, "reps", 1, 1000, "5")
    P.check_range(o.n_batch, "n_batch", 1, 1 << 17, "2048")
    P.check_range(o.n_ubatch, "n_ubatch", 1, 1 << 17, "512")
    fa = P.check_choice(o.flash_attn, P.FLASH_ATTN, "flash_attn")
    tk = P.check_choice(o.type_k, P.KV_TYPES, "type_k")
    tv = P.check_choice(o.type_v, P.KV_TYPES, "type_v")
    if tv not in ("f16", "f32", "bf16") and fa == "off":
        raise BadInputError("a quantized V cache needs flash attention", "Use flash_attn=on (or auto)",
                            params=("flash_attn",))
    if o.prompt is not None and not o.prompt.strip():
        raise BadInputError("prompt is empty", "Give it a text, or leave prompt out to use the built-in one",
                            params=("prompt",))
    cores = cpu_info()
    threads = cores["physical_cores"] if o.threads is None else o.threads
    P.check_range(threads, "threads", 1, 4 * cores["logical_cores"], str(cores["physical_cores"]))
    max_ctx = max([t.n_prompt + t.n_gen + t.n_depth for t in tests] + [1024 if o.ttft else 1])
    if runtime == "onnx":
        folder = P.resolve_onnx_dir(model)
        P.check_onnx_fits_ram(folder, max_ctx, o.force)
        target = P.BenchTarget(model, folder, None)
    else:
        target = P.resolve_model(model, o.quant)
        P.check_fits_ram(target, max_ctx, o.n_batch, o.n_ubatch, fa, o.force)
    settings = BenchSettings(threads=threads, n_batch=o.n_batch, n_ubatch=o.n_ubatch, flash_attn=fa, type_k=tk,
                             type_v=tv, reps=o.reps, warmup=o.warmup, use_mmap=o.mmap, repack=o.repack)
    return BenchPlan(model, runtime, target, tests, settings, get_device("local"),
                     (o.prompt or DEFAULT_TTFT_PROMPT) if o.ttft else None)


def measure(plan: BenchPlan, on_event: Callable[[Event], None] | None = None) -> BenchRun:
    """Run a checked plan."""
    from slmplan.bench.runner import run_child_benchmark

    return run_child_benchmark(plan.model, str(plan.target.path), plan.target.facts, plan.tests, plan.settings,
                               plan.device, plan.ttft_prompt, on_event=on_event, runtime=plan.runtime)


def run_benchmark(model: str, options: BenchOptions = BenchOptions(),
                  on_event: Callable[[Event], None] | None = None) -> BenchRun:
    """Measure ``model`` (a .gguf path, a bundled test model, a catalog id with a cached GGUF, or an ONNX
    Runtime GenAI folder with ``runtime="onnx"``) on this machine the way llama-bench does, in a child
    process; with memory, time to first token and the planner's prediction. ``on_event`` sees the
    child's events (each sample as it is measured). A crash before any test finished raises
    ``RuntimeFailure``; a later one returns the run with ``failure`` and ``missing_tests`` set."""
    return measure(plan_benchmark(model, options), on_event)
