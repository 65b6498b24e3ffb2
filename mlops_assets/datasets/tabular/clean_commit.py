"""The commit of a clean run: its slices' rows into the row index, in catalog order, then
their outputs published.

Slices are prepared at once, each against the index as it was, so two slices can claim the
same row. The commit takes them one at a time in catalog order: a slice's claims go into
the index by compare-and-swap (`RowIndex.commit`), and the claims an earlier slice, or
another run, kept first come back lost; those rows move from the batch's clean rows to its
quarantine, naming where they were first seen, and so do the reasons of the rows that
repeated them. Then the slice's outputs are published, its clean rows last, so a batch is
cleaned once its output is there. Whatever the number of workers, the rows kept are those
one process cleaning the batches in order would keep.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from mlops_assets.datasets.tabular.clean_outputs import (
    STAGE,
    as_table,
    duplicate_reason,
    empty_clean,
    output_schemas,
)
from mlops_assets.datasets.tabular.config import TabularData
from mlops_assets.datasets.tabular.landed import chunks
from mlops_assets.datasets.tabular.row_contract import as_text
from mlops_assets.datasets.tabular.row_index import Location, RowIndex, read_part
from mlops_assets.errors import MlopsError
from mlops_assets.storage import Layout, ObjectStorage

KINDS = ("clean", "quarantine")
_RUN = re.compile(r"[A-Za-z0-9-]{1,64}")
_SLICE = re.compile(r"slice_[0-9]{1,6}")


class CleanCommitError(MlopsError, RuntimeError):
    """A slice's manifest does not describe the slice the plan gave it."""


def slice_work(layout: Layout, run_id: str, number: int) -> str:
    """Where slice `number` of run `run_id` leaves what the commit needs."""
    return layout.clean_work(run_id, f"slice_{number:06d}")


def is_work(layout: Layout, key: object) -> bool:
    """Whether `key` is a slice's work area of this use case (a manifest is data: it may
    name nothing else)."""
    prefix = layout.clean_work("") + "/"
    if not isinstance(key, str) or not key.startswith(prefix):
        return False
    parts = key[len(prefix) :].split("/")
    return len(parts) == 2 and bool(_RUN.fullmatch(parts[0]) and _SLICE.fullmatch(parts[1]))


def left_behind(
    storage: ObjectStorage, layout: Layout, finished: Callable[[str], bool]
) -> list[str]:
    """Delete the work areas of runs that `finished` says are over (a run whose slice failed
    never reached its commit); returns their run ids. A run still going, or one the caller
    does not know of, keeps its own."""
    swept = []
    for run_id in storage.folders(layout.clean_work("")):
        if _RUN.fullmatch(run_id) and finished(run_id):
            left = [i.key for i in storage.list(layout.clean_work(run_id))]
            storage.delete_many(left)
            storage.remove_empty(layout.clean_work(run_id))
            if left:
                swept.append(run_id)
    return swept


def check_manifest(layout: Layout, batches: list[dict], manifest: Any) -> None:
    """Refuse a manifest that does not describe these batches, in this order, in a work
    area of this use case."""
    where = "the manifest of a clean slice"
    if not isinstance(manifest, dict) or not is_work(layout, manifest.get("work")):
        raise CleanCommitError(f"{where} names no work area of {layout.use_case}: refused")
    ids = [b["batch_id"] for b in batches]
    summaries = manifest.get("batches")
    if (
        not isinstance(summaries, list)
        or [s.get("batch_id") if isinstance(s, dict) else None for s in summaries] != ids
    ):
        raise CleanCommitError(f"{where} at {manifest['work']} is not of its planned batches")
    outputs = manifest.get("outputs")
    if not isinstance(outputs, dict) or not all(
        isinstance(kinds, list) and set(kinds) <= set(KINDS) for kinds in outputs.values()
    ):
        raise CleanCommitError(f"{where} at {manifest['work']} names unknown outputs")


def ordered(slices: list[list[dict]], manifests: list[Any]) -> list[dict]:
    """The slices' manifests in plan order (a collect's order is its own), one per slice."""
    by_number = {m.get("slice"): m for m in manifests if isinstance(m, dict)}
    if len(manifests) != len(slices) or set(by_number) != set(range(len(slices))):
        raise CleanCommitError(
            f"{len(manifests)} clean slice manifest(s) for {len(slices)} planned slice(s)"
        )
    return [by_number[number] for number in range(len(slices))]


def commit_slices(
    storage: ObjectStorage,
    layout: Layout,
    dataset: TabularData,
    slices: list[list[dict]],
    manifests: list[dict],
) -> list[dict[str, Any]]:
    """Commit each slice (its planned batches, and the manifest its step returned) in
    order; returns every batch's summary. The work areas go once all are published."""
    index = RowIndex(storage, layout)
    index.read_head()
    index.markers_migrated = True  # the plan migrated any markers before a slice looked
    start, whole = index.token, False
    done: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mlops-commit-") as folder:
        for batches, manifest in zip(slices, manifests, strict=True):
            check_manifest(layout, batches, manifest)
            work = manifest["work"]
            claims = read_part(storage, f"{work}/claims.parquet") if manifest["claims"] else None
            if manifest["token"] != start and not whole:
                index.refresh()  # another run committed since the slice looked: check all
                whole = True
            # what the slice did not see: what this commit added (or, read whole, everything)
            lost = index.commit(claims, list(index.parts.values())) if claims else {}
            renamed = _renamed(storage, work, lost) if lost and manifest["repeats"] else {}
            for batch, summary in zip(batches, manifest["batches"], strict=True):
                if not summary["rejected"]:
                    mine = {row: w for (b, row), w in lost.items() if b == batch["batch_id"]}
                    outputs = manifest["outputs"].get(batch["batch_id"], [])
                    _publish(
                        storage, layout, dataset, batch, summary, work, outputs,
                        mine, renamed.get(batch["batch_id"], {}), Path(folder),
                    )  # fmt: skip
                done.append(summary)
    for manifest in manifests:
        storage.delete_many([i.key for i in storage.list(manifest["work"])])
        storage.remove_empty(manifest["work"].rsplit("/", 1)[0])  # the run's folder
    return done


def _renamed(
    storage: ObjectStorage, work: str, lost: dict[tuple[str, int], Location]
) -> dict[str, dict[int, str]]:
    """Per batch, row -> new reason, of the quarantined rows that repeated a lost claim: they
    repeat the row where it was really first seen."""
    with storage.local_file(f"{work}/repeats.parquet") as path:
        repeats = pq.read_table(path).to_pandas()
    renamed: dict[str, dict[int, str]] = {}
    for batch_id, row, of_batch, of_row in repeats.itertuples(index=False):
        where = lost.get((of_batch, int(of_row)))
        if where is not None:
            renamed.setdefault(batch_id, {})[int(row)] = duplicate_reason(where[1], where[2])
    return renamed


def _publish(
    storage: ObjectStorage,
    layout: Layout,
    dataset: TabularData,
    batch: dict,
    summary: dict[str, Any],
    work: str,
    outputs: list[str],
    lost: dict[int, Location],
    renamed: dict[int, str],
    folder: Path,
) -> None:
    """A batch's quarantined rows, then its clean rows (last: the batch is cleaned once its
    output is there); copied as the slice left them, or rewritten when rows were lost."""
    batch_id = batch["batch_id"]
    candidate = {kind: f"{work}/{batch_id}.{kind}.parquet" for kind in outputs}
    output = layout.staged(STAGE, batch_id, "parquet")
    quarantine = layout.quarantine(batch_id, "rows.parquet")
    # rewritten here when rows were lost (stored from local files), else as the slice left
    # them (a server-side copy)
    paths = (
        _rewrite(storage, dataset, batch, summary, candidate, lost, renamed, folder)
        if (lost or renamed)
        else None
    )
    have = set(candidate if paths is None else paths)

    def store(kind: str, key: str) -> None:
        if paths is None:
            storage.copy(candidate[kind], key)
        else:
            storage.put_file(key, paths[kind])

    if "quarantine" in have:
        store("quarantine", quarantine)
    if summary["quarantined"]:
        record = {
            "batch_id": batch_id,
            "file": batch["source"],
            "scope": "rows",
            "rows": summary["quarantined"],
        }
        storage.write_json(layout.quarantine(batch_id, "quarantine.json"), record)
    if "clean" in have:
        store("clean", output)
    else:
        storage.write_parquet(output, empty_clean(dataset))


def _rewrite(storage, dataset, batch, summary, candidate, lost, renamed, folder) -> dict:
    """The batch's outputs with the lost rows moved from its clean rows to its quarantine,
    as they were written (read again from the raw file: the rare path), and the repeats'
    reasons renamed."""
    schemas = output_schemas(dataset)
    batch_id = batch["batch_id"]
    frames: dict[str, pd.DataFrame] = {}
    for kind, key in candidate.items():
        with storage.local_file(key) as path:
            frames[kind] = pq.read_table(path).to_pandas()
    kept = frames.get("clean")
    written = []
    if lost:
        with storage.local_file(batch["raw_key"]) as path:
            for chunk in chunks(path, batch["source"], dataset):
                numbers = chunk.first_row + np.arange(len(chunk.frame))
                at = np.isin(numbers, list(lost))
                if at.any():
                    rows = as_text(chunk.frame[at])
                    reasons = [duplicate_reason(*lost[int(n)][1:]) for n in numbers[at]]
                    rows.insert(0, "reason", reasons)
                    rows.insert(0, "row_number", numbers[at])
                    written.append(rows)
    earlier = [frames["quarantine"]] if "quarantine" in frames else []
    quarantined = pd.concat([*earlier, *written], ignore_index=True) if earlier or written else None
    paths: dict[str, Path] = {}
    if quarantined is not None:
        if renamed:
            at = quarantined["row_number"].map(renamed)
            quarantined["reason"] = at.fillna(quarantined["reason"])
        quarantined = quarantined.sort_values("row_number", kind="stable")
        paths["quarantine"] = folder / f"{batch_id}.quarantine.parquet"
        pq.write_table(as_table(quarantined, schemas["quarantine"]), paths["quarantine"])
    if kept is not None:
        gone = kept["row_number"].isin(list(lost)).to_numpy()
        kept = kept[~gone]
        summary["clean"] -= int(gone.sum())
        summary["quarantined"] += int(gone.sum())
        if len(kept):
            paths["clean"] = folder / f"{batch_id}.clean.parquet"
            pq.write_table(as_table(kept, schemas["clean"]), paths["clean"])
    return paths
