"""Fit the speed model's constants on the published measurements shipped in data/calibration.

Deterministic (grid search in log space, no randomness):

1. per-GGML-type kernel throughputs: decode from the Llama 3.1 8B quant sweep (the time each type
   takes beyond what its bytes explain, F16 and Q8_0 = 1), prefill from same-device pairs of types
   (CPU: edge_cpu; GPU: the Apple sweep, K/IQ types from the quant sweep), Q8_0 = 1;
2. per backend class, decode constants (eta_bw, kappa, c_token, c_layer; CPU: the x86 AVX2 kernels' factor)
   minimising the mean squared
   log error of decode tokens/s, and the prefill efficiency as the median measured/predicted ratio;
   on CPU, how the per-layer cost grows with threads and how much of the memory and compute time
   overlap are chosen among a few candidates by leave-one-device-out error;
3. validation on data the fit did not see: leave-one-device-out and leave-one-model-out; the low/high
   bounds shipped are the 10th/90th percentiles of measured/predicted held out, the wider of the two splits.

``benchmarks/fit_speed_model.py`` regenerates ``data/speed_model.json``; ``tests/test_speed.py``
checks the shipped file matches this code.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import replace

import numpy as np

from slmplan.catalog import facts, get_model, load_catalog
from slmplan.estimate import calib_rows as CR
from slmplan.estimate.calib_rows import Row
from slmplan.estimate.graph import layer_units
from slmplan.estimate.quants import FTYPE_BASE
from slmplan.estimate.speed import (
    CORE_REF_GFLOPS,
    SGEMM_TYPES,
    THREAD_REF,
    Hardware,
    decode_bytes_per_token,
    decode_flops_per_token,
    decode_time_s,
    prefill_tokens_per_s,
    quantized_matmul_flops,
    repacked_types,
)
from slmplan.estimate.speed_constants import ClassConstants, SpeedConstants

THREAD_EXPS = (0.0, 0.5, 1.0)  # candidates; the fit keeps the one with the lowest held-out error
# CPU: how the fixed cost per layer unit scales with the speed of one core (speed.cpu_layer_scale):
# 0 = a fixed time, 1 = a fixed number of cycles of one core (per-core peak FLOPS as its speed). Evaluated
# before the Pi 4 rows and the per-type CPU rates were added: chosen by held-out error alone (CORE_EXPS = (0.0, 0.5, 1.0)), the fit takes 1 with no thread exponent: leave-one-device-out
# decode error 16.0% / 23.9% (median / mean; 15.6% / 25.3% shipped then) and leave-one-model-out 16.5% / 23.5%
# (20.4% / 28.9%), but with a fixed cost of 1.07 ms per layer unit at 50 GFLOPS per core and kappa 0.98 it
# predicts this project's own quiet runs (AMD EPYC, 2 threads) far too slow: SmolLM2 135M tg128
# measured/predicted 2.06 and Gemma 3 270M 1.59, against 1.06 and 1.20 shipped then. Not shipped; not re-run since.
CORE_EXPS = (0.0,)
# CPU decode: the compute term's per-weight throughput of two type groups relative to Q8_0 (speed's q_cpu):
# (16/32-bit floats, types below 8 bits), candidates chosen with the thread exponent by leave-one-device-out
# error; () = the quant sweep's q_dec for the compute term too (the shipped model before 2026-12-02). On the 2026 rows the
# floats run at 0.7 and the sub-8-bit types at 1.4 the per-weight rate of Q8_0 (README, Speed).
CPU_FLOAT_RATES = (0.5, 0.7, 1.0)
CPU_LOWBIT_RATES = (1.0, 1.4, 1.6, 1.8, 2.0)
FLOAT_TYPES = ("F32", "F16", "BF16")
EIGHT_BIT_TYPES = ("Q8_0", "Q8_1", "Q8_K")
# the sub-8-bit types the CPU rows measure (Q4_0; the Q4_K/Q5_K/Q6_K of the Q4_K_M and Q4_K_S mixes; Q5_0/Q5_1,
# llama.cpp's fallback for tensors whose rows are not a multiple of 256), with the types llama.cpp dequantizes
# like Q4_0 (speed.DEQUANT_GROUPS); every other sub-8-bit type keeps its quant sweep cost relative to Q4_K on top
# of the fitted rate (Q2_K, Q3_K, IQ types: no CPU row to say otherwise)
CPU_RATED_TYPES = ("Q4_0", "Q4_1", "IQ4_NL", "MXFP4", "Q4_K", "Q5_K", "Q6_K", "Q5_0", "Q5_1")
# CPU decode: kernel families of llama.cpp (speed.cpu_kernels_of) whose quantized weights' compute rate gets a factor of
# its own, a sixth constant of the class's decode fit (_refine, from 1). The ARM phones and boards hold most CPU rows and so set kappa;
# llama.cpp's x86 AVX2 dot products (ggml-cpu/arch/x86/quants.c) are other code, and the compute-bound x86 rows run
# faster than that kappa predicts (a 2-core Haswell MacBook Pro at 1.51 measured/predicted before the factor).
KERNEL_FAMILIES = ("x86-avx2",)
KERNEL_MIN_DEVICES = 2  # an x86-sse factor would rest on one device (a Core 2 Optiplex): not fitted
KERNEL_FACTOR_RANGE = (0.5, 4.0)  # where the fit may put it
OVERLAPS = (0.0, 0.5, 1.0)  # CPU: share of min(t_mem, t_cpu) hidden under the longer
# The shipped CPU fit hides half of the shorter time (overlap 0.5). On the rows of this version (57 CPU decode
# rows on 16 devices: the 2026 Raspberry Pi 4 and 5 llama-bench sweeps included) and with the per-type CPU
# rates below, it also has the lowest held-out error of the three (mean |log| leave-one-device-out 0.176,
# against 0.199 serial and 0.219 roofline with the same shape; each refit with its own choices: device-out
# 12.3% / 17.1% median / mean at 0.5, 16.8% / 19.6% serial, 13.7% / 24.1% roofline), and it keeps this
# project's own quiet runs inside 0.8-1.25 (Gemma 3 270M / SmolLM2 135M tg128 measured/predicted 1.15 / 0.83;
# serial: 1.34 / 1.04). Only 0.5 is a candidate to keep the fit fast (``CPU_OVERLAPS = OVERLAPS`` searches all).
CPU_OVERLAPS = (0.5,)
ETAS = np.round(np.arange(0.3, 1.0001, 0.025), 3)
KAPPAS = np.geomspace(0.02, 1.0, 30)
C_TOKEN = np.concatenate([[0.0], np.geomspace(1e-5, 1e-2, 19)])
C_LAYER = np.concatenate([[0.0], np.geomspace(1e-6, 4e-4, 21)])


class Facts:
    def __init__(self):
        self.cat = load_catalog()
        self.cache: dict[str, object] = {}
        self.decode_cache: dict[tuple, tuple[float, float, float]] = {}

    def __call__(self, mid: str):
        if mid not in self.cache:
            self.cache[mid] = facts(get_model(self.cat, mid))
        return self.cache[mid]

    def weights(self, mid: str, q: str) -> int:
        return self(mid).weights_bytes(q)

    def decode_work(self, mid: str, quant: str, depth: int, q_dec: dict,
                    q_cpu: dict | None = None) -> tuple[float, float, float]:
        """(time-equivalent bytes, FLOPs, layer units) of one decoded token (memoized: the fit asks often);
        the FLOPs weighted by ``q_cpu`` (the CPU's per-type decode work), else by ``q_dec``."""
        key = (mid, quant, depth, tuple(sorted(q_dec.items())), tuple(sorted((q_cpu or {}).items())))
        if key not in self.decode_cache:
            f = self(mid)
            self.decode_cache[key] = (decode_bytes_per_token(f, quant, depth, q_dec=q_dec),
                                      decode_flops_per_token(f, quant, depth, q_cpu or q_dec), layer_units(f))
        return self.decode_cache[key]


def load_rows(get: Facts | None = None) -> list[Row]:
    get = get or Facts()
    return CR.apple_rows() + CR.apple_more_rows() + CR.edge_rows() + CR.llmfit_rows(get.weights) + CR.gpu_more_rows()


def _base(ftype: str) -> str:
    return FTYPE_BASE[ftype.upper()].name


def fit_quant_decode(get: Facts) -> dict[str, float]:
    """Per-type decode kernel throughput from the quant sweep: t = a * bytes + b for F16 and Q8_0
    (reference types), then q = a * bytes / (t - b) for every other type."""
    sweep = CR.quant_sweep()
    f = get("llama-3.1-8b")
    t = {r["quant"]: 1 / r["tg"] for r in sweep}
    B = {r["quant"]: decode_bytes_per_token(f, r["quant"], 64) for r in sweep}
    a = (t["F16"] - t["Q8_0"]) / (B["F16"] - B["Q8_0"])
    b = t["Q8_0"] - a * B["Q8_0"]
    per_type: dict[str, list[float]] = defaultdict(list)
    for q, tq in t.items():
        if q in ("F16", "Q8_0"):
            continue
        per_type[_base(q)].append(a * B[q] / (tq - b))
    return {k: round(min(1.0, statistics.fmean(v)), 3) for k, v in sorted(per_type.items())}


def _pairs(rows: list[Row], ref: str = "Q8_0") -> dict[str, list[float]]:
    """Same device, model and source: prefill of each type relative to ``ref``."""
    by: defaultdict[tuple, dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r.pp and not r.sgemm and not r.repack:  # the plain kernels (q_pp is relative to them)
            by[(r.device, r.model_id, r.source)][r.quant] = r.pp
    out = defaultdict(list)
    for d in by.values():
        if ref in d:
            for q, v in d.items():
                if q != ref:
                    out[_base(q)].append(v / d[ref])
    return out


def fit_quant_prefill(rows: list[Row], cls: str) -> dict[str, float]:
    out = {k: round(statistics.median(v), 3) for k, v in _pairs([r for r in rows if r.cls == cls]).items()}
    if cls == "gpu":  # K/IQ types: the quant sweep (one machine, hardware not stated)
        sweep = {r["quant"]: r["pp"] for r in CR.quant_sweep()}
        per = defaultdict(list)
        for q, v in sweep.items():
            if q not in ("Q8_0",) and _base(q) not in out:
                per[_base(q)].append(v / sweep["Q8_0"])
        out.update({k: round(statistics.fmean(v), 3) for k, v in per.items()})
    return dict(sorted(out.items()))


def _hw(r: Row) -> Hardware:
    return Hardware(r.backend, r.bandwidth_gbs, r.cpu_gflops, r.gpu_tflops, threads=r.threads, repack=r.repack,
                    repack_types=r.repack_types, sgemm=r.sgemm, cuda_graphs=r.cuda_graphs, cpu_kernels=r.cpu_kernels)


def cpu_rates_table(rates: tuple, q_dec: dict[str, float]) -> dict[str, float]:
    """q_cpu of a (float rate, sub-8-bit rate) candidate: floats at the first, the measured sub-8-bit types
    (CPU_RATED_TYPES) at the second, every other block-quantized type below 8 bits at the second times its quant
    sweep cost relative to Q4_K (``q_dec``); the 8-bit types are the reference (Q8_0 = 1). () = none (q_dec
    is used)."""
    if not rates:
        return {}
    fl, lb = rates
    from slmplan.estimate.speed import kernel_throughput
    from slmplan.ggufconst import GGML_QUANT_SIZES

    ref = kernel_throughput(q_dec, "Q4_K")
    out = {}
    for t in GGML_QUANT_SIZES:
        if t.name in FLOAT_TYPES:
            out[t.name] = fl
        elif t.name in CPU_RATED_TYPES:
            out[t.name] = lb
        elif t.name not in EIGHT_BIT_TYPES and GGML_QUANT_SIZES[t][0] > 1:  # block-quantized below 8 bits
            out[t.name] = round(lb * kernel_throughput(q_dec, t.name) / ref, 4)
    return out


def _features(rows: list[Row], get: Facts, q_dec: dict, q_cpu: dict | None = None) -> dict[str, np.ndarray]:
    """Per-row arrays of the decode formula; FLQ: the quantized part of FL on the rows of the CPU kernel family
    whose factor is fitted (``KERNEL_FAMILIES``), 0 elsewhere."""
    B, FL, FLQ, L, BW, G, TG, TH, NG, PC = [], [], [], [], [], [], [], [], [], []
    for r in rows:
        b, fl, n_layers = get.decode_work(r.model_id, r.quant, r.tg_depth, q_dec, q_cpu if r.cls == "cpu" else None)
        fitted = r.cls == "cpu" and r.cpu_kernels in KERNEL_FAMILIES
        FLQ.append(quantized_matmul_flops(get(r.model_id), r.quant, q_cpu or q_dec) if fitted else 0.0)
        B.append(b)
        FL.append(fl)
        L.append(n_layers)
        BW.append(r.bandwidth_gbs * 1e9)
        G.append((r.cpu_gflops or 0) * 1e9 if r.cls == "cpu" else 0)
        TG.append(r.tg)
        TH.append(r.threads or THREAD_REF)
        # peak GFLOPS of one core llama.cpp runs on (0 = unknown: the per-layer cost is not scaled by it)
        PC.append(r.cpu_gflops / r.threads if r.cls == "cpu" and r.cpu_gflops and r.threads else 0.0)
        NG.append(1.0 if _own_layer_cost(r) else 0.0)
    return {k: np.array(v, dtype=float) for k, v in zip(("B", "FL", "FLQ", "L", "BW", "G", "TG", "TH", "NG", "PC"),
                                                            (B, FL, FLQ, L, BW, G, TG, TH, NG, PC))}


OLD_BUILD_BEFORE = 2025  # Metal builds before this year get a per-layer cost of their own (the split)


def _old_metal_build(r: Row) -> bool:
    return r.cls == "metal" and r.build_year is not None and r.build_year < OLD_BUILD_BEFORE


def _own_layer_cost(r: Row) -> bool:
    """Rows whose fixed cost per layer unit is a constant of its own when the class is split: CUDA without
    CUDA graphs (GPUs before Ampere) in the gpu class, builds before 2025 in the Metal class."""
    return (r.backend == "cuda" and r.cuda_graphs is False) or _old_metal_build(r)


def _layer_scale(x: dict[str, np.ndarray], thread_exp: float, core_exp: float) -> np.ndarray:
    """Each row's multiplier of the per-layer cost (``speed.cpu_layer_scale``): threads and core speed."""
    s = (x["TH"] / THREAD_REF) ** thread_exp
    if core_exp:
        s = s * np.where(x["PC"] > 0, CORE_REF_GFLOPS / np.where(x["PC"] > 0, x["PC"], 1.0), 1.0) ** core_exp
    return s


def _decode_times(x: dict[str, np.ndarray], cls: str, eta, kappa, c_token, c_layer, thread_exp: float,
                  overlap: float, c_layer_ng: float | None = None, core_exp: float = 0.0, kx: float = 1.0) -> np.ndarray:
    """Predicted seconds per token of the rows in ``x`` (the formula of ``speed.decode_time_s``;
    ``c_layer_ng``: the per-layer cost of the rows of ``_own_layer_cost`` (x["NG"]: CUDA without CUDA graphs,
    Metal builds before 2025), None = ``c_layer``)."""
    t_mem = x["B"] / (eta * x["BW"])
    if cls == "cpu":
        t_cpu = (x["FL"] - x["FLQ"] + x["FLQ"] / kx) / (kappa * np.where(x["G"] > 0, x["G"], np.inf))
        t_core = np.maximum(t_mem, t_cpu) + (1.0 - overlap) * np.minimum(t_mem, t_cpu)
    else:
        t_core = t_mem
    cl = c_layer if c_layer_ng is None else np.where(x["NG"] > 0, c_layer_ng, c_layer)
    return t_core + c_token + cl * x["L"] * _layer_scale(x, thread_exp, core_exp)


C_ZERO = 1e-8  # a fixed cost this small (10 ns per token) is reported as 0


def _several_models(x: dict[str, np.ndarray]) -> bool:
    """Whether the rows span models of different layer counts: only then can a fixed cost per token be told
    apart from one per layer (with one model, c_token and c_layer x layers are the same number, and the fit
    keeps the per-layer cost alone, c_token = 0). Decided by the rows, not by the backend class."""
    return bool(np.unique(np.round(x["L"], 6)).size > 1)


def _refine(x, cls: str, start: tuple[float, float, float, float], thread_exp: float,
            overlap: float, split: bool = False, free_token: bool = True,
            core_exp: float = 0.0, free_kx: bool = False) -> tuple[float, float, float, float, float | None, float]:
    """Pattern search in log space from the best grid point (deterministic): eta <= 1, kappa <= 1,
    fixed costs >= 0; the grid's resolution (steps of 2.5% to 50%) is too coarse for held-out comparisons.
    ``split``: with rows both with and without a per-layer cost of their own (``_own_layer_cost``: CUDA without
    CUDA graphs, Metal builds before 2025), theirs is a fifth constant (starting from the shared one); else it
    is None. ``free_token``: the fixed cost per token is
    fitted (``_fit_decode`` decides it). ``free_kx``: the sixth constant, the quantized kernels' throughput factor
    of the rows with x["FLQ"] (``KERNEL_FAMILIES``), from 1 within ``KERNEL_FACTOR_RANGE``; else 1."""
    logm = np.log(x["TG"])
    split = split and bool(x["NG"].any() and not x["NG"].all())
    free = [True, cls == "cpu", free_token, True, split, free_kx]
    u = np.log([max(v, C_ZERO) for v in (*start, start[3], 1.0)])
    lo = np.array([np.log(C_ZERO)] * 5 + [np.log(KERNEL_FACTOR_RANGE[0])])
    hi = np.array([0.0, 0.0, np.log(1.0), np.log(1.0), np.log(1.0), np.log(KERNEL_FACTOR_RANGE[1])])

    def loss(v):
        eta, kappa, ct, cl, cl_ng, kx = np.exp(v)
        t = _decode_times(x, cls, eta, kappa, ct if free[2] else 0.0, cl, thread_exp, overlap,
                          cl_ng if split else None, core_exp, kx)
        return float(np.mean((np.log(1 / t) - logm) ** 2))

    best, step = loss(u), 0.25
    while step > 4e-3:  # 0.4% in each constant
        moved = False
        for i in range(len(u)):
            if not free[i]:
                continue
            for d in (step, -step):
                v = u.copy()
                v[i] = min(max(v[i] + d, lo[i]), hi[i])
                f = loss(v)
                if f < best - 1e-12:
                    u, best, moved = v, f, True
        if not moved:
            step /= 2
    eta, kappa, ct, cl, cl_ng, kx = (float(v) for v in np.exp(u))
    tidy = lambda c: c if c > 10 * C_ZERO else 0.0  # noqa: E731
    return eta, kappa, (tidy(ct) if free[2] else 0.0), tidy(cl), (tidy(cl_ng) if split else None), round(kx, 3)


def _fit_decode(rows: list[Row], cls: str, get: Facts, q_dec: dict,
                thread_exp: float, overlap: float = 1.0, split: bool = False, free_token: bool = True,
                core_exp: float = 0.0, q_cpu: dict | None = None
                ) -> tuple[float, float | None, float, float, float | None, dict[str, float]]:
    """The class's decode constants: a grid search, then ``_refine``; the last value is ``kappa_by_kernels``
    (CPU: the factor of ``KERNEL_FAMILIES``, fitted with the others where its rows come from at least
    ``KERNEL_MIN_DEVICES`` devices)."""
    rows = [r for r in rows if r.tg]
    x = _features(rows, get, q_dec, q_cpu)  # x["NG"]: the rows of _own_layer_cost
    logm = np.log(x["TG"])
    t_mem = x["B"][None, :] / (ETAS[:, None] * x["BW"][None, :])  # (eta, row)
    if cls == "cpu":
        g = np.where(x["G"] > 0, x["G"], np.inf)
        t_cpu = x["FL"][None, :] / (KAPPAS[:, None] * g[None, :])  # (kappa, row)
        hi = np.maximum(t_mem[:, None, :], t_cpu[None, :, :])  # (eta, kappa, row)
        lo = np.minimum(t_mem[:, None, :], t_cpu[None, :, :])
        t_core = hi + (1.0 - overlap) * lo
        kappas = KAPPAS
    else:
        t_core, kappas = t_mem[:, None, :], np.array([1.0])
    free_token = free_token and _several_models(x)  # one model: c_token and c_layer x layers are one number
    c_token = C_TOKEN if free_token else C_TOKEN[:1]
    lay = x["L"] * _layer_scale(x, thread_exp, core_exp)
    fix = c_token[:, None, None] + C_LAYER[None, :, None] * lay[None, None, :]  # (ct, cl, row)
    best: tuple[float, tuple] = (np.inf, ())
    for i in range(len(ETAS)):
        t = t_core[i][:, None, None, :] + fix[None]  # (kappa, ct, cl, row)
        err = np.mean((np.log(1 / t) - logm) ** 2, axis=-1)
        j = np.unravel_index(np.argmin(err), err.shape)
        if err[j] < best[0]:
            best = (float(err[j]), (i, *j))
    i, kk, ct, cl = best[1]
    (fam,) = KERNEL_FAMILIES
    free_kx = cls == "cpu" and len({r.device for r in rows if r.cpu_kernels == fam}) >= KERNEL_MIN_DEVICES
    eta, kappa, c_tok, c_lay, c_ng, kx = _refine(x, cls, (float(ETAS[i]), float(kappas[kk]), float(c_token[ct]),
                                                          float(C_LAYER[cl])), thread_exp, overlap, split, free_token,
                                                    core_exp, free_kx)
    return eta, (kappa if cls == "cpu" else None), c_tok, c_lay, c_ng, ({fam: kx} if free_kx else {})


def predict_tg(r: Row, k: ClassConstants, get: Facts) -> float:
    """Predicted decode tokens/s of the row; a Metal row of a build before 2025 with the per-layer cost of those
    builds where the class has one (the planner itself predicts current builds)."""
    if k.c_layer_old_builds_s is not None and _old_metal_build(r):
        k = replace(k, c_layer_s=k.c_layer_old_builds_s)
    t, _ = decode_time_s(get(r.model_id), r.quant, _hw(r), r.tg_depth, k)
    return 1.0 / t


def predict_pp(r: Row, k: ClassConstants, get: Facts) -> float | None:
    return prefill_tokens_per_s(get(r.model_id), r.quant, _hw(r), r.pp_tokens, k)


def _pp_ratio(r: Row, k: ClassConstants, get: Facts) -> float | None:
    """Measured / predicted prefill; None where either is unknown (no compute figure, no measurement)."""
    pred = predict_pp(r, k, get) if r.pp else None
    return r.pp / pred if r.pp and pred else None


def fit_class(rows: list[Row], cls: str, get: Facts, q_dec: dict, q_pp: dict, te: float = 0.0,
              overlap: float = 1.0, split: bool = False, free_token: bool = True, ce: float = 0.0,
              qc: tuple = ()) -> ClassConstants:
    """One class's constants; ``qc`` = the CPU's (float, sub-8-bit) per-weight decode rates (cpu_rates_table)."""
    rows = [r for r in rows if r.cls == cls]
    q_cpu = cpu_rates_table(qc, q_dec) if cls == "cpu" else {}
    eta, kappa, c_tok, c_layer, c_ng, kx = _fit_decode(rows, cls, get, q_dec, te, overlap, split, free_token, ce, q_cpu)
    c_old = c_ng if cls == "metal" else None  # the split's second constant: old Metal builds, or CUDA without graphs
    c_ng = None if cls == "metal" else c_ng
    k = ClassConstants(eta_bw=eta, kappa=kappa, c_token_s=c_tok, c_layer_s=c_layer, c_layer_no_graphs_s=c_ng,
                       c_layer_old_builds_s=c_old, eff_pp=1.0, kappa_by_kernels=kx,
                       quant_decode=q_dec, quant_prefill=q_pp, quant_cpu=q_cpu, thread_exp=te, core_exp=ce,
                       overlap=overlap, n_rows=len(rows))
    # efficiency on builds with neither tinyBLAS nor repacking, then the multipliers of the types each
    # handles, on the builds that have it (a repacked type uses the repack kernels)
    plain = [x for r in rows if not r.repack and not r.sgemm and (x := _pp_ratio(r, k, get))]
    if not plain:
        return replace(k, eff_pp=None)
    k = replace(k, eff_pp=round(float(statistics.median(plain)), 5))

    def share(r, types):
        n = matmul_elements_by_type(r, get)
        return sum(v for t, v in n.items() if t in types) / sum(n.values())

    sg = [x for r in rows if r.pp and r.sgemm and not r.repack and share(r, SGEMM_TYPES) > 0.5
          and (x := _pp_ratio(r, k, get))]
    if sg:
        k = replace(k, sgemm_prefill=round(float(statistics.median(sg)), 4))
    rep = [(r, x) for r in rows if r.pp and r.repack and share(r, repacked_types(_hw(r))) > 0.5
           and (x := _pp_ratio(r, k, get))]
    if not rep:
        return k
    k = replace(k, repack_prefill=round(float(statistics.median(x for _, x in rep)), 4))
    # per repacked type (the row's largest share): llama.cpp's repacked prompt kernels differ by type (ARM: Q4_0's
    # since 2024, Q4_K's and Q8_0's from late 2025). Rows of one device suffice (the two phones' Q4_0 and Q8_0 each
    # predict the other's: leave-one-device-out prefill 23.5% / 38.6% -> 23.0% / 36.8%; with 2+ devices required, a
    # held-out phone never got them: 24.8% / 38.7%)
    by_type: dict[str, list[float]] = defaultdict(list)
    for r, x in rep:
        by_type[main_repacked_type(r, get)].append(x)
    per = {t: round(float(statistics.median(v)), 4) for t, v in sorted(by_type.items())}
    return replace(k, repack_prefill_by_type=per)


def matmul_elements_by_type(r: Row, get: Facts) -> dict[str, int]:
    """The row's model's matmul weights (not norms, embeddings or the output head) per GGML type, in elements."""
    n: dict[str, int] = defaultdict(int)
    for t in get(r.model_id).weight_tensors(r.quant):
        if t.role not in ("norm", "token_embd", "output"):
            n[t.ggml_type] += t.n_elements
    return n


def main_repacked_type(r: Row, get: Facts) -> str:
    """The repacked weight type holding most of the row's matmul weights."""
    types = repacked_types(_hw(r))
    n = {t: v for t, v in matmul_elements_by_type(r, get).items() if t in types}
    return max(sorted(n), key=lambda t: n[t])


ONE_DEVICE_PREFILL_SPREAD = 2.0  # prefill bounds x/÷ this when a class's prefill rests on one device's rows


def _one_device_prefill(k: ClassConstants) -> ClassConstants:
    """A class whose prefill rows come from one device has no held-out device to set its bounds: x/÷2 around
    the fitted efficiency (the CUDA/Vulkan class: a Jetson Orin Nano, gpu_more.csv)."""
    return replace(k, prefill_ratio_low=round(1 / ONE_DEVICE_PREFILL_SPREAD, 3), prefill_ratio_high=ONE_DEVICE_PREFILL_SPREAD)


def _borrow_prefill(k: ClassConstants, donor: ClassConstants) -> ClassConstants:
    """A class without prefill rows (none in the shipped data since the Jetson rows; the gpu class used it
    before): the Apple Metal efficiency, with its held-out bounds doubled in width (an assumption)."""
    lo, hi = donor.prefill_ratio_low, donor.prefill_ratio_high
    return replace(k, eff_pp=donor.eff_pp, prefill_ratio_low=round(1 - 2 * (1 - lo), 3),
                   prefill_ratio_high=round(1 + 2 * (hi - 1), 3))


def _held_out(rows: list[Row], cls: str, get: Facts, q_dec: dict, q_pp: dict, by: str, te: float = 0.0,
              overlap: float = 1.0, memo: dict | None = None, split: bool = False, free_token: bool = True,
              ce: float = 0.0, qc: tuple = ()) -> list[dict]:
    """Predictions for each group (``by`` = "device" or "model_id") from constants fitted without that
    group; ``memo`` keeps results for the same rows and settings (model selection reuses them)."""
    mkey = (cls, by, te, overlap, split, free_token, ce, qc)
    if memo is not None and mkey in memo:
        return memo[mkey]
    out = _held_out_run(rows, cls, get, q_dec, q_pp, by, te, overlap, split, free_token, ce, qc)
    if memo is not None:
        memo[mkey] = out
    return out


def _held_out_run(rows, cls, get, q_dec, q_pp, by: str, te: float, overlap: float, split: bool = False,
                  free_token: bool = True, ce: float = 0.0, qc: tuple = ()) -> list[dict]:
    def key(r: Row) -> str:
        return getattr(r, by)

    crow = [r for r in rows if r.cls == cls]
    out = []
    for g in sorted({key(r) for r in crow}):
        train = [r for r in crow if key(r) != g]
        if not any(r.tg for r in train):
            continue
        k = fit_class(train, cls, get, q_dec, q_pp, te, overlap, split, free_token, ce, qc)
        for r in crow:
            if key(r) == g:
                out.append({"row": r, "tg_ratio": r.tg / predict_tg(r, k, get) if r.tg else None,
                            "pp_ratio": _pp_ratio(r, k, get)})
    return out


def summarize(ratios: list[float], low: float | None = None, high: float | None = None) -> dict:
    """Error figures of measured/predicted ratios: |predicted/measured - 1| in %, bias, worst, coverage."""
    if not ratios:
        return {"rows": 0}
    err = [abs(1 / x - 1) for x in ratios]
    out = {"rows": len(ratios), "median_abs_pct": round(100 * statistics.median(err), 1),
           "mean_abs_pct": round(100 * statistics.fmean(err), 1),
           "bias_pct": round(100 * (statistics.median([1 / x for x in ratios]) - 1), 1),
           "worst_pct": round(100 * max(err), 1)}
    if low is not None and high is not None:
        out["within_low_high_pct"] = round(100 * sum(low <= x <= high for x in ratios) / len(ratios), 1)
    return out


def _validate(rows, cls, get, q_dec, q_pp, k: ClassConstants, memo: dict | None = None,
              free_token: bool = True) -> tuple[dict, list[dict]]:
    te, ov, ce = k.thread_exp, k.overlap, k.core_exp
    sp = k.c_layer_no_graphs_s is not None or k.c_layer_old_builds_s is not None
    qc = rates_of(k.quant_cpu)
    lodo = _held_out(rows, cls, get, q_dec, q_pp, "device", te, ov, memo, sp, free_token, ce, qc)
    lomo = _held_out(rows, cls, get, q_dec, q_pp, "model_id", te, ov, memo, sp, free_token, ce, qc)
    val: dict[str, dict] = {}
    for name, h in (("leave_one_device_out", lodo), ("leave_one_model_out", lomo)):
        pp = [x["pp_ratio"] for x in h if x["pp_ratio"]]
        by_backend = {b: summarize([x["tg_ratio"] for x in h if x["tg_ratio"] and x["row"].backend == b],
                                   *k.decode_bounds(b))
                      for b in sorted({x["row"].backend for x in h})}
        val[name] = {"groups": len({(x["row"].device if name.endswith("device_out") else x["row"].model_id) for x in h}),
                     "decode": _summarize_by_backend([x for x in h if x["tg_ratio"]], k),
                     "prefill": summarize(pp, k.prefill_ratio_low, k.prefill_ratio_high),
                     "decode_by_backend": by_backend}
        if k.c_layer_old_builds_s is not None:  # the rows of current builds, the ones the planner predicts
            val[name]["decode_builds_2025_on"] = summarize(
                [x["tg_ratio"] for x in h if x["tg_ratio"] and not _old_metal_build(x["row"])], *k.decode_bounds("metal"))
    crow = [r for r in rows if r.cls == cls]
    val["train"] = {"decode": summarize([r.tg / predict_tg(r, k, get) for r in crow if r.tg]),
                    "prefill": summarize([x for r in crow if k.eff_pp and (x := _pp_ratio(r, k, get))])}
    return val, lodo


def held_out_decode_error(rows, get, q_dec, q_pp, te: float, overlap: float, cls: str = "cpu",
                          memo: dict | None = None, split: bool = False, free_token: bool = True,
                          by: str = "device", ce: float = 0.0, qc: tuple = ()) -> float:
    """Mean |log(measured/predicted)| of decode on devices (``by`` = "model_id": models) left out of the fit
    (the mean, not the median: with a few rows per group a median jumps when one row crosses it)."""
    h = _held_out(rows, cls, get, q_dec, q_pp, by, te, overlap, memo, split, free_token, ce, qc)
    return statistics.fmean(abs(np.log(x["tg_ratio"])) for x in h if x["tg_ratio"])


def rates_of(q_cpu: dict[str, float]) -> tuple:
    """The (float, sub-8-bit) candidate a q_cpu table was built from; () for none."""
    if not q_cpu:
        return ()
    return (q_cpu["F16"], q_cpu["Q4_0"])


CPU_RATES = ((),) + tuple((fl, lb) for fl in CPU_FLOAT_RATES for lb in CPU_LOWBIT_RATES)


def _pick_cpu_shape(rows, get, q_dec, q_pp, memo: dict | None = None,
                    overlaps: tuple[float, ...] | None = None, free_token: bool = True,
                    rates: tuple[tuple, ...] | None = None) -> tuple[float, float, float, tuple]:
    """How the CPU's per-layer cost grows with threads and with the speed of one core, how much memory and
    compute time overlap, and the per-weight decode work of the float and sub-8-bit types: the (thread
    exponent, overlap, core exponent, rates) among the candidates (overlap among ``overlaps``, default
    CPU_OVERLAPS; rates among ``rates``, default CPU_RATES) with the lowest leave-one-device-out decode error
    (with or without a per-token cost, ``free_token``)."""
    shapes = [(te, ov, ce, qc) for te in THREAD_EXPS for ov in (overlaps or CPU_OVERLAPS) for ce in CORE_EXPS
              for qc in (rates or CPU_RATES)]
    return min(shapes, key=lambda p: held_out_decode_error(rows, get, q_dec, q_pp, p[0], p[1], memo=memo,
                                                           free_token=free_token, ce=p[2], qc=p[3]))


def _pick_graph_split(rows, get, q_dec, q_pp, memo: dict | None = None, cls: str = "gpu") -> bool:
    """Whether some rows of the class get a fixed cost per layer unit of their own (``_own_layer_cost``): only
    when that lowers the leave-one-device-out decode error of the class (each held-out row predicted with the
    constant of its own kind). gpu: CUDA without CUDA graphs (GPUs before Ampere); on the shipped data it does
    not (README, Speed): the two pre-Ampere GPUs with many rows disagree (GTX 1050 Ti ~2x slower than
    predicted, RTX 2080 ~1.5x faster), so a constant fitted on one moves the other further away. metal: builds
    before 2025, whose per-layer cost is higher than what the 2025-2026 rows (the M2 Ultra's Qwen3 0.6B, the
    M4's Qwen3.5 sizes) show; the M1 Ultra's 2026 TinyLlama row is the exception (README, Speed)."""
    err = {sp: held_out_decode_error(rows, get, q_dec, q_pp, 0.0, 1.0, cls, memo, sp) for sp in (False, True)}
    return err[True] < err[False]


def _pick_token_cost(rows, cls: str, get, q_dec, q_pp, te: float, overlap: float, split: bool,
                     memo: dict | None = None, ce: float = 0.0, qc: tuple = ()) -> bool:
    """Whether the class fits a fixed cost per token (besides the one per layer unit): only where its rows span
    several models (``_several_models``; with one model the two cannot be told apart) and where that does not
    raise the leave-one-model-out decode error (mean |log(measured/predicted)|): the split between a cost per
    token and one per layer is what carries over to model sizes the fit has not seen. On the shipped data no
    class keeps it: GPU 0.2804 with and without (it came out at 0 while it was kept), CPU 0.2062 vs 0.2050,
    Metal 0.092 vs 0.072 (with the old-builds split; a per-token cost fitted on the LLaMA-2 7B sweep plus the
    other sizes predicts the small models slower still)."""
    def err(free: bool) -> float:
        return held_out_decode_error(rows, get, q_dec, q_pp, te, overlap, cls, memo, split, free, by="model_id", ce=ce,
                                     qc=qc)

    x = _features([r for r in rows if r.cls == cls and r.tg], get, q_dec, cpu_rates_table(qc, q_dec))
    return _several_models(x) and err(True) <= err(False)


MIN_BACKEND_ROWS = 20  # held-out rows a backend needs for low/high bounds of its own


def _ratios(h: list[dict], key: str, backend: str | None = None) -> list[float]:
    return [x[key] for x in h if x[key] and (backend is None or x["row"].backend == backend)]


def _wider(*splits: list[float]) -> tuple[float, float]:
    """The 10th-90th percentile band of each held-out split, the widest of them (always around 1)."""
    splits = tuple(s for s in splits if s) or ([],)
    return min(1.0, *(_q(s, 0.1) for s in splits)), max(1.0, *(_q(s, 0.9) for s in splits))


def _bounds_by_backend(lodo: list[dict], lomo: list[dict]) -> dict[str, list[float]]:
    """Per backend of a class with several (gpu: CUDA, Vulkan), the band of ``_wider`` over its own held-out
    measured/predicted, where it has MIN_BACKEND_ROWS rows; one backend alone keeps the class's bounds."""
    backends = {x["row"].backend for x in lodo if x["tg_ratio"]}
    if len(backends) < 2:
        return {}
    return {b: list(_wider(_ratios(lodo, "tg_ratio", b), _ratios(lomo, "tg_ratio", b))) for b in sorted(backends)
            if len(_ratios(lodo, "tg_ratio", b)) >= MIN_BACKEND_ROWS}


def _summarize_by_backend(h: list[dict], k: ClassConstants) -> dict:
    """``summarize`` of held-out decode ratios, each row judged against its own backend's low/high."""
    out = summarize([x["tg_ratio"] for x in h])
    if h:
        inside = [lo <= x["tg_ratio"] <= hi for x in h for lo, hi in [k.decode_bounds(x["row"].backend)]]
        out["within_low_high_pct"] = round(100 * sum(inside) / len(inside), 1)
    return out


def _q(xs: list[float], p: float) -> float:
    return round(float(np.quantile(xs, p)), 3) if xs else 1.0


# Classes whose one-model calibration is shrunk toward the planner (estimate/shrink.py): CPU, where it scales the
# planner's prediction and keeps the planner's own size dependence, so the planner's held-out deviations describe
# what one measurement carries over. On GPUs (CUDA/Vulkan, and Metal) the one-model calibration also replaces the
# size dependence with a prior fixed cost per layer, whose error those deviations do not describe, and Metal's ten
# chips show no far-off device, so its split would pull a chip 13% off (the M2 Ultra) most of the way back:
# benchmarks/calibration_lomo.py --unseen measured the one-model error of Metal 4.9% -> 5.9% with the split, of CPU 8.9% -> 8.3%.
# There the measured ratio is carried over whole.
SHRINK_CLASSES = ("cpu",)


def device_prior_of(held_out: list[dict], exclude: str | None = None):
    """The device/model split of the decode deviations of leave-one-device-out predictions (``_held_out``
    entries), without the device ``exclude``."""
    from slmplan.estimate.shrink import fit_device_prior

    per: dict[str, dict[str, list[float]]] = {}
    for x in held_out:
        r = x["row"]
        if x["tg_ratio"] and r.device != exclude:
            per.setdefault(r.device, {}).setdefault(r.model_id, []).append(math.log(x["tg_ratio"]))
    return fit_device_prior({d: {m: statistics.fmean(v) for m, v in ms.items()} for d, ms in per.items()})


def fit_all() -> dict:
    get = Facts()
    rows = load_rows(get)
    q_dec = fit_quant_decode(get)
    classes: dict[str, ClassConstants] = {}
    validation: dict[str, dict] = {}
    memo: dict = {}
    token_cost: dict[str, bool] = {}
    for cls in ("metal", "gpu", "cpu"):
        q_pp = fit_quant_prefill(rows, cls)
        te, ov, ce, qc = _pick_cpu_shape(rows, get, q_dec, q_pp, memo) if cls == "cpu" else (0.0, 1.0, 0.0, ())
        sp = cls in ("gpu", "metal") and _pick_graph_split(rows, get, q_dec, q_pp, memo, cls)
        ft = token_cost[cls] = _pick_token_cost(rows, cls, get, q_dec, q_pp, te, ov, sp, memo, ce, qc)
        if cls == "cpu" and not ft:  # the shape again, for the model without a per-token cost
            te, ov, ce, qc = _pick_cpu_shape(rows, get, q_dec, q_pp, memo, free_token=False)
        k = fit_class(rows, cls, get, q_dec, q_pp, te, ov, sp, ft, ce, qc)
        lodo = _held_out(rows, cls, get, q_dec, q_pp, "device", te, ov, memo, sp, ft, ce, qc)
        lomo = _held_out(rows, cls, get, q_dec, q_pp, "model_id", te, ov, memo, sp, ft, ce, qc)
        # bounds: where the measured value fell on devices, and on models, the fit had not seen: the
        # 10th-90th percentile of each split, the wider of the two (a plan is for a device or a model, or
        # both, not in the data; pooling them let the narrower split shrink the other's coverage)
        lo_tg, hi_tg = _wider(_ratios(lodo, "tg_ratio"), _ratios(lomo, "tg_ratio"))
        lo_pp, hi_pp = _wider(_ratios(lodo, "pp_ratio"), _ratios(lomo, "pp_ratio"))
        k = replace(k, decode_ratio_low=lo_tg, decode_ratio_high=hi_tg, prefill_ratio_low=lo_pp,
                    prefill_ratio_high=hi_pp, decode_ratio_by_backend=_bounds_by_backend(lodo, lomo))
        if k.eff_pp is None and "metal" in classes:
            k = _borrow_prefill(k, classes["metal"])
        elif k.eff_pp is not None and len({r.device for r in rows if r.cls == cls and r.pp}) < 2:
            k = _one_device_prefill(k)
        if cls in SHRINK_CLASSES and (dp := device_prior_of(lodo)):
            k = replace(k, device_prior=dp.to_dict())
        validation[cls], _ = _validate(rows, cls, get, q_dec, q_pp, k, memo, ft)
        classes[cls] = k
    sc = SpeedConstants(
        classes=classes, version=2,
        method=("per-type kernel throughputs from same-device quant pairs and the Llama 3.1 8B quant sweep; per class, "
                "grid search minimising the mean squared log error of decode tok/s (eta_bw, kappa, c_token, c_layer; on CPU "
                "the thread exponent, the memory/compute overlap and the per-weight decode work of the float and sub-8-bit types "
                "(relative to Q8_0) chosen by leave-one-device-out error (a per-layer cost in cycles of one "
                "core, the core-speed exponent, is fixed at 0: fit.CORE_EXPS); c_token only where the "
                "rows span several models and it does not raise the leave-one-model-out error); "
                "prefill efficiency = median measured/predicted; low/high = 10th/90th percentile of measured/predicted "
                "held out, the wider of leave-one-device-out and leave-one-model-out; a class whose prefill rows come from one device (gpu: a Jetson Orin "
                "Nano, CUDA) has bounds x/÷2 around its efficiency; device_prior (cpu): the leave-one-device-out decode deviations split "
                "into the device's and the model's (estimate/shrink.py), which one-model calibration uses"),
        extra={"validation": validation, "c_token_fitted": token_cost, "rows": {c: sum(r.cls == c for r in rows) for c in ("metal", "gpu", "cpu")}})
    return _rounded(sc.to_dict())


def _rounded(x):
    if isinstance(x, float):
        return float(f"{x:.6g}")
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x
