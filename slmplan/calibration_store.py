"""Where 'slmplan bench --calibrate' keeps the local machine's fitted speed constants and the
measurements they were fitted on. A file that is not what slmplan wrote (edited by hand, cut off
by a full disk) is named on stderr, set aside and rebuilt, never a crash on every later run."""

from __future__ import annotations

import json
import math

from slmplan.fileio import read_state, set_aside
from slmplan.localdevice import cache_dir


def local_constants_path():
    return cache_dir() / "local_speed_model.json"


def measurements_path():
    return cache_dir() / "local_measurements.json"


def _load_json(path):
    raw = read_state(path)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError as e:  # also UnicodeDecodeError
        set_aside(path, f"not JSON: {type(e).__name__}")
        return None


def _numbers_ok(x, depth: int = 0, signed: bool = False) -> bool:
    """Every number finite (json.loads accepts NaN and Infinity) and, unless ``signed``, not negative."""
    if depth > 20:
        return False
    if isinstance(x, dict):
        return all(_numbers_ok(v, depth + 1, signed) for v in x.values())
    if isinstance(x, list):
        return all(_numbers_ok(v, depth + 1, signed) for v in x)
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return math.isfinite(x) and (signed or x >= 0)
    return True


def load_local_constants():
    """The local calibration as ``SpeedConstants``, or None when there is none; a file that is not one
    is set aside (named on stderr) so the next --calibrate writes it again."""
    from slmplan.estimate.speed_constants import SpeedConstants

    path = local_constants_path()
    c = _load_json(path)
    if c is None:
        return None
    if not (isinstance(c, dict) and isinstance(c.get("classes"), dict)
            and all(isinstance(k, dict) for k in c["classes"].values())
            # the constants are rates and times (never negative); the validation notes keep signed biases
            and _numbers_ok(c["classes"]) and _numbers_ok(c, signed=True)):
        set_aside(path, "not a speed model (a 'classes' object with finite, non-negative constants)")
        return None
    try:
        return SpeedConstants.from_dict(c)
    except (ValueError, KeyError, TypeError) as e:
        set_aside(path, f"not a speed model of this slmplan version ({type(e).__name__})")
        return None


def _row_ok(r) -> bool:
    def pos(v) -> bool:
        return type(v) in (int, float) and math.isfinite(v) and 0 < v < 1e9

    return (isinstance(r, dict) and isinstance(r.get("model_path"), str) and isinstance(r.get("test"), str)
            and isinstance(r.get("model"), str) and r.get("kind") in ("tg", "pp")
            and type(r.get("threads")) is int and pos(r.get("measured_tokens_per_s"))
            and pos(r.get("shipped_predicted_tokens_per_s")))


def load_measurements() -> list[dict]:
    """The stored calibration measurements; malformed rows are dropped (the file set aside, so the
    next --calibrate writes it again from the good rows)."""
    path = measurements_path()
    rows = _load_json(path)
    if rows is None:
        return []
    if not isinstance(rows, list):
        set_aside(path, "not a list of measurements")
        return []
    good = [r for r in rows if _row_ok(r)]
    if len(good) != len(rows):
        set_aside(path, f"{len(rows) - len(good)} malformed measurement row(s) of {len(rows)} dropped")
    return good
