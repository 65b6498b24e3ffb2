"""One clip: checking its pose files, filling missing landmarks, and the fixed-length tensor.

Pure numpy, per clip: the same functions run in the assets, in the model
server's documentation of its input, and in the benchmarks.
"""

from __future__ import annotations

import io

import numpy as np

from mlops_assets.datasets.lsfb.config import LANDMARK_COUNTS, LsfbData
from mlops_assets.errors import MlopsError

COORDINATES = {"x": 0, "y": 1, "z": 2}


class ClipError(MlopsError, ValueError):
    """A pose file that is not what LSFB-ISOL promises; the message names the file."""


def load_pose(data: bytes, name: str, landmark_set: str) -> np.ndarray:
    """A `(frames, landmarks, 3)` float array from `.npy` bytes, checked (never unpickled)."""
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as error:  # a truncated or foreign file
        raise ClipError(f"{name}: not a readable .npy file ({error})") from None
    expected = LANDMARK_COUNTS[landmark_set]
    if array.ndim != 3 or array.shape[1:] != (expected, 3):
        raise ClipError(
            f"{name}: shape {tuple(array.shape)}, expected (frames, {expected}, 3) "
            f"for {landmark_set}"
        )
    if array.dtype not in (np.float16, np.float32, np.float64):
        raise ClipError(f"{name}: dtype {array.dtype}, expected float16")
    return array


def fill_missing(frames: np.ndarray) -> np.ndarray:
    """NaN landmarks interpolated along time (held at the ends), then zero where a landmark
    is never seen in the clip."""
    out = frames.astype("float32", copy=True)
    n = out.shape[0]
    if n == 0:
        return out
    flat = out.reshape(n, -1)
    missing = np.isnan(flat)
    if not missing.any():
        return out
    t = np.arange(n)
    for column in np.nonzero(missing.any(axis=0))[0]:
        seen = ~missing[:, column]
        if seen.any():
            flat[:, column] = np.interp(t, t[seen], flat[seen, column])
        else:
            flat[:, column] = 0.0
    return flat.reshape(out.shape)


def filled(frames: np.ndarray) -> np.ndarray:
    """What clean stores for one landmark set: missing landmarks filled, as float16."""
    return fill_missing(frames).astype("float16")


def select(frames_by_set: dict[str, np.ndarray], config: LsfbData) -> np.ndarray:
    """`(frames, features)`: the configured landmark sets (the first N pose landmarks) and
    coordinates, flattened in the order of `config.landmarks`."""
    coords = [COORDINATES[c] for c in config.coordinates]
    parts = []
    for landmark_set in config.landmarks:
        array = frames_by_set[landmark_set]
        if landmark_set == "pose":
            array = array[:, : config.pose_landmarks]
        parts.append(array[:, :, coords].reshape(array.shape[0], -1))
    return np.concatenate(parts, axis=1).astype("float32")


def to_fixed_length(features: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Longer clips are resampled to `length` evenly spaced frames (linear interpolation);
    shorter ones are padded with zeros. Returns the tensor and its mask (True: real frame)."""
    n, width = features.shape
    out = np.zeros((length, width), dtype="float32")
    mask = np.zeros(length, dtype=bool)
    if n == 0:
        return out, mask
    if n <= length:
        out[:n] = features
        mask[:n] = True
        return out, mask
    position = np.linspace(0.0, n - 1, length)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, n - 1)
    weight = (position - low)[:, None].astype("float32")
    out[:] = features[low] * (1 - weight) + features[high] * weight
    mask[:] = True
    return out, mask
