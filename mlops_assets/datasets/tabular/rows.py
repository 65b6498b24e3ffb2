"""Parsing and row contracts for tabular landing files (CSV, Parquet).

Rows are parsed as text first so that a rejected row can be quarantined as it
was written, and every reason names the column and the value.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from io import BytesIO
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from mlops_assets.datasets.tabular.config import TabularData

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class BatchRejected(ValueError):
    """The whole file breaks the contract: it cannot be parsed, is empty, or has other columns."""


def parse_batch(data: bytes, name: str, dataset: TabularData) -> pd.DataFrame:
    """The file's rows as text, columns in contract order; raises BatchRejected with the reason."""
    fmt = FORMATS.get(PurePosixPath(name).suffix.lower())
    if fmt is None:
        raise BatchRejected(
            f"{name}: unsupported file type (expected one of {', '.join(sorted(FORMATS))})"
        )
    if not data.strip():
        raise BatchRejected(f"{name}: empty file")
    try:
        if fmt == "csv":
            frame = pd.read_csv(BytesIO(data), dtype=str, keep_default_na=False, na_filter=False)
        else:
            frame = pd.read_parquet(BytesIO(data))
            frame = frame.astype(object).where(frame.notna(), "").astype(str)
    except Exception as error:  # any parser error rejects the file, with the parser's words
        raise BatchRejected(f"{name}: cannot be parsed as {fmt}: {error}".strip()) from error
    expected = dataset.columns
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing columns {_short(missing)}")
        if extra:
            parts.append(f"unexpected columns {_short([str(c) for c in extra])}")
        raise BatchRejected(f"{name}: wrong columns: {'; '.join(parts)}")
    if frame.empty:
        raise BatchRejected(f"{name}: no data rows")
    return frame[expected].reset_index(drop=True)


def _short(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def stripped(text: pd.DataFrame) -> np.ndarray:
    """Every value without surrounding blanks, as one array (one pass in numpy, not a
    pandas string operation per column)."""
    return np.char.strip(text.to_numpy(dtype=str)).astype(object)


def to_numeric(text: pd.DataFrame, values: np.ndarray | None = None) -> pd.DataFrame:
    """Every column as float64; blanks and non-numbers become NaN (`values`: the text
    already stripped)."""
    values = stripped(text) if values is None else values
    columns = {
        name: pd.to_numeric(values[:, i], errors="coerce") for i, name in enumerate(text.columns)
    }
    return pd.DataFrame(columns, index=text.index).astype("float64")


def blanks(text: pd.DataFrame, values: np.ndarray | None = None) -> pd.DataFrame:
    values = stripped(text) if values is None else values
    return pd.DataFrame(values == "", index=text.index, columns=text.columns)


@dataclass
class RowCheck:
    numeric: pd.DataFrame
    reasons: pd.Series
    """Per row: '' when it satisfies the contract, else every reason, '; '-separated."""


def check_rows(text: pd.DataFrame, dataset: TabularData) -> RowCheck:
    """Check each row against the contract, vectorised; reasons name column and value."""
    values = stripped(text)
    numeric = to_numeric(text, values)
    blank = blanks(text, values)
    non_numeric = numeric.isna() & ~blank
    features = dataset.features.columns
    label = dataset.label.column
    lo, hi = dataset.features.min, dataset.features.max
    out_of_range = pd.DataFrame(False, index=text.index, columns=text.columns)
    out_of_range[features] = (numeric[features] < lo) | (numeric[features] > hi)
    lab = numeric[label]
    bad_label = lab.notna() & (
        (lab < dataset.label.min) | (lab > dataset.label.max) | (lab != np.floor(lab))
    )
    problem = blank | non_numeric | out_of_range
    problem[label] = problem[label] | bad_label
    reasons = pd.Series("", index=text.index, dtype=object)
    for row in np.flatnonzero(problem.to_numpy().any(axis=1)):
        found = []
        for column in text.columns[problem.iloc[row].to_numpy()]:
            value = text.at[row, column]
            if blank.at[row, column]:
                found.append(f"missing value in {column}")
            elif non_numeric.at[row, column]:
                found.append(f"non-numeric value {value!r} in {column}")
            elif column == label:
                classes = f"{dataset.label.min}..{dataset.label.max}"
                found.append(f"{column}={value} is not an integer in {classes}")
            else:
                found.append(f"{column}={value} outside {lo:g}..{hi:g}")
        reasons.iat[row] = "; ".join(found)
    return RowCheck(numeric=numeric, reasons=reasons)


def row_hashes(numeric: pd.DataFrame) -> list[str]:
    """A content hash per row over its canonical float64 values (column order fixed)."""
    values = np.ascontiguousarray(numeric.to_numpy(dtype="float64")) + 0.0  # -0.0 == 0.0
    return [hashlib.blake2b(row.tobytes(), digest_size=12).hexdigest() for row in values]
