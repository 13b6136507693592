"""NPU speed: prefill, decode and time to first token on a chip's NPU runtime (``--runtime npu``).

Fitted on published NPU measurements (``data/calibration/npu_llm.csv``), per runtime family:

- prefill is compute work on the NPU: seconds per token = a x (2 x active matmul weights, without the
  output head) + c x layers. Achieved compute is a property of the runtime and its version, not of the
  nominal TOPS (0.4-25% of it in the data); never above the chip's nominal TOPS;
- decode reads the runtime's 4-bit weights once per token: seconds = a x bytes + c x layers. Not bytes
  / DRAM bandwidth: the Snapdragon X Elite (135 GB/s) decodes slower on Genie than the 8 Elite phone
  (85 GB/s), so the NPU's own memory path and generation bound it; the DRAM bandwidth is a ceiling only.
  (Decode, mean error held out leaving a chip / a model out: bytes at the DRAM bandwidth with a cost per
  token 35% / 37%; bytes alone 25% / 22%; with a cost per layer instead 25% / 15%; and the chip's own
  factor 25% / 12%.)

a and c are fitted per runtime (least squares in relative error; c = 0 when one model size only, or
when the least squares would make a term negative). Each
chip in the data gets its own factor (geometric mean measured/predicted over its rows, shrunk toward 1 by
n/(n+1)), applied when the device is that chip (its ``soc`` or a chip named in its name). Bounds are the
range of measured/predicted held out: for a chip the data does not have, each row predicted from the
runtime's rows of other chips and of other models; for a chip it has, each row predicted from the chip's
other models with the chip's factor; each pooled with the other runtimes' spreads where the runtime's own
rows cannot show it (x/÷2 where no row can be held out: a runtime measured once).

A chip without a known runtime, or a runtime without data for a quantity, gives None and says why.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import lru_cache

from slmplan.errors import UnknownIdError
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


Spreads = tuple[tuple[float, float] | None, tuple[float, float] | None]


@dataclass(frozen=True)
class Affine:
    """Time per token = a x work + c x layers (work: FLOPs for prefill, bytes read for decode; c: a fixed
    cost per layer), with chip factors and two sets of bounds on measured/predicted speed: ``low``/``high``
    for a chip the rows do not have, ``chip_low``/``chip_high`` for one they have (its factor applied)."""

    a: float
    c: float
    low: float
    high: float
    rows: int
    chip_low: float
    chip_high: float
    chip_factors: tuple[tuple[str, float, int], ...] = ()  # (chip, measured/predicted speed shrunk by n/(n+1), n)

    def time(self, work: float, layers: int) -> float:
        return self.a * work + self.c * layers

    def chip_factor(self, chip: str | None) -> tuple[float, int]:
        """The chip's own factor on speed and the rows it rests on; (1, 0) for a chip the rows do not have."""
        for name, f, n in self.chip_factors:
            if name == chip:
                return f, n
        return 1.0, 0


def _solve(work: list[float], layers: list[int], t: list[float]) -> tuple[float, float]:
    """a and c by least squares in relative error; c only where several model sizes pin it down and the
    least squares gives both terms positive (otherwise c = 0 and a = the median of time/work)."""
    import numpy as np

    w, n, tt = np.array(work), np.array(layers, dtype=float), np.array(t)
    a, c = float(np.median(tt / w)), 0.0
    if len(set(np.round(w / w.min(), 2))) > 1:
        sol, *_ = np.linalg.lstsq(np.stack([w / tt, n / tt], axis=1), np.ones_like(tt), rcond=None)
        if sol[0] > 0 and sol[1] >= 0:
            a, c = float(sol[0]), float(sol[1])
    return a, c


def _ratios(rows: list[dict], kind: str, a: float, c: float) -> list[float]:
    """Measured speed / predicted speed (= predicted time / measured time) of each row."""
    return [(a * r[f"{kind}_work"] + c * r["layers"]) / r[f"{kind}_t"] for r in rows]


def _shrunk_log(logs: list[float]) -> float:
    """The mean of log(measured/predicted) over n rows, shrunk toward 0 by n/(n+1)."""
    return len(logs) / (len(logs) + 1) * statistics.fmean(logs)


def _chip_factors(rows: list[dict], kind: str, a: float, c: float) -> dict[str, tuple[float, int]]:
    """Each chip's geometric mean measured/predicted speed on its rows, shrunk toward 1 by n/(n+1)."""
    out = {}
    for chip in sorted({r["chip"] for r in rows}):
        logs = [math.log(x) for x in _ratios([r for r in rows if r["chip"] == chip], kind, a, c)]
        out[chip] = (math.exp(_shrunk_log(logs)), len(logs))
    return out


def _point(rows: list[dict], kind: str) -> tuple[float, float, dict[str, tuple[float, int]]]:
    a, c = _solve([r[f"{kind}_work"] for r in rows], [r["layers"] for r in rows], [r[f"{kind}_t"] for r in rows])
    return a, c, _chip_factors(rows, kind, a, c)


def _held_ratio(train: list[dict], r: dict, kind: str, own_chip: bool) -> float:
    a, c, chips = _point(train, kind)
    f = chips.get(r["chip"], (1.0, 0))[0] if own_chip else 1.0
    return _ratios([r], kind, a, c)[0] / f


def _held_out_ratios(mine: list[dict], kind: str) -> tuple[list[float], list[float], list[float]]:
    """Measured/predicted speed of each of one runtime's rows held out: (1) predicted from the rows of the
    other chips, (2) from the rows of the other models, both without a chip factor, and (3) from the other
    models with the chip's factor (rows whose chip has another model)."""
    chip_out, model_out, own = [], [], []
    for r in mine:
        if train := [x for x in mine if x["chip"] != r["chip"]]:
            chip_out.append(_held_ratio(train, r, kind, own_chip=False))
        if train := [x for x in mine if x["model"] != r["model"]]:
            model_out.append(_held_ratio(train, r, kind, own_chip=False))
            if any(x["chip"] == r["chip"] for x in train):
                own.append(_held_ratio(train, r, kind, own_chip=True))
    return chip_out, model_out, own


def fit_held_out(rows: list[dict], kind: str, borrowed: Spreads = (None, None)) -> Affine | None:
    """The fit of the rows' ``{kind}_work``/``{kind}_t`` and its bounds, from held-out ratios:

    - a chip the rows do not have (``low``/``high``): each row predicted from the rows of the other
      chips and from the rows of the other models, without a chip factor, and the in-sample range;
    - a chip the rows have (``chip_low``/``chip_high``): each row predicted from its chip's other models
      (the fit and the chip's factor both from the rows left), and the in-sample range after the factor.

    ``borrowed`` (``held_out_spreads`` of the other runtimes) widens them: rows of one chip cannot say how
    far another chip departs, so there the other runtimes' chip-out spread widens the first pair; and a
    few models on a chip say little about the next one, so the others' own-chip spread widens the second
    wherever the runtime's own rows can hold a chip's model out (otherwise the second is the first).
    ×/÷2 where no row can be held out (one row, or one chip with one model)."""
    mine = [r for r in rows if r[f"{kind}_t"]]
    if not mine:
        return None
    a, c, chips = _point(mine, kind)
    if len(mine) == 1:
        lo, hi = 1 / SINGLE_ROW_SPREAD, SINGLE_ROW_SPREAD
        return Affine(a, c, lo, hi, 1, lo, hi, tuple((k, *v) for k, v in chips.items()))
    plain = _ratios(mine, kind, a, c)
    chip_out, model_out, own = _held_out_ratios(mine, kind)
    held = chip_out + model_out
    after = [x / chips[r["chip"]][0] for x, r in zip(plain, mine, strict=True)]
    lo, hi = (min(1.0, *plain, *held), max(1.0, *plain, *held)) if held else (1 / SINGLE_ROW_SPREAD, SINGLE_ROW_SPREAD)
    clo, chi = (min(1.0, *after, *own), max(1.0, *after, *own)) if own else (lo, hi)
    if borrowed[0] and len({r["chip"] for r in mine}) == 1:
        lo, hi = min(lo, borrowed[0][0]), max(hi, borrowed[0][1])
    if borrowed[1] and own:
        clo, chi = min(clo, borrowed[1][0]), max(chi, borrowed[1][1])
    return Affine(a, c, lo, hi, len(mine), clo, chi, tuple((k, *v) for k, v in chips.items()))


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
        out.append({"runtime": rt, "chip": chip.name if chip else r["soc"], "model": mid, "layers": f.n_layers,
                    "pp_work": 2 * matmul_params(f), "pp_t": 1 / pp if pp else None,
                    "tg_work": npu_bytes_per_token(f), "tg_t": 1 / tg if tg else None,
                    "bandwidth_gbs": chip.memory_bandwidth_gbs if chip else None,
                    "npu_tops": chip.npu_tops if chip else None, "source": r["source"]})
    return out


def held_out_spreads(rows: list[dict], kind: str) -> Spreads:
    """Lowest and highest measured/predicted speed held out, over the rows' runtimes: (1) each row
    predicted from its runtime's rows of other chips, without a chip factor (runtimes measured on several
    chips); (2) each row predicted from its chip's other models, with the chip's factor. None if none."""
    chip_out, own = [], []
    for rt in {r["runtime"] for r in rows}:
        c_out, _, o = _held_out_ratios([r for r in rows if r["runtime"] == rt and r[f"{kind}_t"]], kind)
        chip_out += c_out
        own += o
    return ((min(chip_out), max(chip_out)) if chip_out else None, (min(own), max(own)) if own else None)


def fit_runtimes(rows: list[dict] | None = None) -> dict[str, RuntimeFit]:
    rows = _rows() if rows is None else rows
    out = {}
    for rt in RUNTIMES:
        mine = [r for r in rows if r["runtime"] == rt]
        others = [r for r in rows if r["runtime"] != rt]
        out[rt] = RuntimeFit(rt, *(fit_held_out(mine, k, held_out_spreads(others, k)) for k in ("pp", "tg")))
    return out


@lru_cache(maxsize=1)
def runtime_fits() -> dict[str, RuntimeFit]:
    return fit_runtimes()


def predict(fit: Affine, work: float, layers: int, chip: str | None, limit_s: float | None,
            own: DeviceFactor | None = None) -> tuple[float, float, float, int]:
    """Tokens/s with its low/high bounds and the rows behind its factor (0: a chip the data does not
    have). ``limit_s``: the physical floor on time per token (bytes at the DRAM bandwidth for decode,
    FLOPs at the nominal TOPS for prefill), None when unknown; the speed and its high bound stay under it.
    ``own``: the device's factor from its own measurements (``device_factor``), used instead of the
    chip's; the bounds then also hold those measurements."""
    if own:
        f, n = own.factor, own.n
        lo, hi = min(fit.chip_low, own.low), max(fit.chip_high, own.high)
    else:
        f, n = fit.chip_factor(chip)
        lo, hi = (fit.chip_low, fit.chip_high) if n else (fit.low, fit.high)
    speed = f / fit.time(work, layers)
    ceiling = 1 / limit_s if limit_s else math.inf
    speed = min(speed, ceiling)
    return speed, speed * lo, min(speed * hi, ceiling), n


@dataclass(frozen=True)
class DeviceFactor:
    """The device's factor from its own measurements, their number, and the range of measured/predicted
    they keep after it (so that the bounds hold them)."""

    factor: float
    n: int
    low: float
    high: float


def device_factor(fit: Affine, kind: str, device: DeviceProfile, runtime: str, chip: str | None) -> DeviceFactor | None:
    """The device's factor from its own ``npu_measurements`` of this runtime (measured/predicted speed,
    geometric mean, shrunk by n/(n+1) toward the chip's published factor, or 1), or None without any.
    An unknown model id is an error."""
    from slmplan.catalog import facts, get_model, load_catalog

    key = "prefill_tokens_per_s" if kind == "pp" else "decode_tokens_per_s"
    rows = [m for m in (device.npu_measurements or []) if m.runtime == runtime and getattr(m, key)]
    if not rows:
        return None
    prior = fit.chip_factor(chip)[0]
    cat = load_catalog()
    logs = []
    for m in rows:
        try:
            f = facts(get_model(cat, m.model))
        except UnknownIdError as e:
            raise UnknownIdError(f"npu_measurements of device '{device.id}': {e.message}",
                                 (e.hint or "") + " Fix the model id in the profile") from None
        work = 2 * matmul_params(f) if kind == "pp" else npu_bytes_per_token(f)
        logs.append(math.log(getattr(m, key) * fit.time(work, f.n_layers) / prior))
    shrunk = _shrunk_log(logs)
    left = [math.exp(x - shrunk) for x in logs]  # each measurement / the prediction with the factor
    return DeviceFactor(prior * math.exp(shrunk), len(logs), min(left), max(left))


def device_chip(device: DeviceProfile) -> str | None:
    """The chip-table name of the device's chip (its ``soc``, else a chip named in its name)."""
    from slmplan.socs import find_chip

    chip = find_chip(device.soc) if device.soc else find_chip(device.name)
    return chip.name if chip else None


def ceiling_s(kind: str, work: float, npu_tops: float | None, bandwidth_gbs: float | None) -> float | None:
    """The physical floor on time per token: FLOPs at the nominal TOPS (prefill), every weight byte read once
    at the DRAM bandwidth (decode); None when the figure is unknown."""
    if kind == "pp":
        return work / (npu_tops * 1e12) if npu_tops else None
    return work / (bandwidth_gbs * 1e9) if bandwidth_gbs else None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def fit_has_chip(fit: RuntimeFit, chip: str | None) -> bool:
    return any(x is not None and x.chip_factor(chip)[1] > 0 for x in (fit.prefill, fit.decode))


def _unknown(why: str, runtime: str = "npu") -> SpeedEstimate:
    return SpeedEstimate(prefill_tokens_per_s=None, decode_tokens_per_s=None, decode_tokens_per_s_low=None,
                         decode_tokens_per_s_high=None, ttft_s=None, bound="unknown", backend=runtime, method=why)


def _r(x: float | None, how=None) -> float | None:
    """Two decimals; bounds with ``how`` = ``math.floor`` / ``math.ceil`` so that rounding never narrows them."""
    if x is None:
        return None
    return round(x, 2) if how is None else how(x * 100) / 100


def estimate_npu_speed(facts: ModelFacts, device: DeviceProfile, n_prompt: int = 300,
                       fits: dict[str, RuntimeFit] | None = None, runtime: str | None = None) -> SpeedEstimate:
    """The device's NPU runtime (``runtime`` if given, else the first of its ``npu_runtimes`` with data),
    or unknown with the reason."""
    fits = fits or runtime_fits()
    runtimes = [r for r in (device.npu_runtimes or []) if r in fits and (runtime is None or r == runtime)]
    if not runtimes:
        return _unknown("unknown: no NPU runtime known for this chip (npu_runtimes in the profile or the chip table)")
    fit = fits[runtimes[0]]
    name = RUNTIMES[fit.runtime]
    if fit.prefill is None and fit.decode is None:
        return _unknown(f"unknown: no published LLM measurements for {name}", f"npu:{fit.runtime}")
    chip = device_chip(device)
    flops, nbytes, layers = 2 * matmul_params(facts), npu_bytes_per_token(facts), facts.n_layers
    own, mine = [], []
    est: dict[str, tuple[float, float, float] | None] = {"pp": None, "tg": None}
    for kind, label, f, work in (("pp", "prefill", fit.prefill, flops), ("tg", "decode", fit.decode, nbytes)):
        if f is None:
            continue
        dev_f = device_factor(f, kind, device, fit.runtime, chip)
        limit = ceiling_s(kind, work, device.npu_tops, device.memory_bandwidth_gbs)  # never above TOPS / DRAM
        speed, lo, hi, n = predict(f, work, layers, chip, limit, dev_f)
        est[kind] = (speed, lo, hi)
        if dev_f:
            mine.append(f"{label} x{dev_f.factor:.2f} from {_count(n, 'measurement')}")
        elif n:
            own.append(f"{label} x{f.chip_factor(chip)[0]:.2f} from {_count(n, 'row')}")
    pp, pp_lo, pp_hi = est["pp"] or (None, None, None)
    tg, tg_lo, tg_hi = est["tg"] or (None, None, None)
    ttft = n_prompt / pp + (1 / tg if tg else 0) if pp else None
    rows = f"prefill {fit.prefill.rows if fit.prefill else 0} rows, decode {fit.decode.rows if fit.decode else 0} rows"
    fitted = (f"estimate: {name} fitted on published NPU measurements ({rows}; time per token = work at the "
              "runtime's achieved rate + a fixed cost per layer; bounds = the range of measured/predicted on "
              "them held out, x/÷2 where none can be held out)")
    parts = [fitted, f"{NPU_BITS:g}-bit weights in the runtime's own format"]
    if mine:
        toward = "the chip's published factor" if fit_has_chip(fit, chip) else "1 (no published rows for this chip)"
        parts.append(f"this device's own factor from its npu_measurements (shrunk by n/(n+1) toward {toward}): "
                     f"{', '.join(mine)}")
    if own:
        parts.append(f"this chip's own factor from its published rows ({chip}): {', '.join(own)}")
    if len(mine) + len(own) < sum(x is not None for x in (pp, tg)):
        parts.append("no published rows for this chip on this runtime"
                     + (" for the rest" if mine or own else "") + ": the bounds are those of a chip the data does not have")
    if pp is None:
        parts.append("prefill and time to first token unknown: no prefill data for this runtime")
    if tg is None:
        parts.append("decode unknown: no decode data for this runtime")
    return SpeedEstimate(
        prefill_tokens_per_s=_r(pp), prefill_tokens_per_s_low=_r(pp_lo, math.floor),
        prefill_tokens_per_s_high=_r(pp_hi, math.ceil),
        decode_tokens_per_s=_r(tg), decode_tokens_per_s_low=_r(tg_lo, math.floor),
        decode_tokens_per_s_high=_r(tg_hi, math.ceil),
        ttft_s=None if ttft is None else round(ttft, 4), bound="npu-compute (prefill), npu memory path (decode)",
        backend=f"npu:{fit.runtime}", method="; ".join(parts))


def validate_npu(group: str = "chip") -> dict:
    """Leave-one-chip-out (``group="chip"``) or leave-one-model-out (``"model"``) per runtime: each
    group's rows predicted from the other rows of the same runtime, as ``estimate_npu_speed`` predicts
    (leaving a model out, the chip's own factor comes from its other models); a runtime measured on one
    chip only cannot be validated leave-one-chip-out."""
    rows = _rows()
    out = {}
    for kind in ("pp", "tg"):
        errs, inside, ratios = [], [], []
        borrowed = {rt: held_out_spreads([x for x in rows if x["runtime"] != rt], kind) for rt in {r["runtime"] for r in rows}}
        for r in [x for x in rows if x[f"{kind}_t"]]:
            train = [x for x in rows if x["runtime"] == r["runtime"] and x[group] != r[group] and x[f"{kind}_t"]]
            fit = fit_held_out(train, kind, borrowed[r["runtime"]]) if train else None  # bounds by the shipped rule, on the training rows
            if fit:
                limit = ceiling_s(kind, r[f"{kind}_work"], r["npu_tops"], r["bandwidth_gbs"])
                speed, lo, hi, _ = predict(fit, r[f"{kind}_work"], r["layers"], r["chip"], limit)
                ratio = (1 / r[f"{kind}_t"]) / speed  # measured speed / predicted speed
                errs.append(abs(ratio - 1))
                ratios.append(ratio)
                inside.append(lo <= 1 / r[f"{kind}_t"] <= hi)
        out["prefill" if kind == "pp" else "decode"] = (
            {"rows": len(errs), "median_abs_pct": round(100 * statistics.median(errs), 1),
             "mean_abs_pct": round(100 * statistics.fmean(errs), 1), "worst_pct": round(100 * max(errs), 1),
             "bias_pct": round(100 * (statistics.median([1 / x for x in ratios]) - 1), 1),
             "within_low_high_pct": round(100 * sum(inside) / len(inside), 1)}
            if errs else {"rows": 0})
    return out
