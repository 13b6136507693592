"""Where 'slmplan bench --calibrate' keeps the local machine's fitted speed constants."""

from __future__ import annotations

import json

from slmplan.localdevice import cache_dir


def local_constants_path():
    return cache_dir() / "local_speed_model.json"


def load_local_constants():
    """The local calibration as ``SpeedConstants``, or None when there is none (or it is unreadable)."""
    from slmplan.estimate.speed_constants import SpeedConstants

    try:
        return SpeedConstants.from_dict(json.loads(local_constants_path().read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
