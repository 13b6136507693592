"""Where 'slmplan bench --calibrate' keeps the local machine's fitted speed constants."""

from __future__ import annotations

import json

from slmplan.localdevice import cache_dir


def local_constants_path():
    return cache_dir() / "local_speed_model.json"


def load_local_constants() -> dict | None:
    try:
        return json.loads(local_constants_path().read_text())
    except (OSError, ValueError):
        return None
