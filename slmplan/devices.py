"""Device profiles: the built-in ones, YAML files, and detection of the local machine."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from slmplan.errors import DeviceError, UnknownIdError
from slmplan.fileio import MAX_PROFILE_BYTES
from slmplan.schema.device import DeviceProfile
from slmplan.socs import fill_from_soc
from slmplan.yamlio import read_yaml, validate

BUILTIN_FILE = Path(__file__).parent / "data" / "devices.yaml"


@lru_cache(maxsize=1)
def builtin_devices() -> tuple[DeviceProfile, ...]:
    data = read_yaml(BUILTIN_FILE, "device profiles", DeviceError)
    out = []
    for i, d in enumerate(data["devices"]):
        out.append(validate(fill_from_soc(d), DeviceProfile, f"{BUILTIN_FILE} devices[{i}]", DeviceError))
    return tuple(out)


def load_device_file(path: Path) -> DeviceProfile:
    data = read_yaml(path, "device profile", DeviceError, max_bytes=MAX_PROFILE_BYTES)
    if not isinstance(data, dict):
        raise DeviceError(f"{path}: expected a mapping of device fields (id, name, kind, ram_gb, ...)",
                          "See the README's device profile example for the keys")
    try:
        data = fill_from_soc(data)
    except DeviceError as e:
        raise DeviceError(f"{path}: {e.message}", e.hint) from None
    return validate(data, DeviceProfile, path, DeviceError)


def get_device(spec: str) -> DeviceProfile:
    """A built-in id, ``local`` (this machine as detected, with its 'bench --calibrate' calibration when there is
    one), or a path to a YAML profile."""
    if spec == "local":
        from slmplan.calibration_store import with_local_calibration
        from slmplan.localdevice import detect_local

        return with_local_calibration(detect_local())
    if spec.endswith((".yaml", ".yml")) or os.sep in spec:
        return load_device_file(Path(spec))
    for d in builtin_devices():
        if d.id == spec:
            return d
    ids = [d.id for d in builtin_devices()]
    close = [i for i in ids if spec.split("-")[0] in i][:5]
    hint = (f"Did you mean: {', '.join(close)}?" if close
            else "Run 'slmplan devices' to list the ids, use 'local', or pass a YAML profile path")
    raise UnknownIdError(f"unknown device '{spec}'", hint)

