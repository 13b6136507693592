"""Candidate terms of the CPU decode model, each judged by held-out error on slmplan/data/calibration.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/cpu_decode_terms.py

Every candidate is fitted with its own small optimizer (pattern search in log space from three
starts, mean squared log error, deterministic) and scored leave-one-device-out and
leave-one-model-out; only the rows of this table are comparable with each other (the shipped fit,
``slmplan.estimate.fit``, uses a grid plus refinement and gives slightly different numbers).
Candidates, on top of the fixed costs c_token + c_layer x layers x (threads/4)^0.5:

- roofline: t = max(t_mem, t_cpu) (the model before 2026-12);
- serial: t = t_mem + t_cpu (overlap 0, what the shipped fit chose);
- core bandwidth: the bandwidth the cores llama.cpp uses can draw, min(eta x BW, beta x peak FLOPS);
- LPDDR: a separate eta for LPDDR memory (phones, SBCs, Apple; from each device's bandwidth basis);
- float compute: F16/BF16/F32 decode compute at a fitted share of the int8-dot types' rate;
- repack decode: builds that repack Q4_0/Q4_K (2025) decode those types' compute faster by a fitted factor;
- without the Core 2 Quad: the Optiplex 780 rows left out (Ollama's no-AVX runner has no vector
  kernels, ollama/ollama#2205), a sensitivity check only; the shipped fit keeps them.
"""

import csv
import sys

import numpy as np

from slmplan.estimate.calib_rows import CAL
from slmplan.estimate.fit import THREAD_REF, Facts, load_rows
from slmplan.estimate.speed import load_constants

NAMES = ("eta", "eta_lp", "beta", "kappa", "c_token", "c_layer", "float", "repack")


def memory_is_lpddr() -> dict[str, bool]:
    with open(CAL / "edge_cpu.csv", newline="") as fh:
        return {r["device"]: "LPDDR" in r["bandwidth_basis"].upper() or "Apple M" in r["soc"] for r in csv.DictReader(fh)}


def features(rows, get, q_dec):
    lp = memory_is_lpddr()
    cols = {k: [] for k in ("B", "FL", "L", "BW", "G", "TG", "TH", "LP", "FF", "RP")}
    for r in rows:
        b, fl, n_layers = get.decode_work(r.model_id, r.quant, r.tg_depth, q_dec)
        for k, v in zip(cols, (b, fl, n_layers, r.bandwidth_gbs * 1e9, r.cpu_gflops * 1e9, r.tg, r.threads or THREAD_REF,
                               lp.get(r.device, False), r.quant in ("F16", "BF16", "F32"), r.repack)):
            cols[k].append(v)
    return {k: np.array(v, dtype=float) for k, v in cols.items()}


def predict(p, x, opt):
    v = np.exp(p)
    eta = np.where(x["LP"] > 0, min(v[1], 1.0), min(v[0], 1.0)) if opt.get("lpddr") else min(v[0], 1.0)
    bw = eta * x["BW"]
    if opt.get("core_bw"):
        bw = np.minimum(bw, v[2] * x["G"])
    t_mem = x["B"] / bw
    t_cpu = x["FL"] / (min(v[3], 1.0) * x["G"])
    if opt.get("float"):
        t_cpu = t_cpu * np.where(x["FF"] > 0, 1 / min(v[6], 1.0), 1.0)
    if opt.get("repack"):
        t_cpu = t_cpu * np.where(x["RP"] > 0, 1 / v[7], 1.0)
    ov = opt.get("overlap", 0.0)
    t = np.maximum(t_mem, t_cpu) + (1 - ov) * np.minimum(t_mem, t_cpu)
    return 1 / (t + v[4] + v[5] * x["L"] * (x["TH"] / THREAD_REF) ** 0.5)


def fit(x, opt):
    free = [True, bool(opt.get("lpddr")), bool(opt.get("core_bw")), True, True, True, bool(opt.get("float")),
            bool(opt.get("repack"))]

    def loss(p):
        return float(np.mean((np.log(predict(p, x, opt)) - np.log(x["TG"])) ** 2))

    best = None
    for start in ((0.8, 0.35, 0.1, 0.15, 3e-4, 9e-5, 1.0, 1.0), (0.6, 0.25, 0.05, 0.3, 1e-5, 3e-5, 0.6, 1.3),
                  (0.9, 0.5, 0.2, 0.08, 1e-3, 1e-5, 0.4, 1.8)):
        p = np.log(start)
        f, step = loss(p), 0.5
        while step > 1e-3:
            moved = False
            for i in (i for i in range(len(p)) if free[i]):
                for d in (step, -step):
                    q = p.copy()
                    q[i] = max(q[i] + d, np.log(1e-8))
                    fq = loss(q)
                    if fq < f - 1e-12:
                        p, f, moved = q, fq, True
            if not moved:
                step /= 2
        if best is None or f < best[0]:
            best = (f, p)
    return best[1]


def held_out(x, groups, opt):
    ratio = np.empty(len(groups))
    for g in sorted(set(groups)):
        tr, te = groups != g, groups == g
        p = fit({k: v[tr] for k, v in x.items()}, opt)
        ratio[te] = x["TG"][te] / predict(p, {k: v[te] for k, v in x.items()}, opt)
    return ratio


def summary(ratio):
    err = np.abs(1 / ratio - 1)
    return (f"{100 * np.median(err):.1f}% | {100 * np.mean(err):.1f}% | {100 * (np.median(1 / ratio) - 1):+.1f}% | "
            f"{100 * err.max():.0f}%")


def main() -> int:
    get = Facts()
    q_dec = load_constants().classes["cpu"].quant_decode
    all_rows = [r for r in load_rows(get) if r.cls == "cpu" and r.tg]
    cases = [("roofline, max(t_mem, t_cpu)", {"overlap": 1.0}, None), ("serial, t_mem + t_cpu", {}, None),
             ("serial + core bandwidth", {"core_bw": 1}, None), ("serial + LPDDR eta", {"lpddr": 1}, None),
             ("serial + float compute", {"float": 1}, None), ("serial + repack decode", {"repack": 1}, None),
             ("roofline + LPDDR eta", {"overlap": 1.0, "lpddr": 1}, None),
             ("roofline + core bandwidth", {"overlap": 1.0, "core_bw": 1}, None),
             ("roofline, without the Core 2 Quad", {"overlap": 1.0}, "Dell Optiplex 780"),
             ("serial, without the Core 2 Quad", {}, "Dell Optiplex 780"),
             ("roofline + LPDDR eta, without the Core 2 Quad", {"overlap": 1.0, "lpddr": 1}, "Dell Optiplex 780")]
    print("| candidate | rows | LODO median | mean | bias | worst | LOMO median | mean | bias | worst |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, opt, drop in cases:
        rows = [r for r in all_rows if r.device != drop]
        x = features(rows, get, q_dec)
        lodo = held_out(x, np.array([r.device for r in rows]), opt)
        lomo = held_out(x, np.array([r.model_id for r in rows]), opt)
        print(f"| {name} | {len(rows)} | {summary(lodo)} | {summary(lomo)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
