"""The LSFB request contract: one clip as LSFB-ISOL stores it; the server fills, selects
and resamples it with the functions the clean and transform steps use."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlops_assets.datasets.lsfb.config import LANDMARK_COUNTS, LSFB_POSE, LsfbData
from mlops_assets.datasets.model_input import CONTRACT_VERSION, ContractError


def lsfb_contract(config: LsfbData) -> dict[str, Any]:
    """One clip, as LSFB-ISOL stores it: per landmark set, frames x landmarks x (x, y, z),
    any number of frames, NaN where nothing was detected."""
    return {
        "kind": LSFB_POSE,
        "version": CONTRACT_VERSION,
        "inputs": [
            {
                "name": landmark_set,
                "datatype": "FP32",
                "shape": [-1, LANDMARK_COUNTS[landmark_set], 3],
                "missing": "NaN (binary data) or null (JSON): not detected",
            }
            for landmark_set in config.landmarks
        ],
        "landmarks": list(config.landmarks),
        "pose_landmarks": config.pose_landmarks,
        "coordinates": list(config.coordinates),
        "frames": config.frames,
        "description": (
            "one clip: each landmark set's array as the dataset's .npy files hold it; the "
            "server fills missing landmarks, keeps the upper-body pose landmarks and the "
            f"coordinates {', '.join(config.coordinates)}, and resamples or pads to "
            f"{config.frames} frames, as the clean and transform steps do"
        ),
    }


def clip_to_model_input(contract: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    return _clip(contract, arrays)[None]


def _clip(contract: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    from mlops_assets.datasets.lsfb.clips import filled, select, to_fixed_length

    config = LsfbData(
        landmarks=contract["landmarks"],
        pose_landmarks=contract["pose_landmarks"],
        coordinates=contract["coordinates"],
        frames=contract["frames"],
    )
    frames = {len(arrays[s]) for s in config.landmarks}
    if len(frames) != 1:
        raise ContractError(
            f"inputs {', '.join(config.landmarks)} must have the same number of frames "
            f"(got {sorted(frames)})"
        )
    # exactly what clean stores (filled, float16) and transform makes of it
    by_set = {s: filled(arrays[s]).astype("float32") for s in config.landmarks}
    x, _ = to_fixed_length(select(by_set, config), config.frames)
    return x
