"""What clean writes per batch: its clean rows (typed) and its quarantined rows (as written,
with why), the same columns and types from every chunk, slice and worker."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from mlops_assets.datasets.tabular.config import TabularData

STAGE = "clean"


def clean_columns(dataset: TabularData) -> list[str]:
    return ["row_number", *dataset.features.columns, dataset.label.column, "content_hash"]


def duplicate_reason(row: int, file: str) -> str:
    """Why a row is quarantined as a copy of the row first seen at `row` of `file` (the one
    text the slices and the commit both write)."""
    return f"exact duplicate of row {row} of {file}"


def label_dtype(dataset: TabularData) -> str:
    """How a clean label is stored: int64 class ids, float64 targets, text class names."""
    kind = dataset.label_spec.type
    return {"integer": "int64", "boolean": "int64", "number": "float64"}.get(kind, "object")


def output_schemas(dataset: TabularData) -> dict[str, pa.Schema]:
    """The clean rows' columns and types, and the quarantined rows' (as written, with why)."""
    specs = {c.name: c for c in dataset.schema}
    label = dataset.label.column
    kinds = {"int64": pa.int64(), "float64": pa.float64(), "object": pa.string()}
    clean = [pa.field("row_number", pa.int64())]
    for name in dataset.features.columns:
        clean.append(pa.field(name, pa.string() if specs[name].categorical else pa.float64()))
    clean += [pa.field(label, kinds[label_dtype(dataset)]), pa.field("content_hash", pa.string())]
    quarantine = [pa.field("row_number", pa.int64()), pa.field("reason", pa.string())]
    quarantine += [pa.field(name, pa.string()) for name in dataset.column_names]
    return {"clean": pa.schema(clean), "quarantine": pa.schema(quarantine)}


def as_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def empty_clean(dataset: TabularData) -> pd.DataFrame:
    """The clean output of a batch that kept no row."""
    specs = {c.name: c for c in dataset.schema}
    columns: dict[str, pd.Series] = {"row_number": pd.Series(dtype="int64")}
    for name in clean_columns(dataset)[1:-1]:
        dtype = "object" if specs[name].categorical else "float64"
        columns[name] = pd.Series(dtype=dtype)
    columns[dataset.label.column] = pd.Series(dtype=label_dtype(dataset))
    columns["content_hash"] = pd.Series(dtype="object")
    return pd.DataFrame(columns)
