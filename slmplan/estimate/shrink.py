"""How much one device's measurement says about the device, and how much about the measured model.

A decode measurement of one model on a device is off the planner's prediction by log(measured/predicted) =
d + e: d, the device's own deviation (every model on it shares it), and e, the measured model's (another model
on the same device has its own). Calibrating on one model and carrying the whole ratio over to every other
model adds that model's e to all of them, which is worse than no calibration on devices the planner already
predicts well (benchmarks/calibration_lomo.py: the phones and Raspberry Pis).

This module estimates d from the measurement: the posterior mean of d under a prior learned from the planner's
own held-out residuals (leave one device out, per backend class):

- e ~ Normal(0, sigma^2): sigma = the pooled spread of the per-model deviations within a device (devices with
  2+ models); n models measured together divide its variance by n;
- d ~ p Normal(0, tau1^2) + (1 - p) Normal(0, tau2^2): most devices close to the planner, a few far from it
  (an old Core 2, a Mac on one thread); fitted by EM on the devices' mean deviations, each with its own
  sampling noise sigma^2 / n_models.

A small deviation is then mostly read as the model's (shrunk toward the planner), a large one as the device's
(kept): the heavy second component stops the shrinkage from pulling a device that is really far off back
toward a wrong prediction.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass

EM_ITERATIONS = 500
MIN_VAR = 1e-4  # (1% in log terms)^2: a component's variance is never fitted below it


@dataclass(frozen=True)
class DevicePrior:
    model_sd: float  # sigma, log units
    close_sd: float  # tau1
    far_sd: float  # tau2
    close_share: float  # p
    devices: int
    devices_several_models: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> DevicePrior | None:
        return cls(**d) if d else None


def _normal_pdf(x: float, var: float) -> float:
    return math.exp(-x * x / (2 * var)) / math.sqrt(2 * math.pi * var)


def fit_device_prior(per_device: dict[str, dict[str, float]]) -> DevicePrior | None:
    """``per_device``: device -> model -> log(measured/predicted) held out (mean over a model's rows).
    None when no device has two models (sigma cannot be told) or fewer than three devices."""
    within = [(statistics.variance(list(m.values())), len(m)) for m in per_device.values() if len(m) >= 2]
    dof = sum(n - 1 for _, n in within)
    if not within or dof == 0 or len(per_device) < 3:
        return None
    s2 = max(MIN_VAR, sum(v * (n - 1) for v, n in within) / dof)
    ds = [(statistics.fmean(m.values()), len(m)) for m in per_device.values()]
    # EM for a two-component zero-mean scale mixture, each observation with its own extra variance s2 / n
    t1 = max(MIN_VAR, statistics.median(d * d for d, _ in ds))
    t2 = max(t1, statistics.fmean(d * d for d, _ in ds))
    p = 0.5
    for _ in range(EM_ITERATIONS):
        g = []
        for d, n in ds:
            a, b = p * _normal_pdf(d, t1 + s2 / n), (1 - p) * _normal_pdf(d, t2 + s2 / n)
            g.append(a / (a + b) if a + b > 0 else 0.0)
        p = min(0.95, max(0.05, statistics.fmean(g)))
        # variance of each component: weighted mean of d^2 less the sampling noise (a moment step of EM)
        w1, w2 = sum(g), sum(1 - x for x in g)
        t1 = max(MIN_VAR, sum(x * (d * d - s2 / n) for x, (d, n) in zip(g, ds)) / w1) if w1 > 0 else MIN_VAR
        t2 = max(t1, sum((1 - x) * (d * d - s2 / n) for x, (d, n) in zip(g, ds)) / w2) if w2 > 0 else t1
    return DevicePrior(model_sd=round(math.sqrt(s2), 4), close_sd=round(math.sqrt(t1), 4), far_sd=round(math.sqrt(t2), 4),
                       close_share=round(p, 3), devices=len(ds), devices_several_models=len(within))


def device_deviation(r: float, prior: DevicePrior, n_models: int = 1) -> float:
    """Posterior mean of the device's deviation d given the measured log ratio ``r`` of ``n_models`` models."""
    s2 = prior.model_sd ** 2 / max(1, n_models)
    v1, v2 = prior.close_sd ** 2 + s2, prior.far_sd ** 2 + s2
    a, b = prior.close_share * _normal_pdf(r, v1), (1 - prior.close_share) * _normal_pdf(r, v2)
    g = a / (a + b) if a + b > 0 else 0.0  # the share of "a device close to the planner"
    return r * (g * prior.close_sd ** 2 / v1 + (1 - g) * prior.far_sd ** 2 / v2)
