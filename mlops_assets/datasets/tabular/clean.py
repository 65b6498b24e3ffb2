"""clean: rows that break the contract go to quarantine with their reason.

Nothing is dropped silently and nothing is deleted: a file that cannot be
used at all is quarantined whole (its bytes and the reason), a bad row is
quarantined as it was written, with its row number in the file. An exact
duplicate of any earlier row is found in the row index (`row_index`): a run reads
it once and commits the rows it keeps in one compare-and-swap per group of
batches, so a run costs its new rows and a few requests, not a request per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandera.errors import SchemaErrors

from mlops_assets.datasets.tabular.catalog import advance_cursor, new_segments, read_cursor
from mlops_assets.datasets.tabular.config import TabularData
from mlops_assets.datasets.tabular.row_contract import pandera_schema
from mlops_assets.datasets.tabular.row_index import Claims, RowIndex, hash_keys
from mlops_assets.datasets.tabular.row_markers import migrate_markers
from mlops_assets.datasets.tabular.rows import (
    BatchRejected,
    RowCheck,
    check_rows,
    parse_batch,
    row_hashes,
)
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


GROUP_ROWS = 500_000
"""Rows a run cleans before it commits them to the row index and writes their outputs:
one commit (a few storage requests) per group, the group's rows held in memory."""


def open_index(storage: ObjectStorage, layout: Layout) -> RowIndex:
    """The row index as it is now, a root's per-row markers migrated into it first."""
    index = RowIndex(storage, layout)
    index.refresh()
    if not index.head.get("markers_migrated"):  # a new root, or one from before the index
        if migrate_markers(storage, layout, index):
            index.refresh()
    index.markers_migrated = True
    return index


def run_clean(storage: ObjectStorage, layout: Layout, dataset: TabularData) -> CleanResult:
    """Clean the batches cataloged since clean's cursor (a batch with an output already, from
    a run cut short or cataloged twice, is skipped)."""
    start = read_cursor(storage, layout, STAGE).get("segment", "")
    todo, adopted = [], []
    segment = start
    for segment, batches in new_segments(storage, layout, start):  # noqa: B007 (kept: the last)
        for batch in batches:
            if storage.exists(layout.staged(STAGE, batch["batch_id"], "parquet")):
                if not start:  # a root from before the row index: its rows get there once
                    adopted.append(batch)
                continue
            todo.append(batch)
    result = clean_batches(storage, layout, dataset, todo, adopted)
    if segment != start:
        advance_cursor(storage, layout, STAGE, {"segment": segment})
    return result


def clean_batches(
    storage: ObjectStorage,
    layout: Layout,
    dataset: TabularData,
    batches: list[dict],
    adopted: list[dict] | None = None,
) -> CleanResult:
    """Clean `batches` (each skipped when its output exists), `GROUP_ROWS` rows per commit
    to the row index; `adopted`: batches cleaned before the index, whose kept rows it
    learns. The order per group is index first, outputs after, so a run killed between
    them is completed by the next one (its rows are in the index at their own place)."""
    index = open_index(storage, layout)
    result = CleanResult()
    group = Group(index)
    for batch in adopted or []:
        clean = storage.read_parquet(
            layout.staged(STAGE, batch["batch_id"], "parquet"), ["row_number", "content_hash"]
        )
        group.adopt(batch, clean["content_hash"].tolist(), clean["row_number"].to_numpy())
    for batch in batches:
        if storage.exists(layout.staged(STAGE, batch["batch_id"], "parquet")):
            continue  # cleaned meanwhile, by a run beside this one
        prepared = _prepare(storage, layout, dataset, batch, group)
        if prepared.rejected:
            result.batches.append(prepared.summary)
            continue
        group.pending.append(prepared)
        if group.rows >= GROUP_ROWS:
            result.batches += group.flush(storage, layout, dataset)
    result.batches += group.flush(storage, layout, dataset)
    return result


@dataclass
class Prepared:
    """A batch checked and looked up, waiting for its group's commit."""

    batch: dict
    summary: dict[str, Any]
    text: pd.DataFrame | None = None
    check: RowCheck | None = None
    hashes: list[str] = field(default_factory=list)
    repeats: list[tuple[int, str]] = field(default_factory=list)
    """(row position, hash) of rows repeating one kept earlier in this group."""

    @property
    def rejected(self) -> bool:
        return bool(self.summary["rejected"])


class Group:
    """Batches of one commit: what they claim, and the rows seen first in them."""

    def __init__(self, index: RowIndex) -> None:
        self.index = index
        self.pending: list[Prepared] = []
        self.claims = Claims()
        self.owner: list[tuple[int, np.ndarray]] = []
        """Per `claims.add`: the pending batch (-1 for an adopted one) and row positions."""
        self.first: dict[str, str] = {}
        """Hash -> where this group first has it ('row n of file')."""
        self.rows = 0

    def adopt(self, batch: dict, hashes: list[str], numbers: np.ndarray) -> None:
        hi, lo = hash_keys(hashes)
        new = np.array([w is None for w in self.index.lookup(hi, lo)], bool)
        if new.any():
            self.claims.add(hi[new], lo[new], batch["batch_id"], batch["source"], numbers[new])
            self.owner.append((-1, np.flatnonzero(new)))

    def flush(self, storage: ObjectStorage, layout: Layout, dataset: TabularData) -> list[dict]:
        """Commit the group's claims, then write each batch's outputs."""
        lost = self.index.commit(self.claims) if self.claims.hi else {}
        if lost:
            positions = [(p, i) for p, at in self.owner for i in at]
            for n, (_, row, file) in lost.items():
                p, i = positions[n]
                if p < 0:
                    continue  # an adopted row: kept before, by an earlier release
                prepared = self.pending[p]
                prepared.check.reasons.iat[i] = f"exact duplicate of row {row} of {file}"
                self.first[prepared.hashes[i]] = f"row {row} of {file}"
        done = []
        for prepared in self.pending:
            for i, digest in prepared.repeats:
                prepared.check.reasons.iat[i] = f"exact duplicate of {self.first[digest]}"
            done.append(_write(storage, layout, dataset, prepared))
        self.__init__(self.index)
        return done


def _prepare(storage, layout, dataset, batch, group: Group) -> Prepared:
    """Parse, check and hash a batch's rows; look them up in the index and in the group."""
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
        return Prepared(batch, summary)
    del data
    check = check_rows(text, dataset)
    reasons = check.reasons
    hashes = row_hashes(check.numeric)
    prepared = Prepared(batch, summary, text, check, hashes)
    valid = np.flatnonzero((reasons == "").to_numpy())
    hi, lo = hash_keys(hashes[i] for i in valid)
    seen = group.index.lookup(hi, lo)
    claim: list[int] = []
    for k, i in enumerate(valid.tolist()):
        where, digest = seen[k], hashes[i]
        if where is not None:
            if (where[0], where[1]) != (batch_id, i + 1):  # else: this row's own (cut short)
                reasons.iat[i] = f"exact duplicate of row {where[1]} of {where[2]}"
        elif digest in group.first:
            prepared.repeats.append((i, digest))
        else:
            group.first[digest] = f"row {i + 1} of {name}"
            claim.append(k)
    if claim:
        at = np.array(claim)
        group.claims.add(hi[at], lo[at], batch_id, name, valid[at] + 1)
        group.owner.append((len(group.pending), valid[at]))
    group.rows += len(text)
    return prepared


def _write(storage, layout, dataset, prepared: Prepared) -> dict[str, Any]:
    """A batch's quarantined rows, then its clean rows (last: the batch is cleaned once its
    output is there)."""
    batch_id, name = prepared.batch["batch_id"], prepared.batch["source"]
    text, check, hashes = prepared.text, prepared.check, prepared.hashes
    reasons = check.reasons
    row_numbers = np.arange(1, len(text) + 1)
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
    summary = prepared.summary
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
