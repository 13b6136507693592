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
    if not speed.decode_tokens_per_s:
        return EnergyEstimate(joules_per_token=None, wh_per_query=None, prompt_tokens=n_prompt,
                              generated_tokens=n_gen, power_w=device.power_w, method="unknown: no speed estimate")
    src = device.sources.get("power_w", "device profile")
    kind = "measured power" if src.startswith("measured") else "estimate"
    j_tok = round(device.power_w / speed.decode_tokens_per_s, 4)
    t_decode = n_gen / speed.decode_tokens_per_s
    if speed.ttft_s is None:
        # without a prefill estimate the query's time is unknown: a per-query figure would rest on a guess
        return EnergyEstimate(
            joules_per_token=j_tok, wh_per_query=None, prompt_tokens=n_prompt, generated_tokens=n_gen,
            power_w=device.power_w,
            method=(f"{kind}: power_w {device.power_w:g} W ({src}) x predicted decode time per token; Wh per query "
                    "unknown: prefill speed unknown (the profile has no compute figure)"))
    seconds = speed.ttft_s + t_decode
    method = (f"{kind}: power_w {device.power_w:g} W ({src}) "
              f"x predicted time ({speed.ttft_s:.2f} s to first token + {t_decode:.1f} s decode)")
    return EnergyEstimate(
        joules_per_token=j_tok, wh_per_query=round(device.power_w * seconds / 3600, 5),
        method=method, prompt_tokens=n_prompt, generated_tokens=n_gen, power_w=device.power_w)
