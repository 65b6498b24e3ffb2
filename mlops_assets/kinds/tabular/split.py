"""split: train / validation / test by a stable hash of the row id.

A row's split depends on its id alone, so it never changes as data grows and
the test set stays comparable across model versions. Each batch is cut into
its parts once (`staged/<uc>/split/<fractions>/<batch_id>/`); a dataset
version is a manifest over parts, its id a content hash, and the Dagster data
version of the asset.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.errors import MlopsError
from mlops_assets.kinds.tabular.catalog import catalog_state, load_catalog, staged_ids
from mlops_assets.kinds.tabular.dataset import SplitConfig, TabularDataset
from mlops_assets.storage import Layout, ObjectStorage, safe_key

SPLITS = ("train", "val", "test")


class EmptyDatasetError(MlopsError, RuntimeError):
    """No clean row exists yet, so there is nothing to split."""


@dataclass
class SplitResult:
    version: str
    manifest: dict[str, Any]
    previous: dict[str, Any] | None
    created: bool
    new_ids: dict[str, set[str]] = field(default_factory=dict)
    """Row ids of the parts this run cut, per split."""


def hash_fraction(row_ids: pd.Series) -> np.ndarray:
    """A uniform number in [0, 1) per row id, the same on every machine and version."""
    return (
        np.array(
            [
                int.from_bytes(hashlib.blake2b(r.encode(), digest_size=8).digest(), "big")
                for r in row_ids
            ],
            dtype="float64",
        )
        / 2.0**64
    )


def assign(row_ids: pd.Series, config: SplitConfig) -> np.ndarray:
    u = hash_fraction(row_ids)
    return np.where(
        u < config.train, "train", np.where(u < config.train + config.val, "val", "test")
    )


def frame_hash(name: str, frame: pd.DataFrame) -> str:
    """The content of one split of rows: ids, columns and values."""
    digest = hashlib.sha256()
    digest.update(name.encode())
    digest.update("\0".join(frame.columns).encode())
    digest.update("\0".join(frame["row_id"]).encode())
    digest.update(np.ascontiguousarray(frame.drop(columns="row_id").to_numpy()).tobytes())
    return digest.hexdigest()


def fractions_key(config: SplitConfig) -> str:
    """Parts are cut for one set of fractions; other fractions cut their own."""
    data = json.dumps(config.model_dump(), sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:12]


def part_key(layout: Layout, fractions: str, batch_id: str, name: str) -> str:
    return safe_key("staged", layout.use_case, "split", fractions, batch_id, name)


def split_part(
    storage: ObjectStorage, layout: Layout, config: SplitConfig, batch_id: str, label: str
) -> tuple[dict[str, Any], dict[str, set[str]]]:
    """One transformed batch cut into its train/val/test parts, once and for all: a row's
    split depends on its id alone, so a part never changes as data grows. Returns the
    part's record (rows, content hash, class balance per split) and its row ids when this
    call cut it (none when it was cut before)."""
    fractions = fractions_key(config)
    record_key = part_key(layout, fractions, batch_id, "_part.json")
    found = storage.read_versioned(record_key)
    if found:
        return json.loads(found[0]), {}
    rows = storage.read_parquet(layout.staged("transform", batch_id, "parquet"))
    which = assign(rows["row_id"], config)
    record: dict[str, Any] = {"batch_id": batch_id, "rows": {}, "hash": {}, "class_balance": {}}
    ids: dict[str, set[str]] = {}
    frames = []
    for name in SPLITS:
        frame = rows[which == name].sort_values("row_id").reset_index(drop=True)
        record["rows"][name] = len(frame)
        record["hash"][name] = frame_hash(name, frame)
        record["class_balance"][name] = {
            str(k): int(v) for k, v in frame[label].value_counts().sort_index().items()
        }
        ids[name] = set(frame["row_id"])
        frames.append(frame.assign(split=name))
    # one file per batch, the split a column: the batch's rows are written once
    storage.write_parquet(part_key(layout, fractions, batch_id, "part.parquet"), pd.concat(frames))
    storage.write_json(record_key, record)  # last: a part is whole once its record is there
    return record, ids


def run_split(
    storage: ObjectStorage, layout: Layout, dataset: TabularDataset, config: SplitConfig
) -> SplitResult:
    """A new dataset version is a manifest over per-batch parts: the previous version's
    files plus the parts of the batches transformed since, so adding a batch writes that
    batch's rows once (never all rows again). The version id is a hash of the parts'
    content hashes, chained batch by batch: the same data in the same order gives the
    same id."""
    state = catalog_state(storage, layout)  # before reading: a batch cataloged meanwhile is new
    catalog = load_catalog(storage, layout)
    transformed = staged_ids(storage, layout, "transform")
    batches = [b["batch_id"] for b in catalog if b["batch_id"] in transformed]
    if not batches:
        raise _empty(layout, catalog)
    previous = storage.read_json(layout.dataset_latest, default={}) or None
    base = None
    if previous:
        key = layout.dataset(previous["dataset_version"], "manifest.json")
        base = storage.read_json(key, default={}) or None
        if base and base.get("fractions") != config.model_dump():
            base = None  # other fractions: every batch is cut anew
    in_base = set(base["batches"]) if base else set()
    added = [b for b in batches if b not in in_base]
    label = dataset.label.column
    records, new_ids = [], {name: set() for name in SPLITS}
    for batch_id in added:
        record, ids = split_part(storage, layout, config, batch_id, label)
        records.append(record)
        for name in ids:
            new_ids[name] |= ids[name]
    records = [r for r in records if sum(r["rows"].values())]  # a batch of no usable row
    if not base and not records:
        raise _empty(layout, catalog)
    if base and not records:
        version, manifest = base["dataset_version"], base  # the same rows: the same version
    else:
        version, manifest = _manifest(layout, config, base, records)
        manifest["batches"] = [*(base["batches"] if base else []), *added]
    created = not storage.exists(layout.dataset(version, "manifest.json"))
    if created:
        storage.write_json(layout.dataset(version, "manifest.json"), manifest)
    else:
        manifest = storage.read_json(layout.dataset(version, "manifest.json"))
    if not previous or previous.get("dataset_version") != version:
        storage.write_json(
            layout.dataset_latest,
            {
                "dataset_version": version,
                "batches": manifest["batches"],
                "catalog": state,
                "previous": previous.get("dataset_version") if previous else None,
            },
        )
    elif previous.get("catalog") != state:
        storage.write_json(layout.dataset_latest, {**previous, "catalog": state})
    return SplitResult(
        version=version, manifest=manifest, previous=previous, created=created, new_ids=new_ids
    )


def _empty(layout: Layout, catalog: list) -> EmptyDatasetError:
    return EmptyDatasetError(
        f"no clean rows for {layout.use_case} yet: {len(catalog)} batches ingested, "
        "none with a usable row (see quarantine/)"
    )


def _manifest(
    layout: Layout, config: SplitConfig, base: dict[str, Any] | None, records: list[dict]
) -> tuple[str, dict[str, Any]]:
    fractions = fractions_key(config)
    # a hash chain over the batches' part hashes, in order: the same batches give the same
    # id however many versions they arrived in, and a new version hashes only what it adds
    if base and base.get("content"):
        content = base["content"]
    else:
        seed = json.dumps(
            {"fractions": config.model_dump(), "base": base["dataset_version"] if base else None},
            sort_keys=True,
        )
        content = hashlib.sha256(seed.encode()).hexdigest()
    for record in records:
        link = json.dumps([content, record["batch_id"], record["hash"]], sort_keys=True)
        content = hashlib.sha256(link.encode()).hexdigest()
    version = content[:16]
    files = {name: list(split_files_of(base, layout, name)) if base else [] for name in SPLITS}
    rows = {name: (base["rows"][name] if base else 0) for name in SPLITS}
    balance = {name: dict(base["class_balance"][name]) if base else {} for name in SPLITS}
    for record in records:
        for name in SPLITS:
            if record["rows"][name]:
                files[name].append(part_key(layout, fractions, record["batch_id"], "part.parquet"))
            rows[name] += record["rows"][name]
            for label, count in record["class_balance"][name].items():
                balance[name][label] = balance[name].get(label, 0) + count
    manifest = {
        "use_case": layout.use_case,
        "dataset_version": version,
        "base": base["dataset_version"] if base else None,
        "content": content,
        "files": files,
        "rows": rows,
        "class_balance": {
            name: dict(sorted(balance[name].items(), key=lambda kv: int(kv[0]))) for name in SPLITS
        },
        "fractions": config.model_dump(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return version, manifest


def split_files_of(manifest: dict[str, Any], layout: Layout, name: str) -> list[str]:
    """The Parquet files of one split of a version, oldest first: its parts, or the one
    file a version written before parts has."""
    if "files" in manifest:
        return list(manifest["files"][name])
    return [layout.dataset(manifest["dataset_version"], f"{name}.parquet")]


def split_files(storage: ObjectStorage, layout: Layout, version: str, name: str) -> list[str]:
    manifest = storage.read_json(layout.dataset(version, "manifest.json"))
    return split_files_of(manifest, layout, name)


def read_split_file(
    storage: ObjectStorage, key: str, name: str, columns: list[str] | None = None
) -> pd.DataFrame:
    """The rows of split `name` in one of its files: a part holds a batch's three splits
    (its `split` column says which); a file from before parts holds one split whole."""
    if not key.startswith("staged/"):
        return storage.read_parquet(key, columns)
    frame = storage.read_parquet(key, [*columns, "split"] if columns else None)
    return frame[frame["split"] == name].drop(columns="split").reset_index(drop=True)


def read_split(storage: ObjectStorage, layout: Layout, version: str, name: str) -> pd.DataFrame:
    """One split of a version as one frame (its parts read as one, in order)."""
    frames = [
        read_split_file(storage, key, name) for key in split_files(storage, layout, version, name)
    ]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_split_ids(storage: ObjectStorage, layout: Layout, version: str, name: str) -> set[str]:
    ids: set[str] = set()
    for key in split_files(storage, layout, version, name):
        ids |= set(read_split_file(storage, key, name, ["row_id"])["row_id"])
    return ids
