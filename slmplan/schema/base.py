"""The base of every schema model: unknown keys are errors (a typo in a YAML file or a JSON result must
not pass silently), and the shared Literal types."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Verdict = Literal["fits", "tight", "does-not-fit"]
"""fits: at most 80% of the memory budget; tight: within the budget; does-not-fit: above it."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FrozenModel(StrictModel):
    """A strict model that cannot be changed after validation (profiles, catalog entries, estimates)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InputModel(FrozenModel):
    """What users write (catalog entries, device profiles): also no .inf/.nan, which no hardware has."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
