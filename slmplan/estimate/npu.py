"""NPU speed: prefill, decode and time to first token on a chip's NPU runtime (``--runtime npu``).

Fitted on published NPU measurements (``data/calibration/npu_llm.csv``), per runtime family:

- prefill is compute work on the NPU: seconds per token = a x (2 x active matmul weights, without the
  output head) + b. Achieved compute is a property of the runtime and its version, not of the nominal
  TOPS (0.4-25% of it in the data), and grows with the model (b: a fixed cost per token); never above
  the chip's nominal TOPS;
- decode reads the runtime's 4-bit weights once per token: seconds = a x (bytes / bandwidth) + b.

a and b are fitted per runtime (least squares in relative error; b = 0 when one model size only);
bounds are the range of measured/predicted on the runtime's rows *held out*: each row predicted from the
runtime's rows of other chips, and from its rows of other models, together with the in-sample range
(x/÷2 where no row can be held out: a runtime measured once, or on one chip with one model).

A chip without a known runtime, or a runtime without data for a quantity, gives None and says why.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from functools import lru_cache

from slmplan.estimate.calib_rows import read_csv
from slmplan.model import ModelFacts
from slmplan.schema.device import DeviceProfile
from slmplan.schema.estimate import SpeedEstimate

RUNTIMES = {"qnn": "Qualcomm QNN / Genie", "fastflowlm": "AMD XDNA 2 / FastFlowLM",
            "openvino-npu": "Intel OpenVINO NPU", "coreml-ane": "Apple Core ML / Neural Engine"}
NPU_BITS = 4.5  # 4-bit weights with per-group scales: w4a16 (QNN), Q4NX (FastFlowLM), int4 (OpenVINO)
SINGLE_ROW_SPREAD = 2.0  # bounds around an estimate that rests on one measurement
NPU_MODELS = {"llama3.2-1b": "llama-3.2-1b", "llama3.2-3b": "llama-3.2-3b", "llama3.1-8b": "llama-3.1-8b",
              "qwen2.5-7b": "qwen2.5-7b", "qwen2.5-0.5b": "qwen2.5-0.5b", "qwen3-0.6b": "qwen3-0.6b",
              "qwen3-4b": "qwen3-4b", "tinyllama-1.1b": "tinyllama-1.1b"}


def runtime_of(text: str) -> str | None:
    t = text.lower()
    if "genie" in t or "qnn" in t:
        return "qnn"
    if "fastflowlm" in t:
        return "fastflowlm"
    if "openvino" in t:
        return "openvino-npu"
    if "core ml" in t or "_ane" in t:
        return "coreml-ane"
    return None  # llama.cpp's Hexagon backend and others: not one of the vendor NPU runtimes above


def matmul_params(facts: ModelFacts) -> float:
    """Active matmul weights per prompt token, without the output head."""
    return sum(t.n_elements * t.active_fraction for t in facts.weight_tensors("F16")
               if t.role not in ("norm", "output", "token_embd"))


def npu_bytes_per_token(facts: ModelFacts) -> float:
    return sum(t.n_elements * t.active_fraction for t in facts.weight_tensors("F16")
               if t.role != "norm" and not (t.role == "token_embd" and not facts.tied_embeddings)) * NPU_BITS / 8


@dataclass(frozen=True)
class Affine:
    """time per token = a x work + b (work: FLOPs for prefill, seconds at full bandwidth for decode),
    with the measured/predicted range of the rows it was fitted on."""

    a: float
    b: float
    low: float
    high: float
    rows: int

    def time(self, work: float) -> float:
        return self.a * work + self.b


def fit_affine(work: list[float], t: list[float]) -> Affine | None:
    """Least squares in relative error; a fixed per-token cost b only when several sizes pin it down."""
    import numpy as np

    if not work:
        return None
    w, tt = np.array(work), np.array(t)
    a, b = float(np.median(tt / w)), 0.0
    if len(set(np.round(w / w.min(), 2))) > 1:
        sol, *_ = np.linalg.lstsq(np.stack([w / tt, 1 / tt], axis=1), np.ones_like(tt), rcond=None)
        if sol[0] > 0 and sol[1] >= 0:
            a, b = float(sol[0]), float(sol[1])
    ratio = (a * w + b) / tt  # measured speed / predicted speed
    if len(w) == 1:
        lo, hi = 1 / SINGLE_ROW_SPREAD, SINGLE_ROW_SPREAD
    else:
        lo, hi = float(min(1.0, ratio.min())), float(max(1.0, ratio.max()))
    return Affine(a, b, lo, hi, len(w))


@dataclass(frozen=True)
class RuntimeFit:
    runtime: str
    prefill: Affine | None
    decode: Affine | None


def _rows() -> list[dict]:
    from slmplan.catalog import facts, get_model, load_catalog
    from slmplan.socs import find_chip

    cat = load_catalog()
    out = []
    for r in read_csv("npu_llm.csv"):
        rt, mid = runtime_of(r["runtime"]), NPU_MODELS.get(r["model"])
        if not rt or not mid:
            continue
        f = facts(get_model(cat, mid))
        chip = find_chip(r["soc"])
        pp = float(r["prefill_tps"]) if r["prefill_tps"] else None
        tg = float(r["decode_tps"]) if r["decode_tps"] else None
        bw = chip.memory_bandwidth_gbs if chip else None
        out.append({"runtime": rt, "chip": chip.name if chip else r["soc"], "model": mid,
                    "pp_work": 2 * matmul_params(f), "pp_t": 1 / pp if pp else None,
                    "tg_work": npu_bytes_per_token(f) / (bw * 1e9) if bw else None, "tg_t": 1 / tg if tg and bw else None,
                    "source": r["source"]})
    return out


def fit_held_out(rows: list[dict], kind: str) -> Affine | None:
    """``fit_affine`` on the rows' ``{kind}_work``/``{kind}_t``, with bounds from held-out ratios: each row
    predicted from the rows of other chips and from the rows of other models (the in-sample range too)."""
    mine = [r for r in rows if r[f"{kind}_t"]]
    fit = fit_affine([r[f"{kind}_work"] for r in mine], [r[f"{kind}_t"] for r in mine])
    if fit is None:
        return None
    held = []
    for group in ("chip", "model"):
        for r in mine:
            train = [x for x in mine if x[group] != r[group]]
            f = fit_affine([x[f"{kind}_work"] for x in train], [x[f"{kind}_t"] for x in train]) if train else None
            if f:
                held.append(f.time(r[f"{kind}_work"]) / r[f"{kind}_t"])  # measured speed / predicted speed
    if not held:
        return replace(fit, low=1 / SINGLE_ROW_SPREAD, high=SINGLE_ROW_SPREAD)
    return replace(fit, low=min(fit.low, *held), high=max(fit.high, *held))


def fit_runtimes(rows: list[dict] | None = None) -> dict[str, RuntimeFit]:
    rows = _rows() if rows is None else rows
    out = {}
    for rt in RUNTIMES:
        mine = [r for r in rows if r["runtime"] == rt]
        out[rt] = RuntimeFit(rt, fit_held_out(mine, "pp"), fit_held_out(mine, "tg"))
    return out


@lru_cache(maxsize=1)
def runtime_fits() -> dict[str, RuntimeFit]:
    return fit_runtimes()


def _unknown(why: str, runtime: str = "npu") -> SpeedEstimate:
    return SpeedEstimate(prefill_tokens_per_s=None, decode_tokens_per_s=None, decode_tokens_per_s_low=None,
                         decode_tokens_per_s_high=None, ttft_s=None, bound="unknown", backend=runtime, method=why)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def estimate_npu_speed(facts: ModelFacts, device: DeviceProfile, n_prompt: int = 300,
                       fits: dict[str, RuntimeFit] | None = None) -> SpeedEstimate:
    """The device's NPU runtime (the first of its ``npu_runtimes`` with data), or unknown with the reason."""
    fits = fits or runtime_fits()
    runtimes = [r for r in (device.npu_runtimes or []) if r in fits]
    if not runtimes:
        return _unknown("unknown: no NPU runtime known for this chip (npu_runtimes in the profile or the chip table)")
    fit = fits[runtimes[0]]
    name = RUNTIMES[fit.runtime]
    if fit.prefill is None and fit.decode is None:
        return _unknown(f"unknown: no published LLM measurements for {name}", f"npu:{fit.runtime}")
    work_pp, work_tg = 2 * matmul_params(facts), npu_bytes_per_token(facts) / (device.memory_bandwidth_gbs * 1e9)
    pp = pp_lo = pp_hi = tg = tg_lo = tg_hi = None
    if fit.prefill:
        pp = 1 / fit.prefill.time(work_pp)
        if device.npu_tops:  # TOPS bounds prefill at best
            pp = min(pp, device.npu_tops * 1e12 / work_pp)
        pp_lo, pp_hi = pp * fit.prefill.low, pp * fit.prefill.high
    if fit.decode:
        tg = 1 / fit.decode.time(work_tg)
        tg_lo, tg_hi = tg * fit.decode.low, tg * fit.decode.high
    ttft = n_prompt / pp + (1 / tg if tg else 0) if pp else None
    rows = f"prefill {fit.prefill.rows if fit.prefill else 0} rows, decode {fit.decode.rows if fit.decode else 0} rows"
    fitted = (f"estimate: {name} fitted on published NPU measurements ({rows}; bounds = the range of "
              "measured/predicted on them held out by chip and by model, x/÷2 where none can be held out)")
    parts = [fitted, f"{NPU_BITS:g}-bit weights in the runtime's own format"]
    if pp is None:
        parts.append("prefill and time to first token unknown: no prefill data for this runtime")
    if tg is None:
        parts.append("decode unknown: no decode data for this runtime")
    return SpeedEstimate(
        prefill_tokens_per_s=_r(pp), prefill_tokens_per_s_low=_r(pp_lo), prefill_tokens_per_s_high=_r(pp_hi),
        decode_tokens_per_s=_r(tg), decode_tokens_per_s_low=_r(tg_lo), decode_tokens_per_s_high=_r(tg_hi),
        ttft_s=None if ttft is None else round(ttft, 4), bound="npu-compute (prefill), memory-bandwidth (decode)",
        backend=f"npu:{fit.runtime}", method="; ".join(parts))


def validate_npu(group: str = "chip") -> dict:
    """Leave-one-chip-out (``group="chip"``) or leave-one-model-out (``"model"``) per runtime: each
    group's rows predicted from the other rows of the same runtime (a runtime measured on one chip
    only cannot be validated leave-one-chip-out)."""
    rows = _rows()
    out = {}
    for kind in ("pp", "tg"):
        errs, inside = [], []
        for r in [x for x in rows if x[f"{kind}_t"]]:
            train = [x for x in rows if x["runtime"] == r["runtime"] and x[group] != r[group] and x[f"{kind}_t"]]
            fit = fit_held_out(train, kind) if train else None  # bounds by the shipped rule, on the training rows
            if fit:
                ratio = fit.time(r[f"{kind}_work"]) / r[f"{kind}_t"]  # measured speed / predicted speed
                errs.append(abs(ratio - 1))
                inside.append(fit.low <= ratio <= fit.high)
        out["prefill" if kind == "pp" else "decode"] = (
            {"rows": len(errs), "median_abs_pct": round(100 * statistics.median(errs), 1),
             "mean_abs_pct": round(100 * statistics.fmean(errs), 1), "worst_pct": round(100 * max(errs), 1),
             "within_low_high_pct": round(100 * sum(inside) / len(inside), 1)}
            if errs else {"rows": 0})
    return out
