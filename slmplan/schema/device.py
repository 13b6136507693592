"""Device profile schema: the documented YAML keys (README, "A device profile") and optional extras."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from slmplan.schema.base import InputModel
from slmplan.schema.calibration import DeviceCalibration

Kind = Literal["phone", "tablet", "laptop", "desktop", "sbc", "server"]
Backend = Literal["cpu", "metal", "cuda", "vulkan"]


NpuRuntime = Literal["qnn", "fastflowlm", "openvino-npu", "coreml-ane"]


class NpuMeasurement(InputModel):
    """One measurement of an NPU runtime on this device (e.g. genie-t2t-run's prompt processing and token
    generation rates for a catalog model): ``--runtime npu`` takes the device's own factor from these."""

    runtime: NpuRuntime
    model: str = Field(min_length=1, description="catalog id of the model measured (slmplan catalog)")
    prefill_tokens_per_s: float | None = Field(default=None, gt=0, le=1_000_000)
    decode_tokens_per_s: float | None = Field(default=None, gt=0, le=100_000)
    source: str | None = Field(default=None, description="where the numbers come from (tool, date)")

    @model_validator(mode="after")
    def _one_rate(self):
        if self.prefill_tokens_per_s is None and self.decode_tokens_per_s is None:
            raise ValueError("give prefill_tokens_per_s or decode_tokens_per_s (or both)")
        return self


class DeviceProfile(InputModel):
    """A device: memory (installed, the per-app budget, bandwidth), compute, power, each number's source."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-_]*$")
    name: str = Field(min_length=1, max_length=200)
    kind: Kind
    ram_gb: float = Field(gt=0, le=4096)
    memory_budget_gb: float = Field(gt=0, le=4096, description="what one app may use for a model (OS caps)")
    memory_bandwidth_gbs: float = Field(gt=0, le=20000)
    cpu_cores: int = Field(gt=0, le=1024)
    npu_tops: float | None = Field(default=None, ge=0, le=100000)
    gpu_tflops: float | None = Field(default=None, ge=0, le=100000)
    power_w: float | None = Field(default=None, gt=0, le=5000)
    battery_wh: float | None = Field(default=None, gt=0, le=200, description="battery energy (phones, tablets, laptops)")
    memory_budget_gb_entitled: float | None = Field(
        default=None, gt=0, description="iOS/iPadOS: the budget with Apple's increased-memory-limit entitlement")
    # ours (optional):
    soc: str | None = None
    backend: Backend | None = Field(default=None, description="llama.cpp backend used on this device (default by kind)")
    cpu_gflops: float | None = Field(default=None, gt=0, le=1_000_000, description="peak FP32 GFLOPS of the CPU cores llama.cpp uses")
    cpu_quant_gflops: float | None = Field(
        default=None, gt=0, le=1_000_000,
        description="peak GFLOPS of those cores at the vector width of llama.cpp's quantized dot products (x86: "
                    "256-bit, also on cores with 512-bit AVX-512 units); default cpu_gflops")
    threads: int | None = Field(default=None, gt=0, le=4096, description="threads llama.cpp would run with")
    cpu_isa: Literal["arm64", "x86_64", "riscv64"] | None = Field(default=None, description="CPU instruction set")
    cpu_features: list[str] | None = Field(
        default=None, description="CPU features llama.cpp is built for on this device (avx2, avx512, amx, dotprod, "
                                  "i8mm, ...): they decide which weights it repacks into an extra copy")
    cuda_compute_capability: float | None = Field(
        default=None, ge=3.0, le=20.0, description="NVIDIA GPU compute capability (nvidia-smi --query-gpu=compute_cap "
        "--format=csv); below 8.0 (Ampere) llama.cpp runs without CUDA graphs. Default: from the GPU's name")
    llc_mb: float | None = Field(default=None, gt=0, le=1_000_000, description="last-level cache (MiB)")
    npu_runtimes: list[str] | None = Field(default=None, description="NPU runtimes with LLM support on this chip (qnn, fastflowlm, openvino-npu, coreml-ane)")
    npu_measurements: list[NpuMeasurement] | None = Field(
        default=None, description="your NPU runtime's measured speeds on this device; --runtime npu scales its "
                                  "estimate for this device by them")
    sources: dict[str, str] = Field(default_factory=dict, description="field -> where the number comes from")
    notes: str | None = None
    calibration: DeviceCalibration | None = Field(default=None, description="fitted by 'slmplan calibrate' from measurements on this device")

    @model_validator(mode="after")
    def _budget_within_ram(self):
        if self.memory_budget_gb > self.ram_gb:
            raise ValueError(
                f"memory_budget_gb ({self.memory_budget_gb}) is above ram_gb ({self.ram_gb}); "
                "the budget is the part of RAM one app may use")
        e = self.memory_budget_gb_entitled
        if e is not None and not self.memory_budget_gb <= e <= self.ram_gb:
            raise ValueError(f"memory_budget_gb_entitled ({e}) must lie between memory_budget_gb "
                             f"({self.memory_budget_gb}) and ram_gb ({self.ram_gb})")
        q = self.cpu_quant_gflops
        if q is not None and (self.cpu_gflops is None or q > self.cpu_gflops):
            raise ValueError(f"cpu_quant_gflops ({q}) needs a cpu_gflops at least as large (it is the same cores' "
                             "peak at the narrower width of the quantized kernels)")
        return self

    def with_entitlement(self) -> DeviceProfile | None:
        """The same device with the iOS increased-memory-limit budget, or None when the profile has none."""
        if self.memory_budget_gb_entitled is None:
            return None
        return self.model_copy(update={"memory_budget_gb": self.memory_budget_gb_entitled, "sources": {
            **self.sources, "memory_budget_gb": self.sources.get("memory_budget_gb_entitled", "with the entitlement")}})

    @property
    def effective_backend(self) -> str:
        if self.backend:
            return self.backend
        text = f"{self.soc or ''} {self.name}".lower()
        if any(w in text for w in ("apple", "macbook", "mac mini", "mac studio", "imac", "iphone", "ipad")):
            return "metal"  # llama.cpp's default on Apple silicon (a profile built without the chip table)
        return "cpu"

    @property
    def budget_bytes(self) -> int:
        return int(self.memory_budget_gb * 1024**3)

    def contract_dict(self) -> dict:
        """The profile as JSON (the contract keys first, then ours, None dropped)."""
        return self.model_dump(exclude_none=True)
