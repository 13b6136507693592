"""Calibrate a device profile on llama-bench results measured on that device, and apply it.

The planner's speed model stays a black box: :func:`predicted_token_time_s` is the one place that asks it
for a per-token time (decode at a depth, split into the part that scales with the device's speed and the
fixed rest; or prefill of a prompt). On top of it, per device:

- decode: measured time per token = a * predicted streaming time + b * layer units (llama.cpp graph nodes / 31, = layers for a Llama model). Rows of three or more model
  depths (layer units: quants of one model share its layers) fit both (least squares on the relative error,
  a > 0, b >= 0). One or two model sizes, at one quant or several, cannot separate them reliably:
  then b = a * prior (a fixed cost per layer learned from the published multi-model measurements for GPUs,
  from the GPU's FLOPs per byte where the profile gives its FP32 peak; the planner's own fixed cost
  otherwise) and the tg rows fix a. On the CPU (classes with a ``device_prior`` in the speed model) that a is
  for the measured models only (``a_own``); the other models get the device's share of the measured ratio,
  the posterior of the split between device and model learned from the planner's held-out deviations
  (estimate/shrink.py).
- prefill: measured prompt tokens/s = scale * predicted (median over the pp rows).
- quant types: rows of 2+ types give each measured type its own factor on decode time and prompt tokens/s
  (``quant_factors``, shrunk toward 1 by n/(n+1) for a type measured on n models).
- bounds: with rows of 3+ models, the spread of the residuals widened by 5 points; with fewer, decode takes
  ONE_MODEL_DECODE_BOUNDS (how far other models ran after one-model calibrations on the published devices)
  and prefill the shipped model's own spread across devices.

The fitted constants, the rows and each row's residual go into the profile's ``calibration:`` block; when
the speed model changes (its fingerprint differs), the constants are refitted from the stored rows.
benchmarks/calibration_lomo.py measures how well one model's measurement predicts the others.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import statistics
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from slmplan.errors import BadInputError
from slmplan.estimate.graph import layer_units
from slmplan.estimate.speed_constants import ClassConstants
from slmplan.importers.identify import PARAMS_TOLERANCE
from slmplan.model import ModelFacts
from slmplan.schema.calibration import DecodeFit, DeviceCalibration, PrefillFit, Residual
from slmplan.schema.device import DeviceProfile
from slmplan.schema.estimate import SpeedEstimate

WIDEN = 0.05
MIN_MODELS_FOR_RESIDUAL_BOUNDS = 3
# Decode low/high (measured / predicted) after a calibration on fewer than 3 models: the 10th-90th percentile of the
# other models' measured/predicted when one model was measured, on the published devices with 3+ models, each
# refitted without the device (benchmarks/calibration_lomo.py --unseen --bounds; every device weighing the same).
# Pooled over the 12 llama.cpp devices (per class they were alike: CPU x0.889-x1.128, CUDA/Vulkan x0.883-x1.139; Metal,
# two devices, x0.915-x1.056); each device inside the other eleven's pooled bounds 79.3% of the time on average.
ONE_MODEL_DECODE_BOUNDS: tuple[float, float] = (0.890, 1.123)
MIN_DEPTHS_FOR_B = 3  # model sizes (layer units) before b is fitted rather than taken from the prior
# Fixed cost per layer and token, at the profile's own speed (b = a x prior), when the rows measure one or two
# model sizes and cannot separate it from the streaming time. GPU: median b/a of the published GPU devices with
# 3+ catalog models (llmfit's community data and the llama-bench rows of gpu_more.csv;
# benchmarks/calibration_lomo.py prints them; the shipped speed model's own split differs), in three groups by
# how llama.cpp launches a token's kernels: CUDA on GPUs before Ampere, which launch every kernel on its own
# (no CUDA graphs: GTX 1050 Ti, RTX 2080), CUDA with CUDA graphs (GB10, RTX 5070, Jetson Orin Nano) and Vulkan.
# A group of one device (Vulkan: the RX 7900 XT) takes the median of all the CUDA/Vulkan devices, as
# benchmarks/calibration_lomo.py evaluates it. Metal: the median of the two Apple chips with 3+ catalog models
# (M2 Ultra and M4, apple_m1_m2_llama2_7b.csv + apple_more.csv), 0.085 ms, below the Metal speed model's own
# 0.114 ms per layer. Other classes (CPU, and NPU runtimes): the planner's own split.
PRIOR_LABEL = {"gpu": ", CUDA with CUDA graphs (Ampere or newer, or generation unknown)",
               "gpu-no-graphs": ", CUDA before Ampere: no CUDA graphs", "vulkan": ", Vulkan", "metal": ", Apple Metal"}
ONE_MODEL_LAYER_PRIOR_S = {"gpu": 6.73e-5, "gpu-no-graphs": 1.494e-4, "vulkan": 9.91e-5, "metal": 8.48e-5}
# CUDA/Vulkan GPUs whose profile gives an FP32 peak (gpu_tflops) and a bandwidth: b/a = k / x, x = the GPU's FP32
# FLOPs per byte of bandwidth. Over the six published CUDA/Vulkan GPUs with 3+ catalog models b/a falls with x
# (log-log r = -0.92, slope -0.93 when fitted; fixed at -1 here, one constant): a GPU with much compute per byte
# (GB10, 114 FLOP/B) spends little of a layer's time outside streaming its weights, a small one (Jetson Orin
# Nano, 20 FLOP/B; GTX 1050 Ti, 19) much more, whatever the launch path. k = the geometric mean of
# (b/a) * x over the six (benchmarks/calibration_lomo.py prints it; it evaluates each GPU with k from the other
# five, the GPUs at either end extrapolated, as a GPU outside the six's 19-114 FLOP/B is: its form says so).
# Without gpu_tflops: the groups above.
ONE_MODEL_COMPUTE_PRIOR = {"k_s": 3.816e-3, "x_min": 19.1, "x_max": 113.6}


# ---- the one adapter to the planner's predictor ---------------------------------------------------

def _constants(device: DeviceProfile) -> ClassConstants:
    from slmplan.estimate.speed import load_constants

    return load_constants().for_backend(device.effective_backend)[1]


@dataclass(frozen=True)
class Predicted:
    """The planner's time per token, and the part of it that scales with the device's speed (streaming the
    weights and KV cache, or the CPU's arithmetic when that is slower); the rest is its fixed cost."""

    total_s: float
    streaming_s: float


def predicted_token_time_s(facts: ModelFacts, quant: str, device: DeviceProfile, kind: str, n_tokens: int,
                           depth: int) -> Predicted | None:
    """The planner's seconds per token: ``kind`` "tg" = generating ``n_tokens`` after ``depth`` tokens of
    context (mean depth depth + n_tokens/2), "pp" = processing an ``n_tokens`` prompt after ``depth``.
    None when the planner cannot predict it (prefill without a compute figure)."""
    from slmplan.estimate.speed import decode_time_s, prefill_tokens_per_s
    from slmplan.planner import hardware

    k, hw = _constants(device), hardware(device)
    if kind == "tg":
        t, _ = decode_time_s(facts, quant, hw, depth + n_tokens // 2, k)
        stream, _ = decode_time_s(facts, quant, hw, depth + n_tokens // 2, replace(k, c_layer_s=0.0, c_token_s=0.0,
                                                                                   c_layer_no_graphs_s=None))
        return Predicted(t, stream)
    pp = prefill_tokens_per_s(facts, quant, hw, n_tokens, k, depth=depth)
    return Predicted(1.0 / pp, 1.0 / pp) if pp else None


def predictor_fingerprint(device: DeviceProfile) -> str:
    """What the fitted constants are relative to: the speed model's constants for the device's backend and the
    profile's hardware figures the planner predicts from (bandwidth, compute, cache, threads). A calibration
    whose fingerprint differs is refitted from its stored rows."""
    from dataclasses import asdict

    from slmplan.planner import hardware

    blob = json.dumps({"constants": _constants(device).to_dict(), "hardware": asdict(hardware(device))},
                      sort_keys=True, default=sorted).encode()  # default: Hardware.repack_types, a frozenset
    return f"{device.effective_backend}:{hashlib.sha256(blob).hexdigest()[:12]}"


# ---- fitting ---------------------------------------------------------------------------------------

@dataclass
class Point:
    key: Residual  # the row as stored (measured + where it came from)
    facts: ModelFacts
    kind: str  # tg | pp | pg
    t_meas: float  # s/token
    pred: Predicted | None

    @property
    def t_pred(self) -> float | None:
        return self.pred.total_s if self.pred else None


def prior_group(device: DeviceProfile) -> str:
    """Which one-model prior applies, by how llama.cpp launches a token's kernels: Vulkan; CUDA without CUDA
    graphs (a GPU before Ampere, from ``cuda_compute_capability`` or the GPU's name); CUDA with them or of
    unknown generation ("gpu"); other classes by class."""
    from slmplan.estimate.cuda_arch import profile_compute_capability, uses_cuda_graphs
    from slmplan.estimate.speed_constants import BACKEND_CLASS

    backend = device.effective_backend
    if backend == "vulkan":
        return "vulkan"
    if backend == "cuda" and uses_cuda_graphs(profile_compute_capability(device)) is False:
        return "gpu-no-graphs"
    return BACKEND_CLASS.get(backend, "cpu")


COMPUTE_PRIOR_GROUPS = ("gpu", "gpu-no-graphs", "vulkan")  # CUDA and Vulkan (Metal keeps its own prior)


def flops_per_byte(device: DeviceProfile) -> float | None:
    """The GPU's FP32 peak over its memory bandwidth (FLOP/B), from the profile; None when either is unknown."""
    if not device.gpu_tflops or not device.memory_bandwidth_gbs:
        return None
    return device.gpu_tflops * 1e12 / (device.memory_bandwidth_gbs * 1e9)


def compute_prior_k(devices: list[tuple[float, float]]) -> float:
    """k of b/a = k / x from (x FLOP/B, b/a s) pairs: the geometric mean of (b/a) * x."""
    return math.exp(statistics.fmean(math.log(r * x) for x, r in devices))


def layer_prior(device: DeviceProfile, pts: list[tuple[Point, Predicted]]) -> tuple[float, str]:
    """Fixed cost per layer (at the profile's speed) assumed when the rows cannot tell it (one model size),
    and where it comes from."""
    group = prior_group(device)
    x = flops_per_byte(device)
    cp = ONE_MODEL_COMPUTE_PRIOR
    if group in COMPUTE_PRIOR_GROUPS and x and cp:
        out = "" if cp["x_min"] <= x <= cp["x_max"] else (f", extrapolated beyond the published GPUs' "
                                                              f"{cp['x_min']:g}-{cp['x_max']:g}")
        return cp["k_s"] / x, (f" from the GPU's {x:.1f} FP32 FLOPs per byte of bandwidth{out}: "
                               f"{cp['k_s'] * 1e3:.3f} ms / x")
    label = PRIOR_LABEL.get(group, "")
    if group in COMPUTE_PRIOR_GROUPS:
        label += "; a gpu_tflops key in the profile gives a closer prior"
    if group in ONE_MODEL_LAYER_PRIOR_S:
        return ONE_MODEL_LAYER_PRIOR_S[group], label
    # no better evidence for this class: the planner's own split between streaming and fixed cost
    return statistics.median((pr.total_s - pr.streaming_s) / layer_units(p.facts) for p, pr in pts), label


def layer_prior_s(device: DeviceProfile, pts: list[tuple[Point, Predicted]]) -> float:
    return layer_prior(device, pts)[0]


def fit_decode(points: list[Point], shipped: ClassConstants, device: DeviceProfile | None = None) -> DecodeFit | None:
    pairs = [(p, p.pred) for p in points if p.kind == "tg" and p.pred]
    if not pairs:
        return None
    pts = [p for p, _ in pairs]
    u = [pr.streaming_s / p.t_meas for p, pr in pairs]
    v = [layer_units(p.facts) / p.t_meas for p in pts]
    models = {p.key.model for p in pts}
    # b, a fixed cost per layer unit, needs rows of models with different layer counts: quants of one model
    # share its layers, and their speeds differ by kernel (per type), which b would take up and carry over.
    # Two sizes fit a and b exactly, each model's own deviation going into b; from three on the fit has a
    # residual (benchmarks/calibration_lomo.py: two models measured, 9.1% with both fitted, 6.9% with the prior)
    depths = {layer_units(p.facts) for p in pts}
    a: float | None = None
    a_own: float | None = None
    own: list[str] = []
    b = 0.0
    if len(depths) >= MIN_DEPTHS_FOR_B:  # least squares of a*u + b*v - 1 (relative error), a > 0, b >= 0
        suu, suv, svv = sum(x * x for x in u), sum(x * y for x, y in zip(u, v)), sum(y * y for y in v)
        det = suu * svv - suv * suv
        if det > 1e-9 * suu * svv:
            a2 = (sum(u) * svv - sum(v) * suv) / det
            b2 = (suu * sum(v) - suv * sum(u)) / det
            if a2 > 0 and b2 >= 0:
                a, b, form = a2, b2, "a and b fitted"
            elif a2 > 0:
                a, b, form = sum(u) / suu, 0.0, "b fitted at its bound 0"
    if a is None:  # one or two model sizes (or no usable fit): b = a * prior, then a from the rows
        prior, label = layer_prior(device, pairs) if device else (0.0, "")
        w = [x + prior * y for x, y in zip(u, v)]
        a = sum(w) / sum(x * x for x in w)
        sizes = ("one model size" if len(depths) == 1 else f"{len(depths)} model sizes (b is fitted from {MIN_DEPTHS_FOR_B})"
                 if len(depths) < MIN_DEPTHS_FOR_B else f"{len(depths)} model sizes, no fit of b with a > 0")
        form = f"{sizes}: b = a x {prior * 1e3:.4f} ms (prior fixed cost per layer{label})"
        shrunk = _shrink(a, prior, pairs, shipped, len(models))
        if shrunk:  # the measured models keep the a fitted to them, the others get the device's share
            a_own = a
            a, how_shrunk = shrunk
            own = sorted({f"{p.key.model}: {model_key(p.facts)}" for p in pts})
            form += how_shrunk
        b = a * prior
    qf = quant_factors(pairs, a_own or a, (a_own or a) * prior if a_own else b) if QUANT_FACTORS else {}
    ratios = [(a * pr.streaming_s + b * layer_units(p.facts)) * qf.get(p.key.quant, 1.0) / p.t_meas
              for p, pr in pairs]  # fitted / measured time = measured / fitted tokens/s
    if len(models) >= MIN_MODELS_FOR_RESIDUAL_BOUNDS:
        lo, hi = min(1.0, min(ratios)) - WIDEN, max(1.0, max(ratios)) + WIDEN
        how = f"spread of the {len(pts)} rows' residuals (measured/fitted), widened by {WIDEN:.0%}"
    else:
        lo, hi = ONE_MODEL_DECODE_BOUNDS
        how = (f"{len(models)} model(s) measured, too few ({MIN_MODELS_FOR_RESIDUAL_BOUNDS} needed) for the device's own "
               f"residuals: the 10th-90th percentile of how the other models ran after one model was measured, on "
               f"the published devices with 3+ models, each predicted as a new device")
    return DecodeFit(a=round(a, 6), b_layer_s=round(b, 10), ratio_low=round(max(lo, 0.05), 3), ratio_high=round(hi, 3),
                     rows=len(pts), models=len(models), bounds=how, form=form,
                     a_own=round(a_own, 6) if a_own else None, own_models=own, quant_factors=qf)


QUANT_FACTORS = True  # benchmarks/calibration_lomo.py --no-quant-factors turns them off (the previous rule)


def quant_factors(pairs: list[tuple[Point, Predicted]], a: float, b: float) -> dict[str, float]:
    """Per measured quant type, how much slower (> 1) or faster this device runs that type than the fit of all its
    rows: the geometric mean of the type's rows' measured / fitted time per token, relative to that of all rows,
    shrunk toward 1 by n / (n + 1) for a type measured on n models (one model's quant difference is partly its
    own; the device's part and the model's part are about equally spread on the published CPU devices, see the
    README). The speed model's per-type kernel costs are the class's; this is the device's own. Empty when the
    rows have one quant type (nothing to tell apart)."""
    return _shrunk_type_factors([(p, math.log(p.t_meas / (a * pr.streaming_s + b * layer_units(p.facts)))) for p, pr in pairs],
                                center=True)


def _shrunk_type_factors(logs: list[tuple[Point, float]], center: bool) -> dict[str, float]:
    """exp(n/(n+1) x the mean log deviation of each quant type's rows), n = models measured at the type; relative to
    the mean of all rows when ``center``. Empty with fewer than two types."""
    by_q: dict[str, list[float]] = {}
    models_q: dict[str, set[str]] = {}
    for p, x in logs:
        by_q.setdefault(p.key.quant, []).append(x)
        models_q.setdefault(p.key.quant, set()).add(p.key.model)
    if len(by_q) < 2:
        return {}
    mean = statistics.fmean(x for _, x in logs) if center else 0.0
    return {q: round(math.exp(len(models_q[q]) / (len(models_q[q]) + 1) * (statistics.fmean(xs) - mean)), 4)
            for q, xs in by_q.items()}


def quant_factors_text(factors: dict[str, float], what: str = "time per token") -> str:
    """A fit's measured quant types' own factors, for the CLI ('' when there are none)."""
    if not factors:
        return ""
    return (f"per quant type, {what} x " + ", ".join(f"{q} {g:.3f}" for q, g in sorted(factors.items()))
            + " (this device's own kernels for each measured type; types not measured x1)")


def model_key(f: ModelFacts) -> str:
    """What identifies a measured model when it is predicted again (from its GGUF file or its catalog entry)."""
    return f"{f.architecture} {f.n_layers} x {f.n_embd} ff {f.n_ff} vocab {f.n_vocab}"


def _shrink(a: float, prior: float, pairs: list[tuple[Point, Predicted]], shipped: ClassConstants,
            n_models: int) -> tuple[float, str] | None:
    """a for the models NOT measured: the measured rows' ratio to the planner split into the device's part (which
    every model on the device shares) and the measured models' own, by the class's held-out deviations
    (estimate/shrink.py). None where the class has no such prior (CUDA/Vulkan: the ratio is kept whole)."""
    from slmplan.estimate.shrink import DevicePrior, device_deviation

    dp = DevicePrior.from_dict(shipped.device_prior)
    if dp is None:
        return None
    # a0: the a that gives back the planner's own prediction of the measured rows (1 when the prior is its split)
    w0 = [(pr.streaming_s + prior * layer_units(p.facts)) / pr.total_s for p, pr in pairs]
    a0 = sum(w0) / sum(x * x for x in w0)
    r = math.log(a0 / a)  # log(measured / predicted tokens/s) of the measured rows
    d = device_deviation(r, dp, n_models)
    return a0 * math.exp(-d), (
        f"; the measured model{'s' if n_models > 1 else ''} ran x{math.exp(r):.3f} the planner's prediction, read as "
        f"x{math.exp(d):.3f} for the device and the rest as the model's own (the planner's held-out deviations: "
        f"{dp.model_sd:.3f} per model, devices mostly within {dp.close_sd:.3f}, some {dp.far_sd:.3f}, in log units); "
        f"the measured model{'s keep their' if n_models > 1 else ' keeps its'} measured speed")


def fit_prefill(points: list[Point], shipped: ClassConstants) -> PrefillFit | None:
    pts = [(p, t) for p in points if p.kind == "pp" and (t := p.t_pred)]
    ratios = [t / p.t_meas for p, t in pts]  # measured tokens/s / predicted
    if not ratios:
        return None
    n = len(ratios)
    s = statistics.median(ratios)
    qf = _shrunk_type_factors([(p, math.log(r / s)) for (p, _), r in zip(pts, ratios)], center=False) if QUANT_FACTORS else {}
    models = len({p.key.model for p, _ in pts})
    if models >= MIN_MODELS_FOR_RESIDUAL_BOUNDS:
        rel = [r / s / qf.get(p.key.quant, 1.0) for (p, _), r in zip(pts, ratios)]
        lo, hi = min(1.0, min(rel)) - WIDEN, max(1.0, max(rel)) + WIDEN
        how = f"spread of the {n} pp rows ({models} models) around the fit, widened by {WIDEN:.0%}"
    else:  # the quants of one or two models do not tell how other models' prompts deviate
        lo, hi = shipped.prefill_ratio_low, shipped.prefill_ratio_high
        how = (f"the shipped speed model's prefill spread across devices: pp rows of {models} model(s), too few "
               f"({MIN_MODELS_FOR_RESIDUAL_BOUNDS} needed) to tell how other models deviate")
    return PrefillFit(scale=round(s, 6), ratio_low=round(max(lo, 0.05), 3), ratio_high=round(hi, 3), rows=n,
                      bounds=how, quant_factors=qf)


@lru_cache(maxsize=64)
def _own_keys(own_models: tuple[str, ...]) -> frozenset[str]:
    return frozenset(m.partition(": ")[2] for m in own_models)


def prefill_scale(fit: PrefillFit, quant: str) -> float:
    """The calibration's multiplier of the planner's prompt tokens/s for a model at ``quant``."""
    return fit.scale * fit.quant_factors.get(quant, 1.0)


def decode_time(fit: DecodeFit, pred: Predicted, facts: ModelFacts, quant: str) -> float:
    t = (fit.a * pred.streaming_s + fit.b_layer_s * layer_units(facts)) * fit.quant_factors.get(quant, 1.0)
    if fit.a_own and fit.own_models and model_key(facts) in _own_keys(tuple(fit.own_models)):
        return t * fit.a_own / fit.a  # a measured model: its own measured speed, not the device's shrunk share
    return t


def measured_facts(model_id: str, catalog_path: str | None, gguf_path: str | None = None) -> ModelFacts:
    """The measured model's facts: read from ``gguf_path`` (the file slmplan benchmarked) while it is there,
    else the catalog entry."""
    f = _file_facts(gguf_path) if gguf_path else None
    if f is not None:
        return f
    from slmplan.catalog import facts, get_model, load_catalog

    return facts(get_model(load_catalog(catalog_path), model_id))


def _file_facts(path: str, n_params: int | None = None) -> ModelFacts | None:
    """Facts of a readable GGUF file, None when it is gone, unreadable, or not the model of ``n_params``
    (llama.cpp's parameter count of the row; the file at that path was replaced)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return None
    f = _file_facts_cached(str(p), st.st_size, st.st_mtime_ns)
    if f is not None and n_params and abs(f.params - n_params) > PARAMS_TOLERANCE * n_params:
        return None
    return f


@lru_cache(maxsize=16)
def _file_facts_cached(path: str, size: int, mtime_ns: int) -> ModelFacts | None:
    from slmplan.errors import SlmplanError
    from slmplan.gguf import read_gguf
    from slmplan.model import facts_from_gguf

    try:
        return facts_from_gguf(read_gguf(path))
    except (SlmplanError, OSError, ValueError):
        return None  # no longer a readable GGUF: the catalog entry the row was identified as


def points_from_rows(rows, device: DeviceProfile, catalog_path: str | None = None) -> list[Point]:
    pts = []
    for r in rows:
        path = r.gguf_path if r.gguf_path and _file_facts(r.gguf_path, r.model_n_params) else None
        res = Residual(source=r.source, model=r.model_id, quant=r.quant, test=r.test, n_prompt=r.n_prompt,
                       n_gen=r.n_gen, n_depth=r.n_depth, measured_tokens_per_s=round(r.tokens_per_s, 4), gguf_path=path)
        pts.append(_point(res, measured_facts(r.model_id, catalog_path, path), device))
    return pts


def _point(res: Residual, f: ModelFacts, device: DeviceProfile) -> Point:
    kind, n = _kind(res.n_prompt, res.n_gen)
    if kind == "pg":
        return Point(res, f, "pg", 1.0 / res.measured_tokens_per_s, None)
    pred = predicted_token_time_s(f, res.quant, device, kind, n, res.n_depth)
    return Point(res, f, kind, 1.0 / res.measured_tokens_per_s, pred)


def _kind(n_prompt: int, n_gen: int) -> tuple[str, int]:
    if n_prompt == 0 and n_gen > 0:
        return "tg", n_gen
    if n_gen == 0:
        return "pp", n_prompt
    return "pg", n_prompt + n_gen


def fit_points(points: list[Point], device: DeviceProfile) -> tuple[DecodeFit | None, PrefillFit | None, list[Residual]]:
    shipped = _constants(device)
    dec, pre = fit_decode(points, shipped, device), fit_prefill(points, shipped)
    out = []
    for p in points:
        upd: dict = {"predicted_tokens_per_s": round(1 / p.t_pred, 4) if p.t_pred else None}
        if p.kind == "tg" and dec and p.pred:
            fitted = 1 / decode_time(dec, p.pred, p.facts, p.key.quant)
        elif p.kind == "pp" and pre and p.t_pred:
            fitted = prefill_scale(pre, p.key.quant) / p.t_pred
        else:
            fitted = None
            upd["note"] = ("prompt and generation timed together (llama-bench -pg): not used" if p.kind == "pg"
                           else "the planner has no prediction for this test (no compute figure in the profile)")
        if fitted:
            upd["fitted_tokens_per_s"] = round(fitted, 4)
            upd["residual_pct"] = round(100 * (fitted / p.key.measured_tokens_per_s - 1), 2)
        out.append(p.key.model_copy(update=upd))
    return dec, pre, out


# ---- building the calibrated profile --------------------------------------------------------------

_GPU = (("CUDA", "cuda"), ("Metal", "metal"), ("MTL", "metal"), ("Vulkan", "vulkan"))
_CPU_SIDE = ("cpu", "blas", "accelerate", "amx")  # llama-bench backend names that compute on the CPU


def row_backend(row) -> str | None:
    """The slmplan backend a row ran on: a GPU backend with layers offloaded, else the CPU; None = not said.
    A backend slmplan has no speed model for (OpenCL, SYCL, CANN, Hexagon, ...) with layers offloaded is an error."""
    if not row.backends:
        return None
    b = row.backends
    offloaded = row.n_gpu_layers is None or row.n_gpu_layers > 0
    for key, name in _GPU:
        if key.lower() in b.lower() and offloaded:
            return name
    other = [x.strip() for x in b.split(",") if x.strip() and x.strip().lower() not in _CPU_SIDE
             and not any(k.lower() in x.lower() for k, _ in _GPU)]
    if other and offloaded:
        raise BadInputError(f"{row.source}: the row ran on {', '.join(other)} with layers offloaded, a backend slmplan's "
                            "speed model does not describe (it knows CPU, CUDA, Metal and Vulkan)",
                            "Calibrate on rows run on the CPU (llama-bench -ngl 0) or on CUDA, Metal or Vulkan")
    return "cpu"


def _settings_key(row) -> tuple:
    return (row_backend(row), row.threads, row.flash_attn, row.type_k, row.type_v, row.repack)


def select_rows(rows, threads: int | None = None) -> list:
    if threads is not None:
        rows = [r for r in rows if r.threads == threads]
        if not rows:
            raise BadInputError(f"no row ran with {threads} threads", "Check --threads against the files' threads column")
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault(_settings_key(r), []).append(r)
    if len(groups) > 1:
        desc = "; ".join(f"{k[0]}, {k[1] or '?'} threads, fa {k[2] or '?'}, kv {k[3] or '?'}/{k[4] or '?'}, "
                         f"repack {'?' if k[5] is None else int(k[5])} ({len(v)} rows)"
                         for k, v in groups.items())
        raise BadInputError(f"the rows measure {len(groups)} different settings ({desc})",
                            "Calibrate on one setting: pass --threads N, or files of one llama-bench setting")
    return rows


def calibrate(files: list, base: DeviceProfile, catalog_path: str | None = None, now: str | None = None,
              threads: int | None = None) -> tuple[DeviceProfile, list[str]]:
    """A new profile: the base's keys plus ``calibration``. ``files`` are parsed BenchFile objects whose rows
    were identified. Returns the profile and notes for the user."""
    rows = [r for f in files for r in f.rows]
    dev, notes = calibrate_rows(rows, base, [str(f.path) for f in files], catalog_path, now, threads)
    if base.id == "local":
        notes.append("'local' was detected now; the calibrated profile keeps these numbers fixed")
    return dev, notes


def _gpu_generation(rows: list, base: DeviceProfile, backend: str) -> dict:
    """A CUDA profile that neither states ``cuda_compute_capability`` nor names a known GPU takes it from the
    GPU llama-bench names (``gpu_info``): it decides the one-model prior (CUDA graphs or not)."""
    from slmplan.estimate.cuda_arch import SOURCE, compute_capability_from_name, profile_compute_capability

    if backend != "cuda" or profile_compute_capability(base) is not None:
        return {}
    for r in rows:
        info = getattr(r, "gpu_info", None)
        if info and (cc := compute_capability_from_name(info)) is not None:
            return {"cuda_compute_capability": cc,
                    "sources": {**base.sources, "cuda_compute_capability": f"llama-bench gpu_info '{info}'; {SOURCE}"}}
    return {}


def _gpu_peak(rows: list, base: DeviceProfile, backend: str, sources: dict | None) -> tuple[dict, list[str]]:
    """A CUDA/Vulkan profile without ``gpu_tflops`` takes the FP32 peak of the GPU llama-bench names
    (``gpu_info``) from the GPU table (data/gpus.yaml): it decides the one-model prior and lets prefill be
    predicted. The profile's bandwidth is kept; a note says when it is far from the named GPU's."""
    from slmplan.gpus import find_gpu

    if backend not in ("cuda", "vulkan"):
        return {}, []
    info = next((i for r in rows if (i := getattr(r, "gpu_info", None))), None)
    gpu = find_gpu(info)
    if gpu is None:
        return {}, []
    upd: dict = {}
    if not base.gpu_tflops:
        upd = {"gpu_tflops": gpu.fp32_tflops,
               "sources": {**(sources or base.sources), "gpu_tflops": f"llama-bench gpu_info '{info}': {gpu.name}, {gpu.source}"}}
    notes = []
    bw = base.memory_bandwidth_gbs
    if bw and not 2 / 3 <= bw / gpu.memory_bandwidth_gbs <= 1.5:
        notes.append(f"the rows ran on {gpu.name} ({gpu.memory_bandwidth_gbs:g} GB/s by its specification), the profile "
                     f"says {bw:g} GB/s: use a profile with the GPU's memory bandwidth (memory_bandwidth_gbs) for "
                     "predictions on that GPU")
    return upd, notes


def calibrate_rows(rows: list, base: DeviceProfile, sources: list[str], catalog_path: str | None = None,
                   now: str | None = None, threads: int | None = None) -> tuple[DeviceProfile, list[str]]:
    """``calibrate`` on identified rows (``BenchRow``) from ``sources`` (file paths, or what else measured them:
    'slmplan bench --calibrate' passes its own runs). The one fit behind `slmplan calibrate` and `bench --calibrate`."""
    notes = []
    rows = select_rows(rows, threads)
    backend = row_backend(rows[0]) or base.effective_backend
    # renamed first: the fit and every later use then predict with the same profile
    new_id = base.id if base.id.endswith("-calibrated") else f"{base.id}-calibrated"
    upd: dict = {"calibration": None, "backend": backend, "id": new_id}
    if backend != base.effective_backend:
        notes.append(f"the rows ran on {backend}, the profile said {base.effective_backend}: the calibrated profile uses {backend}")
    if rows[0].threads:
        upd["threads"] = rows[0].threads
    upd.update(_gpu_generation(rows, base, backend))
    gpu_upd, gpu_notes = _gpu_peak(rows, base, backend, upd.get("sources"))
    upd.update(gpu_upd)
    notes += gpu_notes
    dev = base.model_copy(update=upd)
    points = points_from_rows(rows, dev, catalog_path)
    partial = sorted({p.key.model for p, r in zip(points, rows) if backend != "cpu" and r.n_gpu_layers is not None
                      and 0 < r.n_gpu_layers < p.facts.n_layers})
    if partial:
        notes.append(f"{', '.join(partial)}: only some layers ran on the GPU (-ngl): the calibration describes that "
                     "split, not a full offload")
    dec, pre, residuals = fit_points(points, dev)
    if dec is None and pre is None:
        raise BadInputError("no tg or pp row the planner can predict: nothing to calibrate",
                            "Run llama-bench with its default tests (-p 512 -n 128), which measure both")
    if dec is None:
        notes.append("no tg row: decode stays uncalibrated (run llama-bench with -n 128)")
    elif "prior" in dec.form and prior_group(dev) in COMPUTE_PRIOR_GROUPS and flops_per_byte(dev) is None:
        notes.append("the profile gives no gpu_tflops (the GPU's FP32 peak, the vendor's figure): the fixed cost per "
                     "layer for other model sizes comes from the launch-path group, not from the GPU's compute per "
                     "byte, a closer prior on published GPUs; add gpu_tflops to the profile and calibrate again")
    elif not 1 / 3 <= dec.a <= 3:
        notes.append(f"the device decodes {1 / dec.a:.1f}x as fast as the profile predicts: check that --device "
                     "is the device that ran llama-bench (its bandwidth, backend and threads)")
    used = [r for r in residuals if r.residual_pct is not None]
    builds = sorted({r.build for r in rows if r.build})
    names = [Path(s).name for s in sources]
    r0 = rows[0]
    cal = DeviceCalibration(
        method=method_text(len(used), names),
        files=list(sources), measurements=len(used), models=sorted({r.model for r in used}),
        llama_cpp_build=", ".join(builds) or None,
        date=now or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), backend=backend,
        threads=r0.threads, flash_attn=r0.flash_attn, type_k=r0.type_k, type_v=r0.type_v, repack=r0.repack,
        predictor=predictor_fingerprint(dev), decode=dec, prefill=pre, residuals=residuals)
    name = dev.name if dev.name.endswith("(calibrated)") else f"{dev.name} (calibrated)"
    sources_key = {**dev.sources, "calibration": f"slmplan calibrate on {', '.join(names)} ({cal.date})"}
    return DeviceProfile.model_validate({**dev.model_dump(exclude_none=True), "id": new_id, "name": name,
                                         "sources": sources_key, "calibration": cal.model_dump(exclude_none=True)}), notes


def method_text(n: int, names: list[str]) -> str:
    return f"calibrated on {n} measurement{'s' if n != 1 else ''} from {', '.join(names)}"


def profile_yaml(dev: DeviceProfile) -> str:
    import yaml

    head = ("# Device profile written by 'slmplan calibrate': the base profile plus a calibration block fitted on\n"
            "# llama-bench measurements taken on this device. Use it with --device THIS.yaml.\n")
    return head + yaml.safe_dump(dev.contract_dict(), sort_keys=False, allow_unicode=True, width=120)


# ---- applying it ----------------------------------------------------------------------------------

def current_fit(device: DeviceProfile, catalog_path: str | None = None) -> tuple[DecodeFit | None, PrefillFit | None, str]:
    """The stored constants, or (when the speed model or the profile's hardware figures changed since) a refit
    from the stored rows."""
    cal = device.calibration
    if cal is None:
        return None, None, ""
    base = device.model_copy(update={"calibration": None})
    if cal.predictor == predictor_fingerprint(base):
        return cal.decode, cal.prefill, cal.method
    key = (device.model_dump_json(), catalog_path)
    if key not in _REFIT:
        pts = []
        for r in cal.residuals:
            try:
                pts.append(_point(r, measured_facts(r.model, catalog_path, r.gguf_path), base))
            except BadInputError:
                continue  # the model left the catalog: its row cannot be re-predicted
        dec, pre, _ = fit_points(pts, base) if pts else (None, None, [])
        _REFIT[key] = (dec, pre, cal.method + " (refitted: the speed model or the profile's hardware figures changed since calibration)")
    return _REFIT[key]


_REFIT: dict = {}


def apply_calibration(speed: SpeedEstimate, facts: ModelFacts, quant: str, device: DeviceProfile, ctx: int,
                      n_prompt: int, n_gen: int) -> SpeedEstimate:
    """The planner's estimate for ``device`` corrected by its calibration block (same query conventions as
    estimate_speed: decode at the mean depth of the answer)."""
    dec, pre, method = current_fit(device)
    base = device.model_copy(update={"calibration": None})
    n_prompt = max(1, min(n_prompt, ctx))
    depth = min(n_prompt + n_gen // 2, ctx)
    upd: dict = {"method": method + " (" + (speed.method or "estimate") + ")"}
    t_tok = 1.0 / speed.decode_tokens_per_s if speed.decode_tokens_per_s else None
    p_tok = predicted_token_time_s(facts, quant, base, "tg", 0, depth) if dec else None
    if dec and p_tok:
        t_tok = decode_time(dec, p_tok, facts, quant)
        tg = 1.0 / t_tok
        upd.update(decode_tokens_per_s=round(tg, 2), decode_tokens_per_s_low=round(tg * dec.ratio_low, 2),
                   decode_tokens_per_s_high=round(tg * dec.ratio_high, 2))
    pp = speed.prefill_tokens_per_s or None
    if pre and pp:
        t_pp = predicted_token_time_s(facts, quant, base, "pp", n_prompt, 0)
        pp = prefill_scale(pre, quant) / t_pp.total_s if t_pp else pp
        upd.update(prefill_tokens_per_s=round(pp, 2), prefill_tokens_per_s_low=round(pp * pre.ratio_low, 2),
                   prefill_tokens_per_s_high=round(pp * pre.ratio_high, 2))
    if pp and t_tok is not None:
        upd["ttft_s"] = round(n_prompt / pp + t_tok, 4)
    return speed.model_copy(update=upd)


def predict_row(row, device: DeviceProfile, catalog_path: str | None = None) -> float | None:
    """The planner's tokens/s for one identified llama-bench row on ``device`` (calibrated when it is)."""
    f = measured_facts(row.model_id, catalog_path, row.gguf_path)
    return predict_test(f, row.quant, device, row.n_prompt, row.n_gen, row.n_depth, catalog_path)


def predict_test(facts: ModelFacts, quant: str, device: DeviceProfile, n_prompt: int, n_gen: int, n_depth: int,
                 catalog_path: str | None = None) -> float | None:
    """The planner's tokens/s for a llama-bench test on ``device``: ``n_prompt`` prompt tokens then ``n_gen``
    generated ones after ``n_depth`` cached tokens (both timed together, as llama-bench does), corrected by the
    device's calibration when it has one. None when the planner cannot predict the prompt part."""
    base = device.model_copy(update={"calibration": None})
    dec, pre, _ = current_fit(device, catalog_path) if device.calibration else (None, None, "")
    t = 0.0
    if n_prompt > 0:
        pp = predicted_token_time_s(facts, quant, base, "pp", n_prompt, n_depth)
        if pp is None:
            return None
        t += n_prompt * pp.total_s / (prefill_scale(pre, quant) if pre else 1.0)
    if n_gen > 0:
        tg = predicted_token_time_s(facts, quant, base, "tg", n_gen, n_depth + n_prompt)
        assert tg is not None  # decode always has a prediction
        t += n_gen * (decode_time(dec, tg, facts, quant) if dec else tg.total_s)
    return (n_prompt + n_gen) / t if t > 0 else None
