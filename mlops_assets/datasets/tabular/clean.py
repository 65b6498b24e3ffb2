"""clean: rows that break the contract go to quarantine with their reason.

Nothing is dropped silently and nothing is deleted: a file that cannot be
used at all is quarantined whole (its bytes and the reason), a bad row is
quarantined as it was written, with its row number in the file. An exact
duplicate of any earlier row is found in the row index (`row_index`): a run reads
it once and commits the rows it keeps in one compare-and-swap per group of
batches, so a run costs its new rows and a few requests, not a request per row.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandera.errors import SchemaErrors

from mlops_assets.datasets.tabular.catalog import advance_cursor, new_segments, read_cursor
from mlops_assets.datasets.tabular.config import TabularData
from mlops_assets.datasets.tabular.landed import chunks, parquet_file
from mlops_assets.datasets.tabular.row_contract import as_text, pandera_schema
from mlops_assets.datasets.tabular.row_index import Claims, Part, RowIndex, Runs, hash_keys
from mlops_assets.datasets.tabular.row_markers import migrate_markers
from mlops_assets.datasets.tabular.rows import BatchRejected, check_rows, row_hashes
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


GROUP_ROWS = 1_000_000
"""Rows a run cleans before it commits them to the row index and publishes their outputs:
one commit (a few storage requests) per group; the group's outputs wait on local disk."""


def open_index(storage: ObjectStorage, layout: Layout) -> RowIndex:
    """The row index as it is now, a root's per-row markers migrated into it first."""
    index = RowIndex(storage, layout)
    index.refresh()
    # a new root, or one from before the index: look for markers once
    if not index.head.get("markers_migrated") and migrate_markers(storage, layout, index):
        index.refresh()
    index.markers_migrated = True
    return index


def run_clean(storage: ObjectStorage, layout: Layout, dataset: TabularData) -> CleanResult:
    """Clean the batches cataloged since clean's cursor (a batch with an output already, from
    a run cut short or cataloged twice, is skipped)."""
    start = read_cursor(storage, layout, STAGE).get("segment", "")
    batches = []
    segment = start
    for segment, found in new_segments(storage, layout, start):  # noqa: B007 (kept: the last)
        batches += found
    # a root from before the row index (no cursor yet): its cleaned rows get there once
    result = clean_batches(storage, layout, dataset, batches, adopt_cleaned=not start)
    if segment != start:
        advance_cursor(storage, layout, STAGE, {"segment": segment})
    return result


def clean_batches(
    storage: ObjectStorage,
    layout: Layout,
    dataset: TabularData,
    batches: list[dict],
    adopt_cleaned: bool = False,
) -> CleanResult:
    """Clean `batches` in order, a chunk at a time, committing to the row index every
    `GROUP_ROWS` rows. A batch with an output already (a run cut short, one beside this
    one, a batch cataloged twice) is skipped; with `adopt_cleaned`, its kept rows are given
    to the index (a root from before it). Per group the index goes first, the outputs
    after, so a run killed between them is completed by the next (its rows are in the
    index at their own place, so they are not duplicates of themselves)."""
    index = open_index(storage, layout)
    result = CleanResult()
    with tempfile.TemporaryDirectory(prefix="mlops-clean-") as folder:
        group = Group(index, Path(folder))
        for batch in batches:
            output = layout.staged(STAGE, batch["batch_id"], "parquet")
            if storage.exists(output):
                if adopt_cleaned:
                    clean = storage.read_parquet(output, ["row_number", "content_hash"])
                    hashes = clean["content_hash"].tolist()
                    group.adopt(batch, hashes, clean["row_number"].to_numpy())
                continue
            prepared = group.prepare(storage, layout, dataset, batch)
            if prepared.rejected:
                result.batches.append(prepared.summary)
            elif group.rows >= GROUP_ROWS:
                result.batches += group.flush(storage, layout, dataset)
        result.batches += group.flush(storage, layout, dataset)
    return result


@dataclass
class Prepared:
    """A batch checked and looked up, its outputs on local disk until its group commits."""

    batch: dict
    summary: dict[str, Any]
    clean: Path | None = None
    quarantine: Path | None = None
    lost: dict[int, str] = field(default_factory=dict)
    """Row number -> reason, of rows another run kept first (found at the commit)."""

    @property
    def rejected(self) -> bool:
        return bool(self.summary["rejected"])


class Group:
    """Batches of one commit: the rows they claim (sorted parts, with where each is)."""

    def __init__(self, index: RowIndex, folder: Path) -> None:
        self.index, self.folder = index, folder
        self.pending: list[Prepared] = []
        self.claims = Runs()
        self.rows = 0

    def adopt(self, batch: dict, hashes: list[str], numbers: np.ndarray) -> None:
        hi, lo = hash_keys(hashes)
        seen = zip(self.index.lookup(hi, lo), self.claims.lookup(hi, lo), strict=True)
        new = np.array([a is None and b is None for a, b in seen], bool)
        if new.any():
            self.claims.add(
                _part(hi[new], lo[new], batch["batch_id"], batch["source"], numbers[new])
            )

    def prepare(self, storage, layout, dataset, batch) -> Prepared:
        """Check, hash and look up a batch's rows chunk by chunk, writing its clean and
        quarantined rows to local files; a file rejected on any chunk leaves no claim."""
        batch_id, name = batch["batch_id"], batch["source"]
        summary = {
            "batch_id": batch_id,
            "file": name,
            "rows": 0,
            "clean": 0,
            "quarantined": 0,
            "rejected": "",
        }
        prepared = Prepared(batch, summary)
        mine = Runs()
        schemas = output_schemas(dataset)
        out = {kind: self.folder / f"{batch_id}.{kind}.parquet" for kind in schemas}
        writers: dict[str, pq.ParquetWriter] = {}
        try:
            with storage.local_file(batch["raw_key"]) as path:
                for chunk in chunks(path, name, dataset):
                    for kind, frame in self._chunk(dataset, batch, chunk, mine).items():
                        if len(frame):
                            if kind not in writers:
                                writers[kind] = pq.ParquetWriter(out[kind], schemas[kind])
                            writers[kind].write_table(_table(frame, schemas[kind]))
                            summary["clean" if kind == "clean" else "quarantined"] += len(frame)
                    summary["rows"] += len(chunk.frame)
        except BatchRejected as error:
            for writer in writers.values():
                writer.close()
            storage.copy(batch["raw_key"], layout.quarantine(batch_id, batch["file"]))
            storage.write_json(
                layout.quarantine(batch_id, "quarantine.json"),
                {"batch_id": batch_id, "file": name, "scope": "file", "reason": str(error)},
            )
            summary.update(rejected=str(error), rows=0, clean=0, quarantined=0)
            storage.write_parquet(layout.staged(STAGE, batch_id, "parquet"), _empty(dataset))
            return prepared
        for writer in writers.values():
            writer.close()
        prepared.clean = out["clean"] if "clean" in writers else None
        prepared.quarantine = out["quarantine"] if "quarantine" in writers else None
        for part in mine.parts:  # the file is whole: its claims join the group's
            self.claims.add(part)
        self.pending.append(prepared)
        self.rows += summary["rows"]
        return prepared

    def _chunk(self, dataset, batch, chunk, mine: Runs) -> dict[str, pd.DataFrame]:
        batch_id, name = batch["batch_id"], batch["source"]
        frame = chunk.frame
        check = check_rows(frame, dataset)
        reasons = check.reasons
        hashes = row_hashes(check.numeric)
        numbers = chunk.first_row + np.arange(len(frame))
        valid = np.flatnonzero((reasons == "").to_numpy())
        hi, lo = hash_keys(hashes[i] for i in valid)
        found = [self.index.lookup(hi, lo), self.claims.lookup(hi, lo), mine.lookup(hi, lo)]
        claim: list[int] = []
        for k, i in enumerate(valid.tolist()):
            where = found[0][k] or found[1][k] or found[2][k]
            if where is not None:
                if (where[0], where[1]) != (batch_id, int(numbers[i])):  # else: its own
                    reasons.iat[i] = f"exact duplicate of row {where[1]} of {where[2]}"
            else:
                claim.append(k)
        if claim:  # a row twice in this chunk: the first is claimed, the others repeat it
            at = np.array(claim)
            _, firsts = np.unique(np.rec.fromarrays([hi[at], lo[at]]), return_index=True)
            if firsts.size < at.size:
                first_of = {(int(hi[at[j]]), int(lo[at[j]])): at[j] for j in sorted(firsts)}
                for j in np.setdiff1d(np.arange(at.size), firsts):
                    k = first_of[(int(hi[at[j]]), int(lo[at[j]]))]
                    reasons.iat[valid[at[j]]] = (
                        f"exact duplicate of row {numbers[valid[k]]} of {name}"
                    )
                at = np.sort(at[firsts])
            mine.add(_part(hi[at], lo[at], batch_id, name, numbers[valid[at]]))
        bad = (reasons != "").to_numpy()
        quarantined = as_text(frame[bad])
        quarantined.insert(0, "reason", reasons[bad].to_numpy())
        quarantined.insert(0, "row_number", numbers[bad])
        good = check.numeric[~bad][[*dataset.features.columns, dataset.label.column]].copy()
        label = dataset.label.column
        good[label] = good[label].astype(label_dtype(dataset))
        good.insert(0, "row_number", numbers[~bad])
        good["content_hash"] = [h for h, b in zip(hashes, bad, strict=True) if not b]
        return {"clean": good, "quarantine": quarantined}

    def flush(self, storage: ObjectStorage, layout: Layout, dataset: TabularData) -> list[dict]:
        """Commit the group's claims, then publish each batch's outputs."""
        claims, self.claims = self.claims.whole(), Runs()  # the parts go as they merge
        lost = self.index.commit(claims) if len(claims) else {}
        del claims
        by_batch = {p.batch["batch_id"]: p for p in self.pending}
        for (batch_id, number), (_, row, file) in lost.items():
            if batch_id in by_batch:  # else an adopted row: kept before, by an earlier release
                by_batch[batch_id].lost[number] = f"exact duplicate of row {row} of {file}"
        done = []
        for prepared in self.pending:
            if prepared.lost:
                _give_up(storage, dataset, prepared, self.folder)
            done.append(_publish(storage, layout, dataset, prepared))
        self.__init__(self.index, self.folder)
        return done


def _part(hi, lo, batch_id: str, file: str, rows) -> Part:
    """Rows of one batch as a sorted part."""
    claims = Claims()
    claims.add(hi, lo, batch_id, file, rows)
    return claims.part()


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


def _table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def _give_up(storage, dataset, prepared: Prepared, folder: Path) -> None:
    """Move the rows another run kept first from the batch's clean rows to its quarantine,
    as they were written (read again from the raw file: the rare path of two runs at once)."""
    schemas = output_schemas(dataset)
    kept = pq.read_table(prepared.clean).to_pandas()
    lost = kept["row_number"].isin(list(prepared.lost)).to_numpy()
    written = []
    with storage.local_file(prepared.batch["raw_key"]) as path:
        for chunk in chunks(path, prepared.batch["source"], dataset):
            numbers = chunk.first_row + np.arange(len(chunk.frame))
            at = np.isin(numbers, list(prepared.lost))
            if at.any():
                rows = as_text(chunk.frame[at])
                rows.insert(0, "reason", [prepared.lost[int(n)] for n in numbers[at]])
                rows.insert(0, "row_number", numbers[at])
                written.append(rows)
    earlier = [pq.read_table(prepared.quarantine).to_pandas()] if prepared.quarantine else []
    quarantined = pd.concat([*earlier, *written], ignore_index=True).sort_values("row_number")
    prepared.quarantine = folder / f"{prepared.batch['batch_id']}.lost.parquet"
    pq.write_table(_table(quarantined, schemas["quarantine"]), prepared.quarantine)
    pq.write_table(_table(kept[~lost], schemas["clean"]), prepared.clean)
    prepared.summary["clean"] -= int(lost.sum())
    prepared.summary["quarantined"] += int(lost.sum())


def _publish(storage, layout, dataset, prepared: Prepared) -> dict[str, Any]:
    """A batch's quarantined rows, then its clean rows (last: the batch is cleaned once its
    output is there)."""
    batch_id, name = prepared.batch["batch_id"], prepared.batch["source"]
    summary = prepared.summary
    if prepared.quarantine is not None:
        storage.put_file(layout.quarantine(batch_id, "rows.parquet"), prepared.quarantine)
        storage.write_json(
            layout.quarantine(batch_id, "quarantine.json"),
            {"batch_id": batch_id, "file": name, "scope": "rows", "rows": summary["quarantined"]},
        )
    output = layout.staged(STAGE, batch_id, "parquet")
    if prepared.clean is not None:
        storage.put_file(output, prepared.clean)
    else:
        storage.write_parquet(output, _empty(dataset))
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
