"""clean: missing landmarks filled, unusable clips quarantined with their reasons, the signs
kept by count, as ragged shards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_assets.datasets.lsfb.clips import filled, load_pose
from mlops_assets.datasets.lsfb.config import LsfbData
from mlops_assets.datasets.lsfb.observe import run_observe
from mlops_assets.datasets.lsfb.shards import ShardWriter, stage_key
from mlops_assets.datasets.lsfb.versions import clean_id, reader_pool
from mlops_assets.storage import Layout, ObjectStorage


@dataclass
class CleanResult:
    clean_id: str
    snapshot: str
    labels: list[str]
    kept: int
    quarantined: Any
    """DataFrame of the rejected clips: id, files, reason."""
    excluded_clips: int
    excluded_signs: int
    shards: list[dict]


def _reason(row: dict, config: LsfbData) -> str:
    files = ", ".join(row[f"key_{s}"] for s in config.landmarks)
    if row["problem"]:
        return row["problem"]
    if row["frames"] == 0:
        return f"empty clip: 0 frames in {files}"
    if row["missing_share"] >= 1.0:
        return f"entirely missing: no landmark detected in any frame of {files}"
    return ""


def _load_filled(storage: ObjectStorage, entry: dict, config: LsfbData) -> np.ndarray:
    """(frames, landmarks of every configured set, 3), NaN filled, float16."""
    parts = []
    for landmark_set in config.landmarks:
        key = entry[f"key_{landmark_set}"]
        parts.append(filled(load_pose(storage.read_bytes(key), key, landmark_set)))
    return np.concatenate(parts, axis=1)


def run_clean(storage: ObjectStorage, layout: Layout, config: LsfbData) -> CleanResult:
    import pandas as pd

    snapshot, clips, _ = run_observe(storage, layout, config)
    records = clips.to_dict("records")
    reasons = [_reason(r, config) for r in records]
    bad = [dict(r, reason=why) for r, why in zip(records, reasons, strict=True) if why]
    good = [r for r, why in zip(records, reasons, strict=True) if not why]
    quarantined = pd.DataFrame(
        [
            {
                "id": r["id"],
                "sign": r["sign"],
                "signer": r["signer"],
                "files": ", ".join(r[f"key_{s}"] for s in config.landmarks),
                "reason": r["reason"],
            }
            for r in bad
        ],
        columns=["id", "sign", "signer", "files", "reason"],
    )
    if len(quarantined):
        storage.write_parquet(layout.quarantine(snapshot, "clips.parquet"), quarantined)

    counts = pd.Series([r["sign"] for r in good], dtype="object").value_counts()
    ranked = sorted(
        ((sign, n) for sign, n in counts.items() if n >= config.min_count),
        key=lambda kv: (-kv[1], kv[0]),
    )
    labels = [sign for sign, _ in ranked[: config.top_n or None]]
    index = {sign: i for i, sign in enumerate(labels)}
    selected = [r for r in good if r["sign"] in index]

    cleaned = clean_id(snapshot, config)
    prefix = stage_key(layout, "clean", cleaned, "")
    manifest_key = f"{prefix}/_clean.json"
    if storage.exists(manifest_key):
        shards = storage.read_json(manifest_key)["shards"]
    else:
        writer = ShardWriter(storage, prefix, config.shard_size)
        with reader_pool(storage) as pool:
            for start in range(0, len(selected), config.shard_size):
                chunk = selected[start : start + config.shard_size]
                arrays = list(pool.map(lambda e: _load_filled(storage, e, config), chunk))
                writer.write(
                    {
                        "frames": np.concatenate(arrays)
                        if arrays
                        else np.zeros((0, 1, 3), "float16"),
                        "lengths": np.asarray([a.shape[0] for a in arrays], "int32"),
                        "id": np.asarray([r["id"] for r in chunk]),
                        "label": np.asarray([index[r["sign"]] for r in chunk], "int32"),
                        "signer": np.asarray([r["signer"] for r in chunk], "int32"),
                        "fold": np.asarray([r["fold"] for r in chunk], "int32"),
                    },
                    len(chunk),
                )
        shards = writer.shards
        storage.write_json(
            manifest_key,
            {"snapshot": snapshot, "labels": labels, "shards": shards, "rows": len(selected)},
        )
    return CleanResult(
        clean_id=cleaned,
        snapshot=snapshot,
        labels=labels,
        kept=len(selected),
        quarantined=quarantined,
        excluded_clips=len(good) - len(selected),
        excluded_signs=len(counts) - len(labels),
        shards=shards,
    )
