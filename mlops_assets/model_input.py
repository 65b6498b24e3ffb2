"""What a released model takes: rows as they landed, and the transform to its input.

The transform the DataOps `transform` step applies (scaling and column order for tabular
data; landmark selection, resampling and padding for LSFB clips) is part of the model: it
is written into the model's metadata as a versioned *request contract*, and the model
server applies exactly these functions, in numpy and outside the model graph, to what a
client sends. The DataOps steps call the same functions, so training and serving cannot
drift apart. Everything here is plain numpy: the contract is data, the code is this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_assets.errors import MlopsError

if TYPE_CHECKING:
    from mlops_assets.components.config import DatasetConfig, LsfbConfig

CONTRACT_VERSION = 1
TABULAR = "tabular"
LSFB_POSE = "lsfb_pose"


class ContractError(MlopsError, ValueError):
    """A request breaks the model's input contract; the message names the input or feature."""


def tabular_contract(dataset: DatasetConfig) -> dict[str, Any]:
    """Rows in the landing files' columns and ranges; the model sees value / scale."""
    features = dataset.features
    return {
        "kind": TABULAR,
        "version": CONTRACT_VERSION,
        "inputs": [
            {
                "name": "rows",
                "datatype": "FP32",
                "shape": [-1, len(features.columns)],
                "features": features.columns,
                "min": features.min,
                "max": features.max,
            }
        ],
        "scale": dataset.scale,
        "description": (
            f"one row per example, the columns {features.columns[0]}..{features.columns[-1]} "
            f"as they land ({features.min:g}..{features.max:g}); the server divides by "
            f"{dataset.scale:g} as the transform step does"
        ),
    }


def scale_rows(values: np.ndarray, scale: float) -> np.ndarray:
    """The tabular transform: float32 of value / scale (the transform step calls it too)."""
    return (np.asarray(values, dtype="float64") / scale).astype("float32")


def lsfb_contract(config: LsfbConfig) -> dict[str, Any]:
    """One clip, as LSFB-ISOL stores it: per landmark set, frames x landmarks x (x, y, z),
    any number of frames, NaN where nothing was detected."""
    from mlops_assets.components.config import LANDMARK_COUNTS

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


def allows_missing(spec: dict[str, Any]) -> bool:
    return "missing" in spec


def to_model_input(contract: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """What the model takes, from what the contract's inputs hold (already shape-checked)."""
    if contract.get("version") != CONTRACT_VERSION:
        raise ContractError(f"request contract version {contract.get('version')} is not supported")
    if contract["kind"] == TABULAR:
        (spec,) = contract["inputs"]
        rows = arrays[spec["name"]]
        _check_range(rows, spec)
        return scale_rows(rows, float(contract["scale"]))
    if contract["kind"] == LSFB_POSE:
        return _clip(contract, arrays)[None]
    raise ContractError(f"unknown request contract kind {contract['kind']!r}")


def _check_range(rows: np.ndarray, spec: dict[str, Any]) -> None:
    low, high = spec.get("min"), spec.get("max")
    outside = np.zeros(rows.shape, dtype=bool)
    if low is not None:
        outside |= rows < low
    if high is not None:
        outside |= rows > high
    if outside.any():
        row, column = (int(i) for i in np.argwhere(outside)[0])
        raise ContractError(
            f"input {spec['name']!r}: {spec['features'][column]}={rows[row, column]:g} in row "
            f"{row} is outside {low:g}..{high:g} (send values as they land, not transformed)"
        )


def _clip(contract: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    from mlops_assets.components.config import LsfbConfig
    from mlops_assets.lsfb.clips import filled, select, to_fixed_length

    config = LsfbConfig(
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
