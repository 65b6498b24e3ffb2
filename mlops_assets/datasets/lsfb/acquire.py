"""acquire: LSFB-ISOL fetched with lsfb_dataset's Downloader (resumable) into raw/, the
pose files content-addressed and shared between snapshots."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from mlops_assets.datasets.lsfb.config import LsfbData
from mlops_assets.datasets.lsfb.download import METADATA_FILES, download, read_metadata, snapshot_id
from mlops_assets.datasets.lsfb.versions import cache_dir, latest_key, pose_folder, reader_pool
from mlops_assets.storage import Layout, ObjectStorage, safe_key


@dataclass
class AcquireResult:
    snapshot: str
    new: bool
    clips: int
    fetched: int
    skipped: int
    stored: int
    """Pose files written to storage (the others were there from an earlier snapshot)."""


def run_acquire(
    storage: ObjectStorage, layout: Layout, config: LsfbData, log: Callable = print
) -> AcquireResult:
    root = cache_dir(layout.use_case) / "download"
    fetched = download(config, root, log)
    meta = read_metadata(root)
    snapshot = snapshot_id(root)
    manifest_key = layout.raw(snapshot, "_snapshot.json")
    if storage.exists(manifest_key):
        manifest = storage.read_json(manifest_key)
        storage.write_json(latest_key(layout), {"snapshot": snapshot})
        return AcquireResult(
            snapshot, False, manifest["clips"], fetched.fetched, fetched.skipped, 0
        )

    for name in METADATA_FILES:
        storage.write_bytes(layout.raw(snapshot, name), (root / name).read_bytes(), if_absent=True)
    folder = pose_folder(config)
    existing = {info.key for info in storage.list(safe_key("raw", layout.use_case, folder))}
    by_id = {row["id"]: row for row in meta["instances"]}
    unknown = [i for i in fetched.instances if i not in by_id]
    if unknown:
        raise ValueError(
            f"metadata/splits: {len(unknown)} instance(s) not in instances.csv, e.g. {unknown[0]}"
        )

    def store(iid: str) -> tuple[dict, int]:
        row = by_id[iid]
        entry = {
            "id": iid,
            "sign": row["sign"],
            "signer": int(row["signer"]),
            "fold": meta["folds"].get(iid, -1),
        }
        written = 0
        for landmark_set in config.landmarks:
            data = (root / folder / landmark_set / f"{iid}.npy").read_bytes()
            digest = hashlib.sha256(data).hexdigest()[:16]
            key = safe_key("raw", layout.use_case, folder, landmark_set, f"{iid}-{digest}.npy")
            if key not in existing:
                storage.write_bytes(key, data)
                written += 1
            entry[f"key_{landmark_set}"] = key
        return entry, written

    with reader_pool(storage) as pool:
        stored = list(pool.map(store, fetched.instances))
    import pandas as pd

    storage.write_parquet(
        layout.raw(snapshot, "clips.parquet"), pd.DataFrame([entry for entry, _ in stored])
    )
    storage.write_json(
        manifest_key,
        {
            "snapshot": snapshot,
            "clips": len(stored),
            "splits": config.splits,
            "landmarks": list(config.landmarks),
            "poses": folder,
        },
    )
    storage.write_json(latest_key(layout), {"snapshot": snapshot})
    return AcquireResult(
        snapshot, True, len(stored), fetched.fetched, fetched.skipped, sum(n for _, n in stored)
    )
