"""Benchmark runtimes: one module per runtime, resolved lazily by name.

Adding a runtime means one new module with a class that implements ``base.Backend`` and one entry
here; nothing else imports the runtime's package.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from slmplan.bench.backends.base import Backend, BackendClass, Capabilities


@dataclass(frozen=True)
class BackendEntry:
    name: str
    target: str  # "module:Class"
    capabilities: Capabilities
    requires: str  # the import that must work, and the pip extra that provides it
    extra: str


REGISTRY: dict[str, BackendEntry] = {
    "llama.cpp": BackendEntry("llama.cpp", "slmplan.bench.backends.llama_cpp:LlamaCppBackend",
                              Capabilities(reports_buffers=True, native_timers=True, reads_rapl=True, repack=True,
                                           predicted=True, model_kind="gguf"),
                              requires="llama_cpp", extra="llama"),
    "onnx": BackendEntry("onnx", "slmplan.bench.backends.onnx_genai:OnnxGenAIBackend",
                         Capabilities(reports_buffers=False, native_timers=False, reads_rapl=False, repack=False,
                                      predicted=False, model_kind="onnx-genai"),
                         requires="onnxruntime_genai", extra="onnx"),
}


def entry(name: str) -> BackendEntry:
    return REGISTRY[name]


def load_backend_class(name: str) -> BackendClass:
    module, _, cls = REGISTRY[name].target.partition(":")
    return getattr(importlib.import_module(module), cls)


__all__ = ["REGISTRY", "Backend", "BackendClass", "BackendEntry", "Capabilities", "entry", "load_backend_class"]
