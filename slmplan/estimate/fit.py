"""Fit the speed model's constants on the published measurements shipped in data/calibration.

Deterministic (grid search in log space, no randomness). Validation is done on devices the fit
never saw: a fixed hold-out set (the shipped constants exclude them), and leave-one-device-out
cross-validation over all devices. ``benchmarks/fit_speed_model.py`` regenerates
``data/speed_model.json``; ``tests/test_speed_fit.py`` checks the shipped file matches this code.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slmplan.catalog import facts, get_model, load_catalog
from slmplan.estimate.speed import Hardware, decode_time_s, flops_per_token

CAL = Path(__file__).resolve().parent.parent / "data" / "calibration"

# Calibration model names -> catalog ids (same architecture; fine-tunes share the shapes).
MODEL_MAP = [
    ("TinyLlama", "tinyllama-1.1b"), ("tinyllama", "tinyllama-1.1b"),
    ("Llama-3.2-3B", "llama-3.2-3b"), ("llama3.2:3b", "llama-3.2-3b"),
    ("Llama-3.2-1B", "llama-3.2-1b"), ("Llama 3.1 8B", "llama-3.1-8b"), ("llama3.1:8b", "llama-3.1-8b"),
    ("Mistral 7B", "mistral-7b"), ("LLaMA 7B", "llama-2-7b"), ("Qwen3-1.7B", "qwen3-1.7b"),
]
# Apple GPU FP32 per core: M1 8-core 2.6 TFLOPS, M2 10-core 3.6 TFLOPS (Apple announcements).
APPLE_TFLOPS_PER_CORE = {"M1": 2.6 / 8, "M2": 3.6 / 10}
HOLDOUT = {"gpu": {"M1 Max", "M2 Pro"}, "cpu": {"Gaming PC (i9-14900K, 6400 MT/s RAM, overclocked)", "Samsung Galaxy S23"}}


@dataclass
class Row:
    cls: str
    device: str
    model_id: str
    quant: str
    bandwidth_gbs: float
    cpu_gflops: float | None
    gpu_tflops: float | None
    tg: float | None
    pp: float | None
    pp_tokens: int
    source: str


def _model_id(name: str) -> str | None:
    for key, mid in MODEL_MAP:
        if key in name:
            return mid
    return None


def _quant(q: str) -> str | None:
    q = q.split(" ")[0].upper()
    return q if q in {"Q4_K_M", "Q4_0", "Q8_0", "F16", "Q6_K", "Q5_K_M", "F32", "BF16"} else None


def load_rows() -> list[Row]:
    rows: list[Row] = []
    for r in csv.DictReader(open(CAL / "apple_m1_m2_llama2_7b.csv")):
        fam = "M2" if r["chip"].startswith("M2") else "M1"
        rows.append(Row("gpu", r["chip"], "llama-2-7b", r["quant"], float(r["memory_bandwidth_gbs"]), None,
                        int(r["gpu_cores"]) * APPLE_TFLOPS_PER_CORE[fam], float(r["tg128_tokens_per_s"]),
                        float(r["pp512_tokens_per_s"]), 512, r["source"]))
    peaks = {r["device"]: float(r["cpu_gflops"]) for r in csv.DictReader(open(CAL / "cpu_peaks.csv"))}
    for r in csv.DictReader(open(CAL / "edge_cpu.csv")):
        rt = r["runtime"]
        if "llamafile" in rt or "yzma" in rt or not r["memory_bandwidth_gbs"]:
            continue  # other kernels, or prompt+generation mixed together
        mid, q = _model_id(r["model"]), _quant(r["quant"])
        if not mid or not q or r["device"] not in peaks:
            continue
        tg = float(r["tg_tokens_per_s"]) if r["tg_tokens_per_s"] else None
        pp = float(r["pp_tokens_per_s"]) if r["pp_tokens_per_s"] and r["pp_test"].startswith(("pp", "prompt tok")) else None
        rows.append(Row("cpu", r["device"], mid, q, float(r["memory_bandwidth_gbs"]), peaks[r["device"]], None,
                        tg, pp, 512, r["source"]))
    return rows


def _facts_cache():
    cat = load_catalog()
    cache: dict[str, object] = {}

    def get(mid: str):
        if mid not in cache:
            cache[mid] = facts(get_model(cat, mid))
        return cache[mid]
    return get


def _features(rows: list[Row], get) -> dict[str, np.ndarray]:
    """Per-row inputs of the decode formula (the same quantities decode_time_s computes)."""
    from slmplan.estimate.speed import decode_bytes_per_token

    B, FL, L, BW, G, TG = [], [], [], [], [], []
    for r in rows:
        f = get(r.model_id)
        B.append(decode_bytes_per_token(f, r.quant, 64))  # tg128: mean depth 64
        FL.append(flops_per_token(f, r.quant, 64))
        L.append(f.n_layers)
        BW.append(r.bandwidth_gbs * 1e9)
        G.append((r.cpu_gflops or 0) * 1e9)
        TG.append(r.tg or np.nan)
    return {k: np.array(v, dtype=float) for k, v in zip("B FL L BW G TG".split(), (B, FL, L, BW, G, TG))}


def _tg_vec(x: dict, k: dict) -> np.ndarray:
    t = x["B"] / (k["eta_bw"] * x["BW"])
    if k.get("kappa"):
        t = np.maximum(t, np.where(x["G"] > 0, x["FL"] / (k["kappa"] * np.where(x["G"] > 0, x["G"], 1)), 0))
    return 1.0 / (t + k["c_layer_s"] * x["L"])


def _predict_tg(row: Row, k: dict, get) -> float:
    f = get(row.model_id)
    hw = Hardware("cpu" if row.cls == "cpu" else "metal", row.bandwidth_gbs, row.cpu_gflops, row.gpu_tflops)
    t, _ = decode_time_s(f, row.quant, hw, 64, k)  # tg128: mean depth 64
    return 1.0 / t


def _fit_decode(rows: list[Row], cls: str, get) -> dict:
    rows = [r for r in rows if r.tg]
    x = _features(rows, get)
    etas = np.linspace(0.3, 1.0, 36)
    kappas = np.geomspace(0.02, 1.0, 40) if cls == "cpu" else [None]
    cs = np.concatenate([[0.0], np.geomspace(1e-6, 5e-4, 40)])
    best = None
    for eta in etas:
        for kappa in kappas:
            for c in cs:
                k = {"eta_bw": float(eta), "kappa": None if kappa is None else float(kappa), "c_layer_s": float(c)}
                err = float(np.mean(np.log(_tg_vec(x, k) / x["TG"]) ** 2))
                if best is None or err < best[0]:
                    best = (err, k)
    return best[1]


def _fit_prefill(rows: list[Row], get) -> float | None:
    ratios = [r.pp / _pp_pred(r, 1.0, get) for r in rows if r.pp]
    return float(statistics.median(ratios)) if ratios else None


def _pp_pred(r: Row, eff: float, get) -> float:
    f = get(r.model_id)
    flops = r.gpu_tflops * 1e12 if r.cls == "gpu" else r.cpu_gflops * 1e9
    return eff * flops / flops_per_token(f, r.quant, r.pp_tokens // 2)


def fit_class(rows: list[Row], cls: str, get) -> dict:
    k = _fit_decode(rows, cls, get)
    k["eff_pp"] = _fit_prefill(rows, get)
    ratios = sorted(r.tg / _predict_tg(r, k, get) for r in rows if r.tg)
    k["decode_ratio_low"] = round(float(np.quantile(ratios, 0.1)), 3)
    k["decode_ratio_high"] = round(float(np.quantile(ratios, 0.9)), 3)
    pr = sorted(r.pp / _pp_pred(r, k["eff_pp"], get) for r in rows if r.pp)
    if pr:
        k["prefill_ratio_low"] = round(float(np.quantile(pr, 0.1)), 3)
        k["prefill_ratio_high"] = round(float(np.quantile(pr, 0.9)), 3)
    k["n_rows"] = len(rows)
    return k


def _errors(rows: list[Row], k: dict, get) -> dict:
    dec = [abs(_predict_tg(r, k, get) / r.tg - 1) for r in rows if r.tg]
    pre = [abs(_pp_pred(r, k["eff_pp"], get) / r.pp - 1) for r in rows if r.pp and k.get("eff_pp")]
    out = {"decode_rows": len(dec), "prefill_rows": len(pre)}
    if dec:
        out["decode_median_abs_pct"] = round(100 * statistics.median(dec), 1)
        out["decode_mean_abs_pct"] = round(100 * statistics.fmean(dec), 1)
    if pre:
        out["prefill_median_abs_pct"] = round(100 * statistics.median(pre), 1)
    return out


def fit_all() -> dict:
    rows = load_rows()
    get = _facts_cache()
    result = {"version": 1, "classes": {}, "validation": {}, "holdout_devices": {c: sorted(v) for c, v in HOLDOUT.items()},
              "method": "grid search minimising mean squared log error of decode tok/s; prefill efficiency = median ratio; "
                        "low/high = 10th/90th percentile of measured/predicted on the training rows"}
    for cls in ("gpu", "cpu"):
        crow = [r for r in rows if r.cls == cls]
        train = [r for r in crow if r.device not in HOLDOUT[cls]]
        held = [r for r in crow if r.device in HOLDOUT[cls]]
        k = fit_class(train, cls, get)
        result["classes"][cls] = {key: (round(v, 8) if isinstance(v, float) else v) for key, v in k.items()}
        val = {"train": _errors(train, k, get), "holdout": _errors(held, k, get)}
        # leave-one-device-out over every device of the class
        lodo_dec, lodo_pre = [], []
        for dev in sorted({r.device for r in crow}):
            kk = fit_class([r for r in crow if r.device != dev], cls, get)
            for r in crow:
                if r.device == dev and r.tg:
                    lodo_dec.append(abs(_predict_tg(r, kk, get) / r.tg - 1))
                if r.device == dev and r.pp and kk.get("eff_pp"):
                    lodo_pre.append(abs(_pp_pred(r, kk["eff_pp"], get) / r.pp - 1))
        val["leave_one_device_out"] = {
            "devices": len({r.device for r in crow}), "decode_rows": len(lodo_dec),
            "decode_median_abs_pct": round(100 * statistics.median(lodo_dec), 1),
            "decode_mean_abs_pct": round(100 * statistics.fmean(lodo_dec), 1),
            "prefill_median_abs_pct": round(100 * statistics.median(lodo_pre), 1) if lodo_pre else None,
        }
        result["validation"][cls] = val
    return result
