"""estimate/shrink.py: the device/model split of one measurement's deviation from the planner."""

import math
import random

import pytest

from slmplan.estimate.shrink import DevicePrior, device_deviation, fit_device_prior


def _synthetic(seed=7, n_dev=400, sd_model=0.08, close=0.12, far=0.8, share=0.8):
    rng = random.Random(seed)
    out = {}
    for i in range(n_dev):
        d = rng.gauss(0, close if rng.random() < share else far)
        out[f"dev{i}"] = {f"m{j}": d + rng.gauss(0, sd_model) for j in range(rng.choice((1, 2, 3, 5)))}
    return out


def test_em_recovers_a_known_mixture():
    p = fit_device_prior(_synthetic())
    assert p.model_sd == pytest.approx(0.08, rel=0.1)
    assert p.close_sd == pytest.approx(0.12, rel=0.2) and p.far_sd == pytest.approx(0.8, rel=0.25)
    assert p.close_share == pytest.approx(0.8, abs=0.08) and p.devices == 400


def test_too_little_data_gives_no_prior():
    assert fit_device_prior({"a": {"m": 0.1}, "b": {"m": -0.2}, "c": {"m": 0.0}}) is None  # no device with 2 models
    assert fit_device_prior({"a": {"m": 0.1, "n": 0.2}, "b": {"m": -0.2}}) is None  # two devices


def test_posterior_shrinks_small_deviations_and_keeps_large_ones():
    p = DevicePrior(model_sd=0.1, close_sd=0.15, far_sd=1.0, close_share=0.8, devices=20, devices_several_models=8)
    small, large = device_deviation(0.1, p), device_deviation(1.5, p)
    w_close = 0.15 ** 2 / (0.15 ** 2 + 0.1 ** 2)
    assert small == pytest.approx(0.1 * w_close, rel=0.05)  # a small deviation: the close component's shrinkage
    assert large == pytest.approx(1.5 * 1.0 / (1.0 + 0.01), rel=0.01)  # far off: read as the device's
    assert device_deviation(-0.1, p) == pytest.approx(-small)  # symmetric
    # more models measured: less of the deviation is the models' own
    assert abs(device_deviation(0.1, p, n_models=2)) > abs(small)
    assert device_deviation(0.0, p) == 0.0
    assert math.isfinite(device_deviation(40.0, p))  # no overflow/underflow trouble far out
