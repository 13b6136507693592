"""Schema of model_catalog.yaml. Unknown keys are errors: a typo must not pass silently."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from slmplan.schema.base import FrozenModel as Strict

Format = Literal["GGUF", "AWQ", "GPTQ", "INT8", "ONNX"]


class CatalogVariant(Strict):
    """One quantized file of a model: its quant name, format and (with a source) published size."""

    quant: str = Field(min_length=1, description="llama.cpp file type (Q4_K_M, ...) or AWQ-INT4/GPTQ-INT4/INT8/ONNX-INT4")
    format: Format
    bits_per_weight: float | None = Field(default=None, gt=0, le=32)
    file: str | None = None
    size_bytes: PositiveInt | None = Field(default=None, description="published file size")
    source: str | None = Field(default=None, description="where size_bytes / bits_per_weight come from")

    @model_validator(mode="after")
    def _numbers_have_sources(self):
        if (self.size_bytes is not None or self.bits_per_weight is not None) and not self.source:
            raise ValueError("size_bytes/bits_per_weight need a 'source'")
        return self


class CatalogModel(Strict):
    """One model: the architecture numbers of its config.json (with the source) and its quant variants."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    name: str
    family: str
    architecture: str = Field(description="llama.cpp architecture name (llama, qwen2, qwen3, gemma2, gemma3, phi3)")
    params: PositiveInt | None = Field(default=None, description="stated parameter count; computed from the shapes when absent")
    layers: PositiveInt
    hidden_size: PositiveInt
    intermediate_size: PositiveInt
    heads: PositiveInt
    kv_heads: PositiveInt
    head_dim: PositiveInt
    vocab_size: PositiveInt
    context_length: PositiveInt
    tied_embeddings: bool
    sliding_window: PositiveInt | None = None
    sliding_window_pattern: PositiveInt | None = Field(
        default=None, description="every Nth layer uses full attention, the others the sliding window")
    license: str
    hf_repo: str | None = Field(default=None, description="Hugging Face repo holding the GGUF files")
    hf_base_repo: str | None = None
    source: str = Field(description="where the architecture numbers come from (config.json)")
    notes: str | None = None
    variants: list[CatalogVariant] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self):
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be a multiple of kv_heads ({self.kv_heads})")
        if self.sliding_window_pattern and not self.sliding_window:
            raise ValueError("sliding_window_pattern needs sliding_window")
        seen = set()
        for v in self.variants:
            key = v.quant.upper()
            if key in seen:
                raise ValueError(f"quant {v.quant} listed twice")
            seen.add(key)
        return self


class Catalog(Strict):
    """model_catalog.yaml: ``schema_version`` 1 and the list of models (unique ids)."""

    schema_version: Literal[1]
    models: list[CatalogModel] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self):
        ids = [m.id for m in self.models]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"duplicate model ids: {', '.join(sorted(dup))}")
        return self
