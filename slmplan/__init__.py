"""slmplan: does small language model X at quant Q fit device D, how fast, how much energy?

The public API (the CLI is a thin layer over it)::

    import slmplan

    device = slmplan.get_device("pixel-8")                 # built-in id, "local", or a YAML path
    for r in slmplan.fit("llama-3.2-1b", device, q=slmplan.Query(ctx=2048)):
        print(r.quant, r.verdict, r.memory.total_bytes, r.speed.decode_tokens_per_s)
    best, why = slmplan.recommend(slmplan.plan(device))
    report = slmplan.build_report(device)
    markdown = slmplan.render_report(report, "md")

Names load on first use, so ``import slmplan`` stays light: no numpy, no pydantic until a function
that needs it runs, and the heavy runtimes (llama_cpp, onnxruntime, huggingface_hub, matplotlib) only
inside the functions that use them. Bad input raises ``BadInputError`` (a ``SlmplanError``) whose
message names the offending parameter.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from slmplan.errors import BadInputError, GGUFError, MissingExtraError, RuntimeFailure, SlmplanError

__version__ = "0.1.0"

# public name -> "module:attribute"
_LAZY: dict[str, str] = {
    # catalog and devices
    "load_catalog": "slmplan.catalog:load_catalog",
    "catalog_summary": "slmplan.catalog:catalog_summary",
    "Catalog": "slmplan.schema.catalog:Catalog",
    "CatalogModel": "slmplan.schema.catalog:CatalogModel",
    "CatalogVariant": "slmplan.schema.catalog:CatalogVariant",
    "get_device": "slmplan.devices:get_device",
    "builtin_devices": "slmplan.devices:builtin_devices",
    "DeviceProfile": "slmplan.schema.device:DeviceProfile",
    # planning
    "fit": "slmplan.planner:fit",
    "plan": "slmplan.planner:plan",
    "recommend": "slmplan.planner:recommend",
    "Query": "slmplan.planner:Query",
    "RuntimeSettings": "slmplan.estimate.memory:RuntimeSettings",
    "estimate_memory": "slmplan.estimate.memory:estimate_memory",
    "estimate_speed": "slmplan.estimate.speed:estimate_speed",
    "FitResult": "slmplan.schema.estimate:FitResult",
    "MemoryEstimate": "slmplan.schema.estimate:MemoryEstimate",
    "SpeedEstimate": "slmplan.schema.estimate:SpeedEstimate",
    "EnergyEstimate": "slmplan.schema.estimate:EnergyEstimate",
    # GGUF files
    "inspect_model": "slmplan.inspect:inspect_model",
    "read_gguf": "slmplan.gguf:read_gguf",
    "GGUFHeader": "slmplan.gguf:GGUFHeader",
    # benchmark and report
    "run_benchmark": "slmplan.bench.api:run_benchmark",
    "BenchOptions": "slmplan.bench.api:BenchOptions",
    "BenchRun": "slmplan.schema.bench:BenchRun",
    "load_bench": "slmplan.report.build:load_bench",
    "build_report": "slmplan.report.build:build_report",
    "render_report": "slmplan.report.render:render_report",
    "Report": "slmplan.schema.report:Report",
}

__all__ = [
    "BadInputError", "BenchOptions", "BenchRun", "Catalog", "CatalogModel", "CatalogVariant", "DeviceProfile", "EnergyEstimate",
    "FitResult", "GGUFError", "GGUFHeader", "MemoryEstimate", "MissingExtraError", "Query", "Report",
    "RuntimeFailure", "RuntimeSettings", "SlmplanError", "SpeedEstimate", "__version__", "build_report",
    "builtin_devices", "catalog_summary", "estimate_memory", "estimate_speed", "fit", "get_device",
    "inspect_model", "load_bench", "load_catalog", "plan", "read_gguf", "recommend", "render_report",
    "run_benchmark",
]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'slmplan' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # what type checkers and IDEs see; keep in step with _LAZY
    from slmplan.bench.api import BenchOptions, run_benchmark
    from slmplan.catalog import catalog_summary, load_catalog
    from slmplan.devices import builtin_devices, get_device
    from slmplan.estimate.memory import RuntimeSettings, estimate_memory
    from slmplan.estimate.speed import estimate_speed
    from slmplan.gguf import GGUFHeader, read_gguf
    from slmplan.inspect import inspect_model
    from slmplan.planner import Query, fit, plan, recommend
    from slmplan.report.build import build_report, load_bench
    from slmplan.report.render import render_report
    from slmplan.schema.bench import BenchRun
    from slmplan.schema.catalog import Catalog, CatalogModel, CatalogVariant
    from slmplan.schema.device import DeviceProfile
    from slmplan.schema.estimate import EnergyEstimate, FitResult, MemoryEstimate, SpeedEstimate
    from slmplan.schema.report import Report
