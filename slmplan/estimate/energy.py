"""Energy per token and per query from the device's power profile and the predicted times."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from slmplan.schema.device import DeviceProfile
from slmplan.schema.estimate import EnergyEstimate, SpeedEstimate

BASELINES_FILE = Path(__file__).resolve().parent.parent / "data" / "cloud_baselines.yaml"


@lru_cache(maxsize=1)
def cloud_baselines() -> list[dict]:
    return yaml.safe_load(BASELINES_FILE.read_text())["baselines"]


def estimate_energy(device: DeviceProfile, speed: SpeedEstimate, n_prompt: int = 300,
                    n_gen: int = 200) -> EnergyEstimate:
    if not device.power_w:
        return EnergyEstimate(joules_per_token=None, wh_per_query=None, prompt_tokens=n_prompt,
                              generated_tokens=n_gen,
                              method="unknown: the device profile has no power_w (add one to a YAML profile)")
    if speed.decode_tokens_per_s <= 0:
        return EnergyEstimate(joules_per_token=None, wh_per_query=None, prompt_tokens=n_prompt,
                              generated_tokens=n_gen, power_w=device.power_w, method="unknown: no speed estimate")
    t_decode = n_gen / speed.decode_tokens_per_s
    seconds = speed.ttft_s + t_decode
    src = device.sources.get("power_w", "device profile")
    measured = src.startswith("measured")
    method = (f"{'measured power' if measured else 'estimate'}: power_w {device.power_w:g} W ({src}) "
              f"x predicted time ({speed.ttft_s:.2f} s to first token + {t_decode:.1f} s decode)")
    return EnergyEstimate(
        joules_per_token=round(device.power_w / speed.decode_tokens_per_s, 4),
        wh_per_query=round(device.power_w * seconds / 3600, 5),
        method=method, prompt_tokens=n_prompt, generated_tokens=n_gen, power_w=device.power_w)
