"""The steps of a use case and their asset keys: `<use case>/<step>`."""

from __future__ import annotations

import dagster as dg

DATAOPS_STEPS = ("acquire", "observe", "clean", "transform", "split")
MLOPS_STEPS = ("train", "validate", "release", "deploy")
STEPS = (*DATAOPS_STEPS, *MLOPS_STEPS)


def step_key(use_case: str, step: str) -> dg.AssetKey:
    return dg.AssetKey([use_case, step])


def step_keys(use_case: str, steps: tuple[str, ...]) -> dict[str, dg.AssetKey]:
    """Each of `steps` -> its asset key."""
    return {step: step_key(use_case, step) for step in steps}
