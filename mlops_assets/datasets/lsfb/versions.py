"""What the five LSFB-ISOL stages share: the ids of their outputs and where each finds the
last one.

Each stage writes its output under a key derived from its input and settings
and commits it with a small manifest written last, so a re-run after a crash
resumes, and an unchanged input costs nothing.

    raw/<uc>/<snapshot>/{instances.csv, metadata/..., clips.parquet, _snapshot.json}
    raw/<uc>/<poses|poses_raw>/<set>/<id>-<sha16>.npy     content-addressed, shared
    staged/<uc>/observe/<snapshot>/clips.parquet           per-clip profile
    quarantine/<uc>/<snapshot>/clips.parquet               rejected clips with reasons
    staged/<uc>/clean/<clean_id>/shard-*.npz                filled clips (ragged)
    staged/<uc>/transform/<transform_id>/shard-*.npz        (clips, frames, features)
    datasets/<uc>/<version>/{train,val,test}/shard-*.npz    by the dataset's folds
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlops_assets.datasets.lsfb.config import LsfbData
from mlops_assets.datasets.lsfb.shards import stage_key
from mlops_assets.settings import env
from mlops_assets.storage import Layout, ObjectStorage, safe_key


def reader_pool(storage: ObjectStorage) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(storage.concurrent_reads)


SPLITS = ("train", "val", "test")


def cache_dir(use_case: str) -> Path:
    """Where the Downloader writes before the files go to storage (kept, so a cut
    download resumes): MLOPS_CACHE_DIR, else ~/.cache/mlops_assets."""
    base = env("MLOPS_CACHE_DIR") or os.path.join(
        env("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mlops_assets"
    )
    return Path(base) / use_case


def content_hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def clean_id(snapshot: str, config: LsfbData) -> str:
    """The clean output of a snapshot under the settings clean reads."""
    return content_hash(snapshot, config.poses, config.landmarks, config.min_count, config.top_n)


def transform_id(clean: str, config: LsfbData) -> str:
    """The transform output of a clean output under the settings transform reads."""
    return content_hash(
        clean, config.frames, config.pose_landmarks, config.coordinates, config.landmarks
    )


def pose_folder(config: LsfbData) -> str:
    return "poses" if config.poses == "cleaned" else "poses_raw"


def latest_key(layout: Layout) -> str:
    return safe_key("raw", layout.use_case, "_latest.json")


def current_snapshot(storage: ObjectStorage, layout: Layout) -> str:
    latest = storage.read_json(latest_key(layout), default={})
    if not latest:
        raise RuntimeError(f"nothing acquired for {layout.use_case} yet: run acquire first")
    return latest["snapshot"]


def split_of_fold(config: LsfbData) -> dict[int, str]:
    groups = {"train": config.train_folds, "val": config.val_folds, "test": config.test_folds}
    return {fold: name for name, folds in groups.items() for fold in folds}


def current_clean(storage: ObjectStorage, layout: Layout, config: LsfbData) -> tuple[str, dict]:
    snapshot = current_snapshot(storage, layout)
    cleaned = clean_id(snapshot, config)
    key = stage_key(layout, "clean", cleaned, "_clean.json")
    if not storage.exists(key):
        raise RuntimeError(f"snapshot {snapshot} is not cleaned with these settings: run clean")
    return cleaned, storage.read_json(key)
