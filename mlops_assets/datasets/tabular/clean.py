"""clean: rows that break the contract go to quarantine with their reason.

Nothing is dropped silently and nothing is deleted: a file that cannot be
used at all is quarantined whole (its bytes and the reason), a bad row is
quarantined as it was written, with its row number in the file. An exact
duplicate of any earlier row is found in the row index (`row_index`). A run is
planned (the new batches, in slices), its slices are prepared, each in a step of
its own (`clean_slice`), and one commit (`clean_commit`) keeps their rows in catalog
order, so a run costs its new rows and a few requests, not a request per row, and
the rows kept do not depend on how many workers prepared them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pandera.errors import SchemaErrors

from mlops_assets.datasets.tabular.catalog import advance_cursor, new_segments, read_cursor
from mlops_assets.datasets.tabular.clean_commit import commit_slices, slice_work
from mlops_assets.datasets.tabular.clean_outputs import STAGE
from mlops_assets.datasets.tabular.clean_slice import clean_slice
from mlops_assets.datasets.tabular.config import TabularData
from mlops_assets.datasets.tabular.landed import parquet_file
from mlops_assets.datasets.tabular.row_contract import pandera_schema
from mlops_assets.datasets.tabular.row_index import Claims, RowIndex, Runs, hash_keys
from mlops_assets.datasets.tabular.row_markers import migrate_markers
from mlops_assets.storage import Layout, ObjectStorage


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


def open_index(storage: ObjectStorage, layout: Layout) -> RowIndex:
    """The row index's head (one request), a root's per-row markers migrated into it first."""
    index = RowIndex(storage, layout)
    index.read_head()
    # a new root, or one from before the index: look for markers once
    if not index.head.get("markers_migrated"):
        index.refresh()
        if migrate_markers(storage, layout, index):
            index.refresh()
    index.markers_migrated = True
    return index


@dataclass
class Plan:
    """What one clean run takes: the batches cataloged since clean's cursor, in slices."""

    start: str
    """Clean's cursor when the run began ("" for none yet)."""
    segment: str
    """The last catalog segment the run takes whole: the cursor once it is committed."""
    slices: list[list[dict]]

    def record(self) -> dict[str, Any]:
        return {"start": self.start, "segment": self.segment, "slices": self.slices}

    @classmethod
    def of(cls, record: dict[str, Any]) -> Plan:
        return cls(record["start"], record["segment"], record["slices"])


def plan_clean(storage: ObjectStorage, layout: Layout, dataset: TabularData) -> Plan:
    """The batches cataloged since clean's cursor, in slices of about `dataset.slice_mb` (a
    batch with an output already, from a run cut short or cataloged twice, is left out)."""
    start = read_cursor(storage, layout, STAGE).get("segment", "")
    batches = []
    segment = start
    for segment, found in new_segments(storage, layout, start):  # noqa: B007 (kept: the last)
        batches += found
    # a root from before the row index (no cursor yet): its cleaned rows get there once
    slices = plan_batches(storage, layout, dataset, batches, adopt_cleaned=not start)
    return Plan(start, segment, slices)


def plan_batches(
    storage: ObjectStorage,
    layout: Layout,
    dataset: TabularData,
    batches: list[dict],
    adopt_cleaned: bool = False,
) -> list[list[dict]]:
    """`batches` to clean, in order, cut into slices of about `dataset.slice_bytes`. A batch
    with an output already is left out; with `adopt_cleaned`, its kept rows are given to
    the index first (a root from before it)."""
    index = open_index(storage, layout)
    adopted = Runs()
    todo: list[dict] = []
    seen: set[str] = set()
    for batch in batches:
        if batch["batch_id"] in seen:
            continue  # cataloged twice (a repaired segment)
        seen.add(batch["batch_id"])
        output = layout.staged(STAGE, batch["batch_id"], "parquet")
        if not storage.exists(output):
            todo.append(batch)
        elif adopt_cleaned:
            if not index.parts and index.rows:
                index.refresh()
            clean = storage.read_parquet(output, ["row_number", "content_hash"])
            hi, lo = hash_keys(clean["content_hash"].tolist())
            seen_at = zip(index.lookup(hi, lo), adopted.lookup(hi, lo), strict=True)
            new = np.array([a is None and b is None for a, b in seen_at], bool)
            if new.any():
                numbers = clean["row_number"].to_numpy()[new]
                claims = Claims()
                claims.add(hi[new], lo[new], batch["batch_id"], batch["source"], numbers)
                adopted.add(claims.part())
    if len(adopted):
        index.commit(adopted.whole())  # kept before, by an earlier release: first in line
    slices: list[list[dict]] = []
    size = 0
    for batch in todo:
        if not slices or size + int(batch.get("bytes", 0)) > dataset.slice_bytes:
            slices.append([])
            size = 0
        slices[-1].append(batch)
        size += int(batch.get("bytes", 0))
    return slices


def run_clean(storage: ObjectStorage, layout: Layout, dataset: TabularData) -> CleanResult:
    """Clean the batches cataloged since clean's cursor in this process: plan, each slice in
    turn, commit (the clean asset runs the same three as steps of their own)."""
    plan = plan_clean(storage, layout, dataset)
    result = clean_planned(storage, layout, dataset, plan.slices)
    if plan.segment != plan.start:
        advance_cursor(storage, layout, STAGE, {"segment": plan.segment})
    return result


def clean_batches(
    storage: ObjectStorage,
    layout: Layout,
    dataset: TabularData,
    batches: list[dict],
    adopt_cleaned: bool = False,
) -> CleanResult:
    """Clean `batches` in order, in this process (leaving clean's cursor alone)."""
    slices = plan_batches(storage, layout, dataset, batches, adopt_cleaned)
    return clean_planned(storage, layout, dataset, slices)


def clean_planned(
    storage: ObjectStorage, layout: Layout, dataset: TabularData, slices: list[list[dict]]
) -> CleanResult:
    run_id = uuid.uuid4().hex
    manifests = [
        clean_slice(storage, layout, dataset, slice_work(layout, run_id, number), batches)
        for number, batches in enumerate(slices)
    ]
    return CleanResult(commit_slices(storage, layout, dataset, slices, manifests))


def contract_violations(
    storage: ObjectStorage, layout: Layout, batch_ids: list[str], dataset: TabularData
) -> list[str]:
    """Why the clean rows of `batch_ids` break the contract (an empty list proves they do
    not): the same pandera schema clean holds every row to, and no row twice; read a row
    group at a time."""
    columns = [*dataset.features.columns, dataset.label.column]
    schema = pandera_schema(dataset, columns)
    numeric = {c.name: "float64" for c in dataset.schema if c.name in columns and not c.categorical}
    broken: dict[tuple[str, str], int] = {}
    keys: list[np.ndarray] = []
    for batch_id in batch_ids:
        with storage.local_file(layout.staged(STAGE, batch_id, "parquet")) as path:
            for batch in parquet_file(path).iter_batches(columns=[*columns, "content_hash"]):
                frame = batch.to_pandas()
                try:
                    schema.validate(frame[columns].astype(numeric), lazy=True)
                except SchemaErrors as errors:
                    cases = errors.failure_cases
                    for (column, check), group in cases.groupby(["column", "check"]):
                        broken[(column, check)] = (
                            broken.get((column, check), 0) + group["index"].nunique()
                        )
                hi, lo = hash_keys(frame["content_hash"].tolist())
                keys.append(np.rec.fromarrays([hi, lo]))
    problems = [
        f"{n} rows break {check} in {column}" for (column, check), n in sorted(broken.items())
    ]
    if keys:
        every = np.concatenate(keys)
        repeated = every.size - np.unique(every).size
        if repeated:
            problems.append(f"{repeated} duplicated rows")
    return problems
