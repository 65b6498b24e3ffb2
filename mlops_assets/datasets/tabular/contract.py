"""The tabular request contract: rows as they land, in the landing files' columns and
ranges; the model takes value / scale. The transform step calls `scale_rows` too."""

from __future__ import annotations

import json
from io import BytesIO
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_assets.datasets.model_input import CONTRACT_VERSION, ContractError
from mlops_assets.datasets.tabular.config import TABULAR, TabularData

if TYPE_CHECKING:
    import pandas as pd


def tabular_contract(dataset: TabularData, train: Any = None) -> dict[str, Any]:
    """Rows in the landing files' columns and ranges; the model sees value / scale. A table
    declared column by column: one input per column (`table_contract`)."""
    if dataset.typed:
        return table_contract(dataset, train)
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


DATATYPES = {"number": "FP64", "integer": "INT64", "boolean": "BOOL"}
"""A column's OIP datatype by its type (categories: BYTES)."""


def table_contract(dataset: TabularData, train: Any = None) -> dict[str, Any]:
    """One OIP input per feature column, as MLServer's pandas codec takes a table (BYTES for
    text, null where the column is nullable), each listed with its type and what it may
    hold; an all-numeric table also takes them as one `rows` tensor. Categories the YAML
    does not declare are those the model saw in training (`train`)."""
    seen = _seen_categories(dataset, train) if train is not None else {}
    columns, inputs = [], []
    for spec in dataset.feature_specs:
        entry: dict[str, Any] = {
            "name": spec.name,
            "type": spec.type,
            "datatype": DATATYPES.get(spec.type, "BYTES"),
            "nullable": spec.nullable,
        }
        if spec.numeric:
            entry.update(min=spec.min, max=spec.max)
        if spec.categorical:
            entry["categories"] = (
                spec.categories if spec.categories is not None else seen.get(spec.name)
            )
        columns.append(entry)
        tensor = {"name": spec.name, "datatype": entry["datatype"], "shape": [-1]}
        if spec.nullable:
            tensor["missing"] = "null"
        inputs.append(tensor)
    contract: dict[str, Any] = {
        "kind": TABULAR,
        "version": CONTRACT_VERSION,
        "columns": columns,
        "inputs": inputs,
        "unseen_categories": dataset.unseen_categories,
        "description": (
            "one input per column, each of shape [n] (the n rows of the request), values as "
            "they land (text for categories, null where a column is nullable); the model's "
            "own pipeline imputes, encodes and scales them"
        ),
    }
    if all(spec.numeric or spec.type == "boolean" for spec in dataset.feature_specs):
        rows = {"name": "rows", "datatype": "FP64", "shape": [-1, len(columns)]}
        if any(spec.nullable for spec in dataset.feature_specs):
            rows["missing"] = "null"
        contract["alternatives"] = [[rows]]
    return contract


def _seen_categories(dataset: TabularData, train: Any) -> dict[str, list[str]]:
    names = [spec.name for spec in dataset.feature_specs if spec.categorical]
    found = train.distinct(names)
    return {name: sorted(str(v) for v in found[name]) for name in names}


def table_to_model_input(contract: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The model's input for a table: an object array, a row per example and the columns
    in contract order (numbers as float, text as str, None where missing), after every
    check the contract names; a ContractError names column, row and value."""
    columns = contract["columns"]
    if "rows" in arrays and len(arrays) == 1:
        rows = arrays["rows"]
        parts = {c["name"]: rows[:, i] for i, c in enumerate(columns)}
    else:
        parts = {c["name"]: np.asarray(arrays[c["name"]]).ravel() for c in columns}
    lengths = {name: len(values) for name, values in parts.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name}: {n}" for name, n in lengths.items())
        raise ContractError(f"every input holds one value per row; got {shown}")
    out = np.empty((next(iter(lengths.values())), len(columns)), dtype=object)
    for i, column in enumerate(columns):
        out[:, i] = _column(column, parts[column["name"]], contract)
    return out


def _column(column: dict[str, Any], values: np.ndarray, contract: dict[str, Any]) -> np.ndarray:
    name = column["name"]
    if column["type"] in ("category", "string"):
        known = column.get("categories")
        if known is not None and contract.get("unseen_categories", "refuse") == "refuse":
            allowed = set(known)
            for row, value in enumerate(values):
                if value is not None and value not in allowed:
                    raise ContractError(
                        f"input {name!r}: {value!r} in row {row} is not a category the model "
                        f"knows ({', '.join(map(str, known[:20]))})"
                    )
        return values
    numbers = np.asarray(
        [np.nan if v is None else float(v) for v in values] if values.dtype == object else values,
        dtype="float64",
    )
    low, high = column.get("min"), column.get("max")
    outside = np.zeros(len(numbers), dtype=bool)
    if low is not None:
        outside |= numbers < low
    if high is not None:
        outside |= numbers > high
    if column["type"] == "integer":
        outside |= ~np.isnan(numbers) & (numbers != np.floor(numbers))
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        bounds = f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"
        raise ContractError(
            f"input {name!r}: {numbers[row]:g} in row {row} is outside {bounds}"
            + (" or not an integer" if column["type"] == "integer" else "")
        )
    result = numbers.astype(object)
    result[np.isnan(numbers)] = None
    return result


def scale_rows(values: np.ndarray, scale: float) -> np.ndarray:
    """The tabular transform: float32 of value / scale (the transform step calls it too)."""
    return (np.asarray(values, dtype="float64") / scale).astype("float32")


def rows_to_model_input(contract: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    if "columns" in contract:
        return table_to_model_input(contract, arrays)
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

    if dataset.typed:
        return typed_rows(dataset, labelled)
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


def typed_rows(dataset: TabularData, labelled: pd.DataFrame) -> tuple[bytes, int]:
    """Labelled production requests of a table declared column by column as a Parquet
    landing file of text, in its columns, as a landing file holds them: each feature as it
    was sent (the logged JSON row), missing where it was null, the label; an `id` column
    gets `<request id>:<row>` and an ignored column stays missing. Requests logged without
    their rows are left out."""
    import pandas as pd

    if labelled.empty or "inputs_json" not in labelled:
        return b"", 0
    features = [c.name for c in dataset.feature_specs]
    rows, kept = [], []
    for i, text in enumerate(labelled["inputs_json"].to_numpy()):
        try:
            row = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            row = None
        if isinstance(row, list) and len(row) == len(features):
            rows.append(row)
            kept.append(i)
    if not rows:
        return b"", 0
    usable = labelled.iloc[kept]
    frame = pd.DataFrame(rows, columns=features, dtype=object)
    out = pd.DataFrame(index=range(len(frame)))
    ids = (usable["request_id"].astype(str) + ":" + usable["row"].astype(str)).to_numpy()
    for spec in dataset.schema:
        if spec.role == "feature":
            out[spec.name] = frame[spec.name].map(_as_text)
        elif spec.role == "label":
            out[spec.name] = [_as_text(v) for v in usable["label"].tolist()]
        elif spec.role == "id":
            out[spec.name] = ids
        else:
            out[spec.name] = None
    buffer = BytesIO()
    out.astype("string").to_parquet(buffer, index=False)
    return buffer.getvalue(), len(out)


def _as_text(value: Any) -> str | None:
    """A JSON value as a landing file's text: null stays missing, a boolean is true/false."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
