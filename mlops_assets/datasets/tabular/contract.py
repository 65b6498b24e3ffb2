"""The tabular request contract: rows as they land, in the landing files' columns and
ranges; the model takes value / scale. The transform step calls `scale_rows` too."""

from __future__ import annotations

from io import BytesIO
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_assets.datasets.model_input import CONTRACT_VERSION, ContractError
from mlops_assets.datasets.tabular.config import TABULAR, TabularData

if TYPE_CHECKING:
    import pandas as pd


def tabular_contract(dataset: TabularData) -> dict[str, Any]:
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


def rows_to_model_input(contract: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    (spec,) = contract["inputs"]
    rows = arrays[spec["name"]]
    _check_range(rows, spec)
    return scale_rows(rows, float(contract["scale"]))


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


def raw_rows(dataset: TabularData, labelled: pd.DataFrame) -> tuple[bytes, int]:
    """Labelled production requests as a Parquet landing file: the logged model input
    times `scale` (the transform's inverse), the label under the label column. Requests
    logged without their inputs cannot become rows and are left out."""
    import pandas as pd

    columns = dataset.features.columns
    if labelled.empty or "inputs" not in labelled:
        return b"", 0
    usable = labelled[labelled["inputs"].map(lambda v: v is not None and len(v) == len(columns))]
    if usable.empty:
        return b"", 0
    values = np.stack(usable["inputs"].to_numpy()).astype("float64") * dataset.scale
    frame = pd.DataFrame(np.round(values, 6), columns=columns)
    frame[dataset.label.column] = usable["label"].astype("int64").to_numpy()
    buffer = BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue(), len(frame)
