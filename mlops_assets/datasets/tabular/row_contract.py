"""The row contract as a pandera schema, built from the dataset's columns.

A landing file is parsed as text (so a rejected row is quarantined as it was written);
each column is then read as its declared type (a value that is not one is a reason of its
own), and the typed frame is validated by pandera, lazily, so one pass finds every broken
cell. Each failure becomes a reason that names the column and the value as written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from mlops_assets.datasets.tabular.config import ColumnSpec, TabularData

TRUE = frozenset({"true", "1", "yes"})
FALSE = frozenset({"false", "0", "no"})


@dataclass
class Typed:
    """A batch read as its columns' types."""

    frame: pd.DataFrame
    """number/integer/boolean: float64 (NaN where missing); category: str (None where missing)."""
    missing: pd.DataFrame
    """Per cell: the text means missing."""
    wrong_type: pd.DataFrame
    """Per cell: the text is not a value of the column's type."""


def read_typed(text: pd.DataFrame, dataset: TabularData) -> Typed:
    """Each column of `text` as its declared type: a text column parsed from its stripped
    text, a column that has a number type already (Parquet) taken as it is."""
    specs = {c.name: c for c in dataset.schema}
    tokens = sorted(set(dataset.missing_values) | {""}) if dataset.typed else [""]
    columns, wrong, missing = {}, {}, {}
    for name in text.columns:
        spec, column = specs[name], text[name]
        native = column.dtype.kind in "fiub" and (spec.numeric or spec.type == "boolean")
        if native:  # a number (or boolean) as the file typed it: nothing to parse
            numbers = column.to_numpy(dtype="float64", na_value=np.nan)
            gone = np.isnan(numbers)
            missing[name] = gone
            columns[name] = numbers
            bad = np.zeros(len(numbers), dtype=bool)
            if spec.type == "boolean":
                bad = ~gone & ~np.isin(numbers, (0.0, 1.0))
                columns[name] = np.where(bad, np.nan, numbers)
            wrong[name] = bad
            continue
        cells = _stripped(column)
        gone = pd.Series(cells).isin(tokens).to_numpy()
        missing[name] = gone
        if spec.role in ("id", "ignore"):  # kept out of the model: landed as text
            columns[name] = np.where(gone, None, cells).astype(object)
            wrong[name] = np.zeros(len(cells), dtype=bool)
        elif spec.numeric:
            numbers = pd.to_numeric(np.where(gone, "", cells), errors="coerce")
            columns[name] = np.asarray(numbers, dtype="float64")
            wrong[name] = np.isnan(columns[name]) & ~gone
        elif spec.type == "boolean":
            lower = np.char.lower(cells.astype(str))
            truth = np.isin(lower, list(TRUE))
            columns[name] = np.where(truth, 1.0, np.where(np.isin(lower, list(FALSE)), 0.0, np.nan))
            wrong[name] = np.isnan(columns[name]) & ~gone
        else:
            columns[name] = np.where(gone, None, cells).astype(object)
            wrong[name] = np.zeros(len(cells), dtype=bool)
    index = text.index
    return Typed(
        frame=pd.DataFrame(columns, index=index),
        missing=pd.DataFrame(missing, index=index, columns=text.columns),
        wrong_type=pd.DataFrame(wrong, index=index),
    )


def as_text(frame: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Rows as the text they were written as (a Parquet value as pandas prints it, a missing
    one blank): what quarantine keeps and a reason quotes."""
    return frame.astype(object).where(frame.notna(), "").astype(str)


def _stripped(column: pd.Series) -> np.ndarray:
    """A column's values as text without surrounding blanks (a missing value: blank)."""
    if column.dtype.kind not in "OUST" and not isinstance(column.dtype, pd.StringDtype):
        column = as_text(column)
    values = column.to_numpy(dtype=str, na_value="")
    return np.char.strip(values).astype(object)


def cell_text(text: pd.DataFrame, row: int, column: int) -> str:
    """One cell as it was written (a typed value as pandas prints it; missing: blank)."""
    value = text.iat[row, column]
    if isinstance(value, str):
        return value
    return "" if pd.isna(value) else str(value)


def _checks(spec: ColumnSpec) -> list[pa.Check]:
    checks = []
    if spec.role in ("id", "ignore"):
        return checks
    if spec.min is not None:
        checks.append(pa.Check.ge(spec.min, name="range"))
    if spec.max is not None:
        checks.append(pa.Check.le(spec.max, name="range"))
    if spec.type == "integer":
        checks.append(pa.Check(lambda s: s % 1 == 0, element_wise=False, name="integer"))
    if spec.categories is not None:
        checks.append(pa.Check.isin(spec.categories, name="categories"))
    return checks


def pandera_schema(dataset: TabularData, only: list[str] | None = None) -> pa.DataFrameSchema:
    """The contract a clean row satisfies, one pandera column per landed column (or per
    column of `only`)."""
    return pa.DataFrameSchema(
        {
            spec.name: pa.Column(
                "float64" if spec.role in ("feature", "label") and not spec.categorical else None,
                checks=_checks(spec),
                nullable=spec.nullable or spec.role == "ignore",
                required=True,
            )
            for spec in dataset.schema
            if only is None or spec.name in only
        },
        strict=False,
    )


def _bounds(spec: ColumnSpec) -> str:
    low = "" if spec.min is None else f"{spec.min:g}"
    high = "" if spec.max is None else f"{spec.max:g}"
    return f"{low}..{high}"


def _reason(spec: ColumnSpec, check: str, value: str) -> str:
    if check == "not_nullable":
        return f"missing value in {spec.name}"
    if spec.role == "label" and spec.type == "integer":
        return f"{spec.name}={value} is not an integer in {_bounds(spec)}"
    if check == "integer":
        return f"{spec.name}={value} is not an integer"
    if check == "categories":
        known = ", ".join(spec.categories or [])
        return f"{spec.name}={value!r} is not one of its categories ({known})"
    return f"{spec.name}={value} outside {_bounds(spec)}"


def row_reasons(
    text: pd.DataFrame,
    typed: Typed,
    dataset: TabularData,
    only: list[ColumnSpec] | None = None,
) -> pd.Series:
    """Per row: '' when it satisfies the contract (of the columns `only`, by default all),
    else every reason, '; '-separated, in column order."""
    specs = {c.name: c for c in dataset.schema}
    found: dict[int, dict[str, str]] = {}
    wrong = typed.wrong_type.to_numpy()
    for row, i in zip(*np.nonzero(wrong), strict=True):
        name = typed.wrong_type.columns[i]
        kind = "non-numeric" if specs[name].numeric else "non-boolean"
        value = cell_text(text, row, i)
        found.setdefault(int(row), {})[name] = f"{kind} value {value!r} in {name}"
    try:
        names = None if only is None else [c.name for c in only]
        pandera_schema(dataset, names).validate(typed.frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
        cases = cases[cases["index"].notna()]
        positions = text.columns.get_indexer(cases["column"])
        for row, name, check, at in zip(
            cases["index"].astype(int), cases["column"], cases["check"], positions, strict=True
        ):
            cell = found.setdefault(int(row), {})
            if name in cell:
                continue  # not a value of its type: said already (pandera sees its NaN)
            cell[name] = _reason(specs[name], str(check), cell_text(text, int(row), at))
    reasons = pd.Series("", index=text.index, dtype=object)
    order = {name: i for i, name in enumerate(text.columns)}
    for row, cells in found.items():
        reasons.iat[row] = "; ".join(cells[n] for n in sorted(cells, key=order.__getitem__))
    return reasons
