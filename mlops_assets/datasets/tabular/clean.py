"""clean: rows that break the contract go to quarantine with their reason.

Nothing is dropped silently and nothing is deleted: a file that cannot be
used at all is quarantined whole (its bytes and the reason), a bad row is
quarantined as it was written, with its row number in the file. An exact
duplicate of any earlier row is found by one create-if-absent write of the row's
marker (`staged/<uc>/_rows/`), so a run costs its new rows, not the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandera.errors import SchemaErrors

from mlops_assets.datasets.tabular.catalog import advance_cursor, new_segments, read_cursor
from mlops_assets.datasets.tabular.config import TabularData
from mlops_assets.datasets.tabular.landing_index import each
from mlops_assets.datasets.tabular.row_contract import pandera_schema
from mlops_assets.datasets.tabular.rows import BatchRejected, check_rows, parse_batch, row_hashes
from mlops_assets.storage import Layout, ObjectStorage

STAGE = "clean"


@dataclass
class CleanResult:
    batches: list[dict[str, Any]] = field(default_factory=list)
    """Per processed batch: batch_id, file, rows, clean, quarantined, rejected (reason or '')."""

    @property
    def quarantined_rows(self) -> int:
        return sum(b["quarantined"] for b in self.batches)

    def kept_nothing(self) -> str:
        """Why a run whose new batches held rows kept none of them ('' when it kept some, or
        there were none): every row quarantined is a contract the data does not meet, not
        a success."""
        rows = sum(b["rows"] for b in self.batches)
        if not rows or any(b["clean"] for b in self.batches):
            return ""  # no new row at all (an empty file is observe's to report): not this
        rejected = [b for b in self.batches if b["rejected"]]
        why = f"; {rejected[0]['file']}: {rejected[0]['rejected']}" if rejected else ""
        return (
            f"{len(self.batches)} new file(s) with {rows} row(s) and not one clean row: every "
            f"row or file went to quarantine (see quarantine_examples){why}"
        )


def clean_columns(dataset: TabularData) -> list[str]:
    return ["row_number", *dataset.features.columns, dataset.label.column, "content_hash"]


def run_clean(storage: ObjectStorage, layout: Layout, dataset: TabularData) -> CleanResult:
    """Clean the batches cataloged since clean's cursor (a batch with an output already, from
    a run cut short or cataloged twice, is skipped)."""
    start = read_cursor(storage, layout, STAGE).get("segment", "")
    result = CleanResult()
    segment = start
    for segment, batches in new_segments(storage, layout, start):  # noqa: B007 (kept: the last)
        for batch in batches:
            output = layout.staged(STAGE, batch["batch_id"], "parquet")
            if storage.exists(output):
                if not start:  # a root from before row markers: its rows get theirs once
                    _mark_rows(storage, layout, batch, storage.read_parquet(output))
                continue
            result.batches.append(_clean_batch(storage, layout, dataset, batch))
    if segment != start:
        advance_cursor(storage, layout, STAGE, {"segment": segment})
    return result


def _mark_rows(storage: ObjectStorage, layout: Layout, batch: dict, clean: pd.DataFrame) -> None:
    rows = zip(clean["content_hash"], clean["row_number"], strict=True)
    each(storage, lambda row: _first_seen(storage, layout, row[0], batch, int(row[1])), rows)


def _first_seen(
    storage: ObjectStorage, layout: Layout, digest: str, batch: dict, number: int
) -> str | None:
    """Claim `digest` for this row; returns where it was seen first when another row (of an
    earlier batch, or earlier in this one) claimed it: compare-and-swap, so two runs at
    once never both keep the same row. A claim of this very row (a run cut short) holds."""
    mine = {"batch_id": batch["batch_id"], "row": number, "file": batch["source"]}
    key = layout.row_marker(digest)
    if storage.write_json(key, mine, if_absent=True):
        return None
    first = storage.read_json(key)
    if (first.get("batch_id"), first.get("row")) == (mine["batch_id"], number):
        return None
    return f"row {first.get('row')} of {first.get('file')}"


def _clean_batch(storage, layout, dataset, batch) -> dict[str, Any]:
    batch_id, name = batch["batch_id"], batch["source"]
    summary = {
        "batch_id": batch_id,
        "file": name,
        "rows": 0,
        "clean": 0,
        "quarantined": 0,
        "rejected": "",
    }
    data = storage.read_bytes(batch["raw_key"])
    try:
        text = parse_batch(data, name, dataset)
    except BatchRejected as error:
        storage.write_bytes(layout.quarantine(batch_id, batch["file"]), data)
        storage.write_json(
            layout.quarantine(batch_id, "quarantine.json"),
            {"batch_id": batch_id, "file": name, "scope": "file", "reason": str(error)},
        )
        summary["rejected"] = str(error)
        storage.write_parquet(layout.staged(STAGE, batch_id, "parquet"), _empty(dataset))
        return summary

    check = check_rows(text, dataset)
    reasons = check.reasons.copy()
    hashes = row_hashes(check.numeric)
    row_numbers = np.arange(1, len(text) + 1)
    # within the batch first (no storage call), then one claim per distinct row, as many
    # at once as the backend gains from (S3: one conditional PUT each)
    claims: dict[str, int] = {}
    repeats: list[tuple[int, str]] = []
    for i, digest in enumerate(hashes):
        if reasons.iat[i]:
            continue
        if digest in claims:
            repeats.append((i, digest))
        else:
            claims[digest] = i
    found = each(
        storage,
        lambda item: _first_seen(storage, layout, item[0], batch, int(row_numbers[item[1]])),
        claims.items(),
    )
    first_of: dict[str, str] = {}
    for (digest, i), first in zip(claims.items(), found, strict=True):
        if first:
            reasons.iat[i] = f"exact duplicate of {first}"
        first_of[digest] = first or f"row {row_numbers[i]} of {name}"
    for i, digest in repeats:  # the same row again in this file: a duplicate of the first
        reasons.iat[i] = f"exact duplicate of {first_of[digest]}"
    bad = (reasons != "").to_numpy()
    if bad.any():
        rows = text[bad].copy()
        rows.insert(0, "reason", reasons[bad].to_numpy())
        rows.insert(0, "row_number", row_numbers[bad])
        storage.write_parquet(layout.quarantine(batch_id, "rows.parquet"), rows)
        storage.write_json(
            layout.quarantine(batch_id, "quarantine.json"),
            {"batch_id": batch_id, "file": name, "scope": "rows", "rows": int(bad.sum())},
        )
    good = check.numeric[~bad][[*dataset.features.columns, dataset.label.column]].copy()
    label = dataset.label.column
    good[label] = good[label].astype(label_dtype(dataset))
    good.insert(0, "row_number", row_numbers[~bad])
    good["content_hash"] = [h for h, b in zip(hashes, bad, strict=True) if not b]
    storage.write_parquet(layout.staged(STAGE, batch_id, "parquet"), good)
    summary.update(rows=len(text), clean=int((~bad).sum()), quarantined=int(bad.sum()))
    return summary


def label_dtype(dataset: TabularData) -> str:
    """How a clean label is stored: int64 class ids, float64 targets, text class names."""
    kind = dataset.label_spec.type
    return {"integer": "int64", "boolean": "int64", "number": "float64"}.get(kind, "object")


def _empty(dataset: TabularData) -> pd.DataFrame:
    specs = {c.name: c for c in dataset.schema}
    columns: dict[str, pd.Series] = {"row_number": pd.Series(dtype="int64")}
    for name in clean_columns(dataset)[1:-1]:
        dtype = "object" if specs[name].categorical else "float64"
        columns[name] = pd.Series(dtype=dtype)
    columns[dataset.label.column] = pd.Series(dtype=label_dtype(dataset))
    columns["content_hash"] = pd.Series(dtype="object")
    return pd.DataFrame(columns)


def contract_violations(frame: pd.DataFrame, dataset: TabularData) -> list[str]:
    """Why clean rows break the contract (an empty list proves they do not): the same
    pandera schema clean holds every row to, and no row twice."""
    problems = []
    columns = [*dataset.features.columns, dataset.label.column]
    typed = frame[columns].astype(
        {c.name: "float64" for c in dataset.schema if c.name in columns and not c.categorical}
    )
    try:
        pandera_schema(dataset, columns).validate(typed, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
        for (column, check), group in cases.groupby(["column", "check"], sort=True):
            rows = group["index"].nunique()
            problems.append(f"{rows} rows break {check} in {column}")
    duplicated = frame["content_hash"].duplicated()
    if duplicated.any():
        problems.append(f"{int(duplicated.sum())} duplicated rows")
    return problems
