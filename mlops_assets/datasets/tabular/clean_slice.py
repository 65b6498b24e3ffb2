"""One slice of a clean run: its batches checked, hashed and looked up, nothing published.

A slice runs in a step of its own (a process, or a pod under the per-step executor),
beside the run's other slices. It reads the row index once, checks each batch chunk by
chunk against the contract, the index and the slice's own earlier rows, and leaves in the
run's work area (`staged/<uc>/_clean_work/<run>/<slice>/`) each batch's candidate clean and
quarantined rows, the rows it claims (a sorted part) and which of its quarantined rows
repeat a row it claims. The commit step (`clean_commit.py`) decides, slice by slice in
catalog order, what is kept: a row a slice claims that an earlier slice (or another run)
kept is given up there. Only a file that cannot be used at all is quarantined here: it
claims nothing, so no other slice can depend on it.
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

from mlops_assets.datasets.tabular.clean_outputs import (
    STAGE,
    as_table,
    duplicate_reason,
    empty_clean,
    label_dtype,
    output_schemas,
)
from mlops_assets.datasets.tabular.config import TabularData
from mlops_assets.datasets.tabular.landed import chunks
from mlops_assets.datasets.tabular.row_contract import as_text
from mlops_assets.datasets.tabular.row_index import Claims, Part, RowIndex, Runs, hash_keys
from mlops_assets.datasets.tabular.rows import BatchRejected, check_rows, row_hashes
from mlops_assets.storage import Layout, ObjectStorage

REPEATS = pa.schema(
    [
        ("batch_id", pa.string()),
        ("row_number", pa.int64()),
        ("of_batch", pa.string()),
        ("of_row", pa.int64()),
    ]
)
"""A quarantined row that repeats a row its own slice claims: if that claim is given up at
the commit, the repeat's reason names where the row was really first seen."""


def summary(batch: dict) -> dict[str, Any]:
    return {
        "batch_id": batch["batch_id"],
        "file": batch["source"],
        "rows": 0,
        "clean": 0,
        "quarantined": 0,
        "rejected": "",
    }


def clean_slice(
    storage: ObjectStorage, layout: Layout, dataset: TabularData, work: str, batches: list[dict]
) -> dict[str, Any]:
    """Prepare `batches` (one slice, in catalog order) and leave what the commit needs under
    `work`; returns the slice's manifest: the index head it looked up in, each batch's
    summary and which candidate outputs it left."""
    index = RowIndex(storage, layout)
    index.refresh()
    with tempfile.TemporaryDirectory(prefix="mlops-clean-") as folder:
        sliced = Slice(index, dataset, Path(folder))
        for batch in batches:
            sliced.prepare(storage, layout, batch)
        return sliced.store(storage, work)


@dataclass
class Prepared:
    """A batch checked and looked up, its outputs on local disk."""

    batch: dict
    summary: dict[str, Any]
    outputs: dict[str, Path] = field(default_factory=dict)


class Slice:
    """The batches of one slice and the rows they claim (sorted parts, with where each is)."""

    def __init__(self, index: RowIndex, dataset: TabularData, folder: Path) -> None:
        self.index, self.dataset, self.folder = index, dataset, folder
        self.prepared: list[Prepared] = []
        self.claims = Runs()
        self.repeats: list[pd.DataFrame] = []

    def prepare(self, storage: ObjectStorage, layout: Layout, batch: dict) -> Prepared:
        """Check, hash and look up a batch's rows chunk by chunk, writing its clean and
        quarantined rows to local files; a file rejected on any chunk leaves no claim."""
        batch_id, name = batch["batch_id"], batch["source"]
        prepared = Prepared(batch, summary(batch))
        mine = Runs()
        repeats: list[pd.DataFrame] = []
        schemas = output_schemas(self.dataset)
        out = {kind: self.folder / f"{batch_id}.{kind}.parquet" for kind in schemas}
        writers: dict[str, pq.ParquetWriter] = {}
        counts = prepared.summary
        try:
            with storage.local_file(batch["raw_key"]) as path:
                for chunk in chunks(path, name, self.dataset):
                    frames, repeated = self._chunk(batch, chunk, mine)
                    repeats.append(repeated)
                    for kind, frame in frames.items():
                        if len(frame):
                            if kind not in writers:
                                writers[kind] = pq.ParquetWriter(out[kind], schemas[kind])
                            writers[kind].write_table(as_table(frame, schemas[kind]))
                            counts["clean" if kind == "clean" else "quarantined"] += len(frame)
                    counts["rows"] += len(chunk.frame)
        except BatchRejected as error:
            for writer in writers.values():
                writer.close()
            storage.copy(batch["raw_key"], layout.quarantine(batch_id, batch["file"]))
            storage.write_json(
                layout.quarantine(batch_id, "quarantine.json"),
                {"batch_id": batch_id, "file": name, "scope": "file", "reason": str(error)},
            )
            counts.update(rejected=str(error), rows=0, clean=0, quarantined=0)
            storage.write_parquet(
                layout.staged(STAGE, batch_id, "parquet"), empty_clean(self.dataset)
            )
            self.prepared.append(prepared)
            return prepared
        for writer in writers.values():
            writer.close()
        prepared.outputs = {kind: out[kind] for kind in writers}
        for part in mine.parts:  # the file is whole: its claims join the slice's
            self.claims.add(part)
        self.repeats += repeats
        self.prepared.append(prepared)
        return prepared

    def _chunk(self, batch, chunk, mine: Runs) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
        batch_id, name = batch["batch_id"], batch["source"]
        dataset, frame = self.dataset, chunk.frame
        check = check_rows(frame, dataset)
        reasons = check.reasons
        hashes = row_hashes(check.numeric)
        numbers = chunk.first_row + np.arange(len(frame))
        valid = np.flatnonzero((reasons == "").to_numpy())
        hi, lo = hash_keys(hashes[i] for i in valid)
        found = [self.index.lookup(hi, lo), self.claims.lookup(hi, lo), mine.lookup(hi, lo)]
        claim: list[int] = []
        repeat: list[tuple[int, str, int]] = []  # (row, of batch, of row) within this slice
        for k, i in enumerate(valid.tolist()):
            where = found[0][k] or found[1][k] or found[2][k]
            if where is not None:
                if (where[0], where[1]) != (batch_id, int(numbers[i])):  # else: its own
                    reasons.iat[i] = duplicate_reason(where[1], where[2])
                    if found[0][k] is None:
                        repeat.append((int(numbers[i]), where[0], where[1]))
            else:
                claim.append(k)
        if claim:  # a row twice in this chunk: the first is claimed, the others repeat it
            at = np.array(claim)
            _, firsts = np.unique(np.rec.fromarrays([hi[at], lo[at]]), return_index=True)
            if firsts.size < at.size:
                first_of = {(int(hi[at[j]]), int(lo[at[j]])): at[j] for j in sorted(firsts)}
                for j in np.setdiff1d(np.arange(at.size), firsts):
                    k = first_of[(int(hi[at[j]]), int(lo[at[j]]))]
                    first = int(numbers[valid[k]])
                    reasons.iat[valid[at[j]]] = duplicate_reason(first, name)
                    repeat.append((int(numbers[valid[at[j]]]), batch_id, first))
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
        repeated = pd.DataFrame(repeat, columns=["row_number", "of_batch", "of_row"])
        repeated.insert(0, "batch_id", batch_id)
        return {"clean": good, "quarantine": quarantined}, repeated

    def store(self, storage: ObjectStorage, work: str) -> dict[str, Any]:
        """Leave the slice's candidate outputs, claims and repeats under `work`."""
        outputs: dict[str, list[str]] = {}
        for prepared in self.prepared:
            batch_id = prepared.batch["batch_id"]
            for kind, path in prepared.outputs.items():
                storage.put_file(f"{work}/{batch_id}.{kind}.parquet", path)
            outputs[batch_id] = sorted(prepared.outputs)
        claims = self.claims.whole()
        if len(claims):
            path = self.folder / "claims.parquet"
            claims.write(path)
            storage.put_file(f"{work}/claims.parquet", path)
        repeats = [r for r in self.repeats if len(r)]
        if repeats:
            path = self.folder / "repeats.parquet"
            table = pa.Table.from_pandas(
                pd.concat(repeats, ignore_index=True), schema=REPEATS, preserve_index=False
            )
            pq.write_table(table, path)
            storage.put_file(f"{work}/repeats.parquet", path)
        return {
            "work": work,
            "token": self.index.token,
            "batches": [p.summary for p in self.prepared],
            "outputs": outputs,
            "claims": bool(len(claims)),
            "repeats": bool(repeats),
        }


def _part(hi, lo, batch_id: str, file: str, rows) -> Part:
    """Rows of one batch as a sorted part."""
    claims = Claims()
    claims.add(hi, lo, batch_id, file, rows)
    return claims.part()
