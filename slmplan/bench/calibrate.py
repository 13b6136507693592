"""`bench --calibrate`: fit the speed model's constants to this machine.

Each calibrating benchmark stores its measurements (with the prediction of the *shipped* constants)
in ``<cache>/local_measurements.json``; the local constants are then refitted from all of them:

- decode: every time constant of the CPU class is scaled by r_tg = median(measured / predicted) over
  the stored tg tests (eta_bw and kappa multiplied, c_layer divided), which multiplies every decode
  prediction by r_tg;
- prefill: eff_pp is multiplied by r_pp = median over the stored pp tests;
- low/high bounds: the spread of the stored ratios around the median, widened by 5 points (a single
  measurement gets +-10%).

The result goes to ``<cache>/local_speed_model.json``, which ``fit/plan --device local`` and later
benchmarks' residuals use. It is a local calibration, labelled as such wherever it is used.
"""

from __future__ import annotations

import copy
import json
import statistics
import time

from slmplan.calibration_store import load_measurements, local_constants_path, measurements_path  # noqa: F401
from slmplan.estimate.speed import load_constants
from slmplan.errors import SlmplanError
from slmplan.fileio import write_atomic
from slmplan.schema.bench import BenchRun


def _load_rows() -> list[dict]:
    return load_measurements()  # malformed rows dropped (and named), never a crash after the run


def _atomic_json(path, data) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(data, indent=1, sort_keys=True))
    except (OSError, SlmplanError) as e:  # after a whole benchmark: warn, never lose its results
        import sys

        why = e.message if isinstance(e, SlmplanError) else (e.strerror or str(e))
        sys.stderr.write(f"Warning: could not store the calibration in {path} ({why}); set SLMPLAN_CACHE_DIR "
                         "to a writable folder.\n")


def record(run: BenchRun, shipped_predictions: dict[str, float | None]) -> list[dict]:
    """Add this run's complete tests to the stored measurements (replacing older ones of the same test)."""
    rows = _load_rows()
    new = []
    for r in run.results:
        pred = shipped_predictions.get(r.test)
        if not r.complete or not pred or not r.samples:
            continue
        new.append({"model_path": run.model_path, "model": run.model, "quant": run.quant, "test": r.test,
                    "kind": "tg" if r.n_gen > 0 and r.n_prompt == 0 else "pp", "threads": run.threads,
                    "measured_tokens_per_s": r.tokens_per_s_median, "shipped_predicted_tokens_per_s": pred,
                    "when": time.strftime("%Y-%m-%d %H:%M")})
    keys = {(n["model_path"], n["test"], n["threads"]) for n in new}
    rows = [x for x in rows if (x.get("model_path"), x.get("test"), x.get("threads")) not in keys] + new
    _atomic_json(measurements_path(), rows)
    return rows


def _bounds(ratios: list[float], med: float) -> tuple[float, float]:
    if len(ratios) < 2:
        return 0.9, 1.1
    rel = [r / med for r in ratios]
    return round(min(1.0, min(rel)) - 0.05, 3), round(max(1.0, max(rel)) + 0.05, 3)


def fit_local(rows: list[dict]) -> dict | None:
    """Local constants from stored measurements, or None when there is nothing to fit."""
    tg = [r["measured_tokens_per_s"] / r["shipped_predicted_tokens_per_s"] for r in rows if r["kind"] == "tg"]
    pp = [r["measured_tokens_per_s"] / r["shipped_predicted_tokens_per_s"] for r in rows if r["kind"] == "pp"]
    if not tg and not pp:
        return None
    c = copy.deepcopy(load_constants())
    k = c["classes"]["cpu"]
    fit: dict = {"rows": len(rows), "models": sorted({r["model"] for r in rows})}
    if tg:
        r_tg = statistics.median(tg)
        k["eta_bw"] *= r_tg
        if k.get("kappa"):
            k["kappa"] *= r_tg
        k["c_layer_s"] /= r_tg
        k["decode_ratio_low"], k["decode_ratio_high"] = _bounds(tg, r_tg)
        fit["decode_scale"] = round(r_tg, 4)
        fit["decode_rows"] = len(tg)
    if pp:
        r_pp = statistics.median(pp)
        k["eff_pp"] *= r_pp
        k["prefill_ratio_low"], k["prefill_ratio_high"] = _bounds(pp, r_pp)
        fit["prefill_scale"] = round(r_pp, 4)
        fit["prefill_rows"] = len(pp)
    c["method"] = ("local calibration: the shipped CPU constants scaled by the median measured/predicted ratio of "
                   "this machine's benchmarks (slmplan bench --calibrate)")
    c["local_fit"] = fit
    c["fitted_at"] = time.strftime("%Y-%m-%d %H:%M")
    return c


def calibrate(run: BenchRun, shipped_predictions: dict[str, float | None]) -> dict | None:
    rows = record(run, shipped_predictions)
    c = fit_local(rows)
    if c is not None:
        _atomic_json(local_constants_path(), c)
    return c
