"""The interface every benchmark runtime implements (runs in the benchmark's child process)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from slmplan.bench.protocol import Phase, SettingsDict, TestOutput, TTFTOutput

OnSample = Callable[[int], None]
OnPhase = Callable[[Phase], None]


@dataclass(frozen=True)
class Capabilities:
    """What a runtime can report; the parent reads these without importing the runtime."""

    reports_buffers: bool  # its own log gives the weights/KV/compute buffer sizes
    native_timers: bool  # it times its own calls (so the harness overhead can be measured)
    reads_rapl: bool  # per-repetition CPU package energy
    repack: bool  # has llama.cpp's extra buffer types (use_extra_bufts / --repack)
    predicted: bool  # slmplan's speed model describes it
    model_kind: str  # 'gguf' file or 'onnx-genai' folder


class Backend(Protocol):
    """A loaded model. Construction loads it (``load_s`` says how long that took)."""

    load_s: float
    desc: str
    model_size: int
    n_params: int | None
    load_buffers: dict[str, float]  # the runtime's own report of its model buffers (empty if none)

    def run_test(self, n_prompt: int, n_gen: int, n_depth: int, reps: int, warmup: bool, s: SettingsDict,
                 on_sample: OnSample | None = None, on_phase: OnPhase | None = None) -> TestOutput: ...

    def ttft(self, text: str, reps: int, warmup: bool, s: SettingsDict, on_sample: OnSample | None = None) -> TTFTOutput: ...

    def system_info(self) -> dict: ...

    def close(self) -> None: ...


class BackendClass(Protocol):
    """A runtime's class: calling it loads the model (the Backend protocol cannot declare a constructor)."""

    def __call__(self, path: str, settings: SettingsDict, use_mmap: bool = True) -> Backend: ...
