"""Landing files for the digits demo, from scikit-learn's bundled data.

The columns are the digits contract: `pixel_0` .. `pixel_63` (0..16) and `label`.
"""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pandas as pd

from mlops_assets.components.tree import load_use_case

COLUMNS = [f"pixel_{i}" for i in range(64)] + ["label"]


def digits_frame() -> pd.DataFrame:
    from sklearn.datasets import load_digits

    data = load_digits()
    frame = pd.DataFrame(data.data.astype("int64"), columns=COLUMNS[:-1])
    frame["label"] = data.target.astype("int64")
    return frame


def digits_batches(count: int) -> list[pd.DataFrame]:
    """The bundled 1,797 rows in `count` batches, in a fixed shuffled order."""
    frame = digits_frame().sample(frac=1.0, random_state=0).reset_index(drop=True)
    bounds = np.linspace(0, len(frame), count + 1).astype(int)
    pairs = zip(bounds[:-1], bounds[1:], strict=True)
    return [frame.iloc[a:b].reset_index(drop=True) for a, b in pairs]


def synthetic_batch(rows: int, seed: int = 0) -> pd.DataFrame:
    """`rows` rows drawn from the digits with pixel jitter, so they are new, not duplicates."""
    rng = np.random.default_rng(seed)
    base = digits_frame()
    picked = base.iloc[rng.integers(0, len(base), rows)].reset_index(drop=True)
    pixels = picked[COLUMNS[:-1]].to_numpy() + rng.integers(-1, 2, size=(rows, 64))
    frame = pd.DataFrame(np.clip(pixels, 0, 16), columns=COLUMNS[:-1])
    frame["label"] = picked["label"].to_numpy()
    return frame


def with_bad_rows(frame: pd.DataFrame, fraction: float, seed: int = 0) -> pd.DataFrame:
    """A copy as text where about `fraction` of rows break the contract, in assorted ways."""
    rng = np.random.default_rng(seed)
    text = frame.astype(str)
    bad = rng.choice(len(text), size=max(1, int(len(text) * fraction)), replace=False)
    good = np.setdiff1d(np.arange(len(text)), bad)
    kinds = ["missing", "non_numeric", "pixel_range", "label_range", "duplicate"]
    for n, row in enumerate(sorted(bad)):
        kind = kinds[n % len(kinds)]
        column = f"pixel_{rng.integers(0, 64)}"
        if kind == "missing":
            text.iat[row, text.columns.get_loc(column)] = ""
        elif kind == "non_numeric":
            text.iat[row, text.columns.get_loc(column)] = "x7"
        elif kind == "pixel_range":
            text.iat[row, text.columns.get_loc(column)] = "23"
        elif kind == "label_range":
            text.iat[row, text.columns.get_loc("label")] = "12"
        else:
            text.iloc[row] = text.iloc[int(rng.choice(good))]
    return text


def to_bytes(frame: pd.DataFrame, fmt: str = "csv") -> bytes:
    buffer = BytesIO()
    if fmt == "csv":
        frame.to_csv(buffer, index=False)
    elif fmt == "parquet":
        frame.to_parquet(buffer, index=False)
    else:
        raise ValueError(f"unknown format {fmt!r} (csv or parquet)")
    return buffer.getvalue()


def seed_digits(
    storage, batches: int, which: list[int], bad_fraction: float = 0.0, fmt: str = "csv"
) -> list[str]:
    """Write batches `which` (1-based) of the digits split in `batches` into digits'
    landing zone, `bad_fraction` of their rows broken in the ways clean must catch."""
    landing = load_use_case("digits").landing
    parts = digits_batches(batches)
    written = []
    for n in which:
        frame = parts[n - 1]
        if bad_fraction:
            frame = with_bad_rows(frame, bad_fraction, seed=n)
        key = f"{landing}/digits-{n:03d}-of-{batches:03d}.{fmt}"
        storage.write_bytes(key, to_bytes(frame, fmt))
        written.append(key)
    return written
