"""Schema of model_catalog.yaml. Unknown keys are errors: a typo must not pass silently."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from slmplan.schema.base import InputModel as Strict

Format = Literal["GGUF", "AWQ", "GPTQ", "INT8", "ONNX"]
# Hugging Face config.json layer_types values; conv/mamba/linear_attention layers keep a recurrent state
LayerType = Literal["full_attention", "sliding_attention", "attention", "conv", "mamba", "linear_attention"]
RECURRENT_LAYER_TYPES = ("conv", "mamba", "linear_attention")
# Names of a file type other than llama.cpp's own: MXFP4 (file names like gpt-oss-20b-mxfp4.gguf, llama.cpp's
# description "MXFP4 MoE") is its one MXFP4 file type, MXFP4_MOE (slmplan.estimate.quants.canonical_quant)
QUANT_ALIASES = {"MXFP4": "MXFP4_MOE", "MXFP4_MOE": "MXFP4_MOE"}


class CatalogVariant(Strict):
    """One quantized file of a model: its quant name, format and (with a source) published size."""

    quant: str = Field(min_length=1, description="llama.cpp file type (Q4_K_M, ...) or AWQ-INT4/GPTQ-INT4/INT8/ONNX-INT4")
    format: Format
    bits_per_weight: float | None = Field(default=None, gt=0, le=32)
    file: str | None = None
    size_bytes: PositiveInt | None = Field(default=None, le=1 << 44, description="published file size")
    source: str | None = Field(default=None, description="where size_bytes / bits_per_weight come from")
    includes_mtp: bool | None = Field(
        default=None, description="the published file holds the model's multi-token-prediction block (needed with "
                                  "size_bytes when the model has mtp_layers: llama.cpp converts it since MTP support)")

    @field_validator("quant")
    @classmethod
    def _llama_cpp_name(cls, v: str) -> str:
        """An alias (MXFP4) becomes llama.cpp's file-type name (MXFP4_MOE); other names are kept as written."""
        return QUANT_ALIASES.get(v.upper(), v)

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
    params: PositiveInt | None = Field(default=None, le=1 << 44, description="stated parameter count; computed from the shapes when absent")
    # bounds as for a GGUF header (slmplan.model): past them the synthesized tensor list exhausts memory
    layers: PositiveInt = Field(le=4096)
    hidden_size: PositiveInt = Field(le=1 << 20)
    intermediate_size: PositiveInt = Field(le=1 << 22)
    heads: PositiveInt = Field(le=1 << 14)
    kv_heads: PositiveInt = Field(le=1 << 14)
    head_dim: PositiveInt = Field(le=1 << 14)
    vocab_size: PositiveInt = Field(le=1 << 24)
    context_length: PositiveInt = Field(le=1 << 26)
    tied_embeddings: bool
    sliding_window: PositiveInt | None = Field(default=None, le=1 << 26)
    sliding_window_pattern: PositiveInt | None = Field(
        default=None, le=4096, description="every Nth layer uses full attention, the others the sliding window")
    # Beyond the dense decoder (all optional; names follow config.json where it has them)
    layer_types: list[LayerType] | None = Field(default=None, description="per-layer type, config.json 'layer_types'")
    global_head_dim: PositiveInt | None = Field(default=None, description="head size of full-attention layers when it differs from head_dim (Gemma 4)")
    kv_shared_layers: int | None = Field(default=None, ge=0, description="last N layers reuse an earlier layer's KV cache (Gemma 3n/4)")
    per_layer_embedding_dim: PositiveInt | None = Field(default=None, description="hidden_size_per_layer_input (Gemma 3n/4)")
    intermediate_size_kv_shared: PositiveInt | None = Field(default=None, description="FFN width of the KV-shared layers (Gemma 4 double-wide MLP)")
    experts: PositiveInt | None = None
    experts_used: PositiveInt | None = None
    expert_intermediate_size: PositiveInt | None = None
    shared_expert_intermediate_size: PositiveInt | None = None
    dense_leading_layers: int | None = Field(default=None, ge=0)
    conv_l_cache: PositiveInt | None = Field(default=None, description="LFM2 short-convolution length (conv_L_cache)")
    ssm_conv_kernel: PositiveInt | None = None
    ssm_state_size: PositiveInt | None = None
    ssm_inner_size: PositiveInt | None = None
    ssm_heads: PositiveInt | None = Field(default=None, description="Mamba 2 heads / Gated DeltaNet value heads")
    ssm_groups: PositiveInt | None = Field(default=None, description="Mamba 2 groups / Gated DeltaNet key heads")
    mtp_layers: PositiveInt | None = Field(
        default=None, le=16, description="config.json mtp_num_hidden_layers: multi-token-prediction blocks after the "
                                         "trunk (in llama.cpp's GGUF as nextn layers; skipped at load)")
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
        if self.layer_types is not None and len(self.layer_types) != self.layers:
            raise ValueError(f"layer_types lists {len(self.layer_types)} layers, layers is {self.layers}")
        layer_types = self.layer_types or []
        if any(t in RECURRENT_LAYER_TYPES for t in layer_types):
            if "conv" in layer_types and not self.conv_l_cache:
                raise ValueError("conv layers need conv_l_cache")
            if {"mamba", "linear_attention"} & set(layer_types) and not (
                    self.ssm_conv_kernel and self.ssm_state_size and self.ssm_inner_size and self.ssm_heads and self.ssm_groups):
                raise ValueError("mamba/linear_attention layers need ssm_conv_kernel, ssm_state_size, ssm_inner_size, ssm_heads, ssm_groups")
        if self.experts and not (self.experts_used and self.expert_intermediate_size):
            raise ValueError("experts need experts_used and expert_intermediate_size")
        if self.experts and (self.experts_used or 0) > self.experts:
            raise ValueError(f"experts_used ({self.experts_used}) exceeds experts ({self.experts})")
        if self.kv_shared_layers and self.kv_shared_layers >= self.layers:
            raise ValueError("kv_shared_layers must be fewer than layers")
        for v in self.variants:
            if v.includes_mtp and not self.mtp_layers:
                raise ValueError(f"variant {v.quant}: includes_mtp needs the model's mtp_layers")
            if self.mtp_layers and v.size_bytes is not None and v.includes_mtp is None:
                # a published size with or without the MTP block differs by its size: say which it is
                raise ValueError(f"variant {v.quant}: a published size_bytes of a model with mtp_layers needs "
                                 "includes_mtp (does the file hold the MTP block?)")
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
