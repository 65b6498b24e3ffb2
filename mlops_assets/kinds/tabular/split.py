"""split: train / validation / test by a stable hash of the row id.

A row's split depends on its id alone, so it never changes as data grows and
the test set stays comparable across model versions. The dataset version is
a hash of the split contents, and is the Dagster data version of the asset.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.errors import MlopsError
from mlops_assets.kinds.tabular.catalog import catalog_state, load_catalog, staged_ids
from mlops_assets.kinds.tabular.dataset import SplitConfig, TabularDataset
from mlops_assets.storage import Layout, ObjectStorage

SPLITS = ("train", "val", "test")


class EmptyDatasetError(MlopsError, RuntimeError):
    """No clean row exists yet, so there is nothing to split."""


@dataclass
class SplitResult:
    version: str
    manifest: dict[str, Any]
    previous: dict[str, Any] | None
    created: bool
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)


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


def dataset_version(frames: dict[str, pd.DataFrame]) -> str:
    digest = hashlib.sha256()
    for name in SPLITS:
        frame = frames[name]
        digest.update(name.encode())
        digest.update("\0".join(frame.columns).encode())
        digest.update("\0".join(frame["row_id"]).encode())
        digest.update(np.ascontiguousarray(frame.drop(columns="row_id").to_numpy()).tobytes())
    return digest.hexdigest()[:16]


def run_split(
    storage: ObjectStorage, layout: Layout, dataset: TabularDataset, config: SplitConfig
) -> SplitResult:
    state = catalog_state(storage, layout)  # before reading: a batch cataloged meanwhile is new
    catalog = load_catalog(storage, layout)
    transformed = staged_ids(storage, layout, "transform")
    batches = [b["batch_id"] for b in catalog if b["batch_id"] in transformed]
    parts = [storage.read_parquet(layout.staged("transform", b, "parquet")) for b in batches]
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if rows.empty:
        raise EmptyDatasetError(
            f"no clean rows for {layout.use_case} yet: {len(catalog)} batches ingested, "
            "none with a usable row (see quarantine/)"
        )
    which = assign(rows["row_id"], config)
    frames = {
        name: rows[which == name].sort_values("row_id").reset_index(drop=True) for name in SPLITS
    }
    version = dataset_version(frames)
    label = dataset.label.column
    manifest = {
        "use_case": layout.use_case,
        "dataset_version": version,
        "batches": batches,
        "rows": {name: len(frame) for name, frame in frames.items()},
        "class_balance": {
            name: {str(k): int(v) for k, v in frame[label].value_counts().sort_index().items()}
            for name, frame in frames.items()
        },
        "fractions": config.model_dump(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    previous = storage.read_json(layout.dataset_latest, default={}) or None
    created = not storage.exists(layout.dataset(version, "manifest.json"))
    if created:
        for name, frame in frames.items():
            storage.write_parquet(layout.dataset(version, f"{name}.parquet"), frame)
        storage.write_json(layout.dataset(version, "manifest.json"), manifest)
    else:
        manifest = storage.read_json(layout.dataset(version, "manifest.json"))
    if not previous or previous.get("dataset_version") != version:
        storage.write_json(
            layout.dataset_latest,
            {
                "dataset_version": version,
                "batches": batches,
                "catalog": state,
                "previous": previous.get("dataset_version") if previous else None,
            },
        )
    elif previous.get("catalog") != state:
        storage.write_json(layout.dataset_latest, {**previous, "catalog": state})
    return SplitResult(
        version=version, manifest=manifest, previous=previous, created=created, frames=frames
    )


def read_split_ids(storage: ObjectStorage, layout: Layout, version: str, name: str) -> set[str]:
    return set(
        storage.read_parquet(layout.dataset(version, f"{name}.parquet"), ["row_id"])["row_id"]
    )
