"""transform: the clean clips as fixed-length float32 sequences with a padding mask, in shards."""

from __future__ import annotations

import numpy as np

from mlops_assets.datasets.lsfb.clips import select, to_fixed_length
from mlops_assets.datasets.lsfb.config import LANDMARK_COUNTS, LsfbData
from mlops_assets.datasets.lsfb.shards import ShardWriter, read_shards, stage_key
from mlops_assets.datasets.lsfb.versions import current_clean, transform_id
from mlops_assets.storage import Layout, ObjectStorage


def transform_shard(arrays: dict[str, np.ndarray], config: LsfbData) -> dict[str, np.ndarray]:
    """Ragged filled clips -> `(clips, frames, features)` float32 with a padding mask."""
    full = [LANDMARK_COUNTS[s] for s in config.landmarks]
    bounds = np.cumsum([0, *full])
    xs, masks = [], []
    offset = 0
    for length in arrays["lengths"]:
        clip = arrays["frames"][offset : offset + length].astype("float32")
        offset += length
        by_set = {s: clip[:, bounds[i] : bounds[i + 1]] for i, s in enumerate(config.landmarks)}
        x, mask = to_fixed_length(select(by_set, config), config.frames)
        xs.append(x)
        masks.append(mask)
    n = len(arrays["lengths"])
    return {
        "x": np.stack(xs) if n else np.zeros((0, config.frames, config.features), "float32"),
        "mask": np.stack(masks) if n else np.zeros((0, config.frames), bool),
        "label": arrays["label"],
        "id": arrays["id"],
        "signer": arrays["signer"],
        "fold": arrays["fold"],
    }


def run_transform(storage: ObjectStorage, layout: Layout, config: LsfbData) -> dict:
    cleaned, clean = current_clean(storage, layout, config)
    transformed = transform_id(cleaned, config)
    prefix = stage_key(layout, "transform", transformed, "")
    manifest_key = f"{prefix}/_transform.json"
    if storage.exists(manifest_key):
        return storage.read_json(manifest_key)
    writer = ShardWriter(storage, prefix, config.shard_size)
    for arrays, shard in zip(read_shards(storage, clean["shards"]), clean["shards"], strict=True):
        writer.write(transform_shard(arrays, config), shard["rows"])
    manifest = {
        "transform_id": transformed,
        "clean_id": cleaned,
        "snapshot": clean["snapshot"],
        "labels": clean["labels"],
        "shards": writer.shards,
        "rows": clean["rows"],
        "item_shape": [config.frames, config.features],
    }
    storage.write_json(manifest_key, manifest)
    return manifest
