"""The ``calibration:`` block of a device profile written by ``slmplan calibrate`` (see device_calibration.py)."""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DecodeFit(_M):
    a: float = Field(gt=0, description="multiplies the planner's predicted streaming time per generated token")
    b_layer_s: float = Field(ge=0, description="fixed seconds per token and layer")
    ratio_low: float = Field(gt=0)
    ratio_high: float = Field(gt=0)
    rows: int = Field(ge=1)
    models: int = Field(ge=1, description="distinct models among the rows")
    bounds: str = Field(description="where ratio_low/high come from")
    form: str = Field("", description="time per token = a x predicted streaming time + b x layers; how a and b were set")
    a_own: Optional[float] = Field(None, gt=0, description="a (and b in proportion) for the measured models themselves, when "
                                   "a for the other models was shrunk toward the planner's prediction")
    own_models: list[str] = Field(default_factory=list, description="the measured models a_own applies to: "
                                  "'id: architecture layers x width ff vocab'")
    quant_factors: dict[str, PositiveFloat] = Field(default_factory=dict, description="time per token of each measured quant type "
                                            "relative to the fit of all rows (rows of 2+ types): the device's own kernel "
                                            "cost per type; types not measured keep 1")


class PrefillFit(_M):
    scale: float = Field(gt=0, description="multiplies the planner's predicted prompt tokens/s")
    ratio_low: float = Field(gt=0)
    ratio_high: float = Field(gt=0)
    rows: int = Field(ge=1)
    bounds: str
    quant_factors: dict[str, PositiveFloat] = Field(default_factory=dict, description="prompt tokens/s of each measured quant type "
                                            "relative to the scale (pp rows of 2+ types): this device's own prompt kernels "
                                            "per type; types not measured keep 1")


class Residual(_M):
    source: str
    model: str
    quant: str
    test: str
    n_prompt: int
    n_gen: int
    n_depth: int
    measured_tokens_per_s: float
    gguf_path: Optional[str] = Field(None, description="the GGUF file slmplan measured (slmplan bench): the model's facts are "
                                                       "read from it while it is there, else from the catalog entry")
    predicted_tokens_per_s: Optional[float] = Field(None, description="the planner before calibration")
    fitted_tokens_per_s: Optional[float] = Field(None, description="after calibration")
    residual_pct: Optional[float] = Field(None, description="100 * (fitted / measured - 1); null = row not used")
    note: Optional[str] = None


class DeviceCalibration(_M):
    method: str
    files: list[str]
    measurements: int = Field(ge=1, description="rows the constants were fitted on")
    models: list[str]
    llama_cpp_build: Optional[str] = None
    date: str
    backend: str
    threads: Optional[int] = None
    flash_attn: Optional[str] = Field(None, description="the rows' flash attention setting (on/off/auto), when they say")
    type_k: Optional[str] = None
    type_v: Optional[str] = None
    repack: Optional[bool] = Field(None, description="llama.cpp's repacked CPU weights in the rows (llama-bench --repack), "
                                   "when they say")
    predictor: str = Field(description="fingerprint of the speed model and of the profile's hardware figures these constants "
                                       "correct; refitted from the rows when it changes")
    decode: Optional[DecodeFit] = None
    prefill: Optional[PrefillFit] = None
    residuals: list[Residual] = Field(default_factory=list)
