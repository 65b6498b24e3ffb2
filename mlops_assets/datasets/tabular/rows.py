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

from mlops_assets.datasets.tabular.config import FORMATS, TabularData
from mlops_assets.datasets.tabular.row_contract import as_text, read_typed, row_reasons


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
            frame = as_text(pd.read_parquet(BytesIO(data)))
    except Exception as error:  # any parser error rejects the file, with the parser's words
        raise BatchRejected(f"{name}: cannot be parsed as {fmt}: {error}".strip()) from error
    if problem := column_problems(dataset, [str(c) for c in frame.columns]):
        raise BatchRejected(f"{name}: wrong columns: {problem}")
    if frame.empty:
        raise BatchRejected(f"{name}: no data rows")
    return frame[dataset.column_names].reset_index(drop=True)


def column_problems(dataset: TabularData, found: list[str]) -> str:
    """Why a file's columns are not the contract's ('' when they are)."""
    expected = dataset.column_names
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    parts = []
    if missing:
        parts.append(f"missing columns {_short(missing)}")
    if extra:
        parts.append(f"unexpected columns {_short(extra)}")
    return "; ".join(parts)


def _short(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def stripped(text: pd.DataFrame) -> np.ndarray:
    """Every value without surrounding blanks, as one array (one pass in numpy, not a
    pandas string operation per column)."""
    return np.char.strip(text.to_numpy(dtype=str)).astype(object)


@dataclass
class RowCheck:
    numeric: pd.DataFrame
    """The rows as their columns' types (all float64 for an all-numeric table)."""
    reasons: pd.Series
    """Per row: '' when it satisfies the contract, else every reason, '; '-separated."""


def check_rows(text: pd.DataFrame, dataset: TabularData) -> RowCheck:
    """Check each row against the contract (`row_contract`: each column read as its type,
    then the pandera schema); reasons name column and value. `text`: the rows as written,
    or a Parquet chunk with its own types."""
    typed = read_typed(text, dataset)
    return RowCheck(numeric=typed.frame, reasons=row_reasons(text, typed, dataset))


def row_hashes(numeric: pd.DataFrame) -> list[str]:
    """A content hash per row over its canonical values (column order fixed): float64 bytes
    for an all-numeric row; a row with text hashes each value's type-tagged text."""
    if all(dtype.kind == "f" for dtype in numeric.dtypes):
        values = np.ascontiguousarray(numeric.to_numpy(dtype="float64")) + 0.0  # -0.0 == 0.0
        return [hashlib.blake2b(row.tobytes(), digest_size=12).hexdigest() for row in values]
    # each value's canonical text ("\x00" missing, "f<repr>" a float, "s<text>" else),
    # built a column at a time; the hashes of earlier runs stay valid
    columns = [_canonical_column(numeric[name]) for name in numeric.columns]
    return [
        hashlib.blake2b("\x1f".join(row).encode(), digest_size=12).hexdigest()
        for row in zip(*columns, strict=True)
    ]


def _canonical_column(column: pd.Series) -> list[str]:
    values = column.tolist()  # the Python values a row's tuple holds
    if column.dtype.kind == "f":
        return ["\x00" if v != v else f"f{v + 0.0!r}" for v in values]
    return [
        "\x00"
        if v is None or (isinstance(v, float) and v != v)
        else (f"f{v + 0.0!r}" if isinstance(v, float) else f"s{v}")
        for v in values
    ]
