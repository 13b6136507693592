"""Device profile schema (shape fixed by CONTRACT.md; extra optional keys are ours)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Kind = Literal["phone", "tablet", "laptop", "desktop", "sbc", "server"]
Backend = Literal["cpu", "metal", "cuda", "vulkan"]


class DeviceProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-_]*$")
    name: str = Field(min_length=1)
    kind: Kind
    ram_gb: float = Field(gt=0, le=4096)
    memory_budget_gb: float = Field(gt=0, description="what one app may use for a model (OS caps)")
    memory_bandwidth_gbs: float = Field(gt=0, le=20000)
    cpu_cores: int = Field(gt=0, le=1024)
    npu_tops: float | None = Field(default=None, ge=0)
    gpu_tflops: float | None = Field(default=None, ge=0)
    power_w: float | None = Field(default=None, gt=0, le=5000)
    # ours (optional):
    soc: str | None = None
    backend: Backend | None = Field(default=None, description="llama.cpp backend used on this device (default by kind)")
    cpu_gflops: float | None = Field(default=None, gt=0, description="peak FP32 GFLOPS of the CPU cores llama.cpp uses")
    threads: int | None = Field(default=None, gt=0, description="threads llama.cpp would run with")
    cpu_isa: Literal["arm64", "x86_64", "riscv64"] | None = Field(default=None, description="CPU instruction set")
    cpu_features: list[str] | None = Field(default=None, description="CPU features llama.cpp kernels use (dotprod, i8mm, avx2, avx512, amx, ...)")
    llc_mb: float | None = Field(default=None, gt=0, description="last-level cache (MiB)")
    npu_runtimes: list[str] | None = Field(default=None, description="NPU runtimes with LLM support on this chip (qnn, fastflowlm, openvino-npu, coreml-ane)")
    sources: dict[str, str] = Field(default_factory=dict, description="field -> where the number comes from")
    notes: str | None = None

    @model_validator(mode="after")
    def _budget_within_ram(self):
        if self.memory_budget_gb > self.ram_gb:
            raise ValueError(
                f"memory_budget_gb ({self.memory_budget_gb}) is above ram_gb ({self.ram_gb}); "
                "the budget is the part of RAM one app may use")
        return self

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
