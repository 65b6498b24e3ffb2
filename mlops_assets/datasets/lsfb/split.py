"""split: the dataset's signer-independent folds as train/val/test, the dataset version."""

from __future__ import annotations

import hashlib

from mlops_assets.datasets.lsfb.config import LsfbData
from mlops_assets.datasets.lsfb.shards import DATASET_MANIFEST, ShardWriter, read_shards, stage_key
from mlops_assets.datasets.lsfb.versions import (
    SPLITS,
    clean_id,
    content_hash,
    current_snapshot,
    split_of_fold,
    transform_id,
)
from mlops_assets.storage import Layout, ObjectStorage


def run_split(storage: ObjectStorage, layout: Layout, config: LsfbData) -> dict:
    """The dataset's own signer-independent folds: never a random split."""
    snapshot = current_snapshot(storage, layout)
    transformed = storage.read_json(
        stage_key(
            layout, "transform", transform_id(clean_id(snapshot, config), config), "_transform.json"
        )
    )
    folds = {"train": config.train_folds, "val": config.val_folds, "test": config.test_folds}
    version = content_hash(
        [s["sha256"] for s in transformed["shards"]], folds, transformed["labels"]
    )
    manifest_key = layout.dataset(version, DATASET_MANIFEST)
    if not storage.exists(manifest_key):
        fold_split = split_of_fold(config)
        writers = {
            name: ShardWriter(storage, layout.dataset(version, name), config.shard_size)
            for name in SPLITS
        }
        signers: dict[str, set[int]] = {name: set() for name in SPLITS}
        ids: dict[str, list[str]] = {name: [] for name in SPLITS}
        unused = 0
        for arrays in read_shards(storage, transformed["shards"]):
            for i in range(len(arrays["label"])):
                name = fold_split.get(int(arrays["fold"][i]))
                if name is None:
                    unused += 1
                    continue
                writers[name].add(**{k: v[i] for k, v in arrays.items()})
                signers[name].add(int(arrays["signer"][i]))
                ids[name].append(str(arrays["id"][i]))
        for writer in writers.values():
            writer.flush()
        storage.write_json(
            manifest_key,
            {
                "dataset_version": version,
                "snapshot": transformed["snapshot"],
                "transform_id": transformed["transform_id"],
                "labels": transformed["labels"],
                "item_shape": transformed["item_shape"],
                "folds": folds,
                "unused_clips": unused,
                "splits": {
                    name: {
                        "rows": sum(s["rows"] for s in writers[name].shards),
                        "shards": writers[name].shards,
                        "signers": sorted(signers[name]),
                        "ids_sha256": hashlib.sha256(
                            "\n".join(sorted(ids[name])).encode()
                        ).hexdigest(),
                    }
                    for name in SPLITS
                },
            },
        )
        import pandas as pd

        storage.write_parquet(
            layout.dataset(version, "index.parquet"),
            pd.DataFrame(
                [(i, name) for name in SPLITS for i in ids[name]], columns=["id", "split"]
            ),
        )
    manifest = storage.read_json(manifest_key)
    storage.write_json(
        layout.dataset_latest,
        {"dataset_version": version, "snapshot": manifest["snapshot"]},
    )
    return manifest
