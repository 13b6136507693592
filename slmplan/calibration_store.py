"""Where 'slmplan bench --calibrate' keeps this machine's calibration: the ``calibration:`` block that
`slmplan calibrate` writes into a device profile (see device_calibration.py), fitted on this machine's
own benchmarks, in ``<cache>/local_calibration.json``. ``--device local`` is the detected profile with it.

A file that is not what slmplan wrote (edited by hand, cut off by a full disk) is named on stderr, set
aside and rebuilt by the next --calibrate, never a crash on every later run."""

from __future__ import annotations

import json

from slmplan.fileio import read_state, set_aside
from slmplan.localdevice import cache_dir


def local_calibration_path():
    return cache_dir() / "local_calibration.json"


def load_local_calibration():
    """The stored ``DeviceCalibration`` of this machine, or None (none stored, or set aside as unreadable)."""
    from pydantic import ValidationError

    from slmplan.schema.calibration import DeviceCalibration

    path = local_calibration_path()
    raw = read_state(path)
    if raw is None:
        return None
    try:
        return DeviceCalibration.model_validate(json.loads(raw))
    except ValueError as e:  # not JSON (also UnicodeDecodeError), or not a calibration block (ValidationError)
        why = "not a calibration of this slmplan version" if isinstance(e, ValidationError) else f"not JSON: {type(e).__name__}"
        set_aside(path, why)
        return None


def with_local_calibration(device):
    """The detected 'local' profile with this machine's stored calibration (threads and backend as measured)."""
    cal = load_local_calibration()
    if cal is None:
        return device
    return device.model_copy(update={
        "calibration": cal, "backend": cal.backend, "threads": cal.threads or device.threads,
        "sources": {**device.sources, "calibration": f"slmplan bench --calibrate ({cal.date}), {local_calibration_path()}"}})
