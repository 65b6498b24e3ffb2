"""clean: rows that break the contract go to quarantine with their reason.

Nothing is dropped silently and nothing is deleted: a file that cannot be
used at all is quarantined whole (its bytes and the reason), a bad row is
quarantined as it was written, with its row number in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.kinds.tabular.catalog import load_catalog, staged_ids
from mlops_assets.kinds.tabular.dataset import TabularDataset
from mlops_assets.kinds.tabular.rows import BatchRejected, check_rows, parse_batch, row_hashes
from mlops_assets.storage import Layout, ObjectStorage

STAGE = "clean"


@dataclass
class CleanResult:
    batches: list[dict[str, Any]] = field(default_factory=list)
    """Per processed batch: batch_id, file, rows, clean, quarantined, rejected (reason or '')."""

    @property
    def quarantined_rows(self) -> int:
        return sum(b["quarantined"] for b in self.batches)


def clean_columns(dataset: TabularDataset) -> list[str]:
    return ["row_number", *dataset.columns, "content_hash"]


def run_clean(storage: ObjectStorage, layout: Layout, dataset: TabularDataset) -> CleanResult:
    catalog = load_catalog(storage, layout)
    done = staged_ids(storage, layout, STAGE)
    files = {b["batch_id"]: b["source"] for b in catalog}
    seen: dict[str, str] = {}  # content hash -> "row N of FILE", over every earlier clean row
    for batch_id in (b["batch_id"] for b in catalog if b["batch_id"] in done):
        earlier = storage.read_parquet(
            layout.staged(STAGE, batch_id, "parquet"), columns=["row_number", "content_hash"]
        )
        for number, digest in zip(earlier["row_number"], earlier["content_hash"], strict=True):
            seen.setdefault(digest, f"row {number} of {files[batch_id]}")

    result = CleanResult()
    for batch in (b for b in catalog if b["batch_id"] not in done):
        result.batches.append(_clean_batch(storage, layout, dataset, batch, seen))
    return result


def _clean_batch(storage, layout, dataset, batch, seen) -> dict[str, Any]:
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
    for i, digest in enumerate(hashes):
        if reasons.iat[i]:
            continue
        if digest in seen:
            reasons.iat[i] = f"exact duplicate of {seen[digest]}"
        else:
            seen[digest] = f"row {row_numbers[i]} of {name}"
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
    good = check.numeric[~bad].copy()
    good[dataset.label.column] = good[dataset.label.column].astype("int64")
    good.insert(0, "row_number", row_numbers[~bad])
    good["content_hash"] = [h for h, b in zip(hashes, bad, strict=True) if not b]
    storage.write_parquet(layout.staged(STAGE, batch_id, "parquet"), good)
    summary.update(rows=len(text), clean=int((~bad).sum()), quarantined=int(bad.sum()))
    return summary


def _empty(dataset: TabularDataset) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in clean_columns(dataset)})
    return frame.astype(
        {"row_number": "int64", dataset.label.column: "int64", "content_hash": "object"}
    )


def contract_violations(frame: pd.DataFrame, dataset: TabularDataset) -> list[str]:
    """Why clean rows break the contract (an empty list proves they do not)."""
    problems = []
    features = frame[dataset.features.columns]
    label = frame[dataset.label.column]
    if features.isna().any().any() or label.isna().any():
        problems.append(f"{int(features.isna().any(axis=1).sum())} rows with missing values")
    out = ((features < dataset.features.min) | (features > dataset.features.max)).any(axis=1)
    if out.any():
        problems.append(f"{int(out.sum())} rows with a feature outside the range")
    bad_label = (label < dataset.label.min) | (label > dataset.label.max) | (label % 1 != 0)
    if bad_label.any():
        problems.append(f"{int(bad_label.sum())} rows with a label outside the classes")
    duplicated = frame["content_hash"].duplicated()
    if duplicated.any():
        problems.append(f"{int(duplicated.sum())} duplicated rows")
    return problems
