"""The five DataOps stages of LSFB-ISOL, as plain functions over the storage.

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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlops_assets.kinds.lsfb.clips import ClipError, filled, load_pose, select, to_fixed_length
from mlops_assets.kinds.lsfb.config import LANDMARK_COUNTS, LsfbData
from mlops_assets.kinds.lsfb.download import METADATA_FILES, download, read_metadata, snapshot_id
from mlops_assets.kinds.lsfb.shards import DATASET_MANIFEST, ShardWriter, read_shards, stage_key
from mlops_assets.settings import env
from mlops_assets.storage import Layout, ObjectStorage, safe_key


def _pool(storage: ObjectStorage) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(storage.concurrent_reads)


SPLITS = ("train", "val", "test")


def cache_dir(use_case: str) -> Path:
    """Where the Downloader writes before the files go to storage (kept, so a cut
    download resumes): MLOPS_CACHE_DIR, else ~/.cache/mlops_assets."""
    base = env("MLOPS_CACHE_DIR") or os.path.join(
        env("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mlops_assets"
    )
    return Path(base) / use_case


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def clean_id(snapshot: str, config: LsfbData) -> str:
    """The clean output of a snapshot under the settings clean reads."""
    return _hash(snapshot, config.poses, config.landmarks, config.min_count, config.top_n)


def transform_id(clean: str, config: LsfbData) -> str:
    """The transform output of a clean output under the settings transform reads."""
    return _hash(clean, config.frames, config.pose_landmarks, config.coordinates, config.landmarks)


def pose_folder(config: LsfbData) -> str:
    return "poses" if config.poses == "cleaned" else "poses_raw"


# --- acquire ---------------------------------------------------------------------------


@dataclass
class AcquireResult:
    snapshot: str
    new: bool
    clips: int
    fetched: int
    skipped: int
    stored: int
    """Pose files written to storage (the others were there from an earlier snapshot)."""


def latest_key(layout: Layout) -> str:
    return safe_key("raw", layout.use_case, "_latest.json")


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

    with _pool(storage) as pool:
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


def current_snapshot(storage: ObjectStorage, layout: Layout) -> str:
    latest = storage.read_json(latest_key(layout), default={})
    if not latest:
        raise RuntimeError(f"nothing acquired for {layout.use_case} yet: run acquire first")
    return latest["snapshot"]


# --- observe ---------------------------------------------------------------------------


def _profile(storage: ObjectStorage, entry: dict, config: LsfbData) -> dict:
    frames, missing, values, problem = None, 0, 0, None
    for landmark_set in config.landmarks:
        key = entry[f"key_{landmark_set}"]
        try:
            array = load_pose(storage.read_bytes(key), key, landmark_set)
        except ClipError as error:
            problem = str(error)
            break
        if frames is not None and array.shape[0] != frames:
            problem = f"{key}: {array.shape[0]} frames, other landmark sets have {frames}"
            break
        frames = array.shape[0]
        missing += int(np.isnan(array).sum())
        values += array.size
    return {
        "id": entry["id"],
        "frames": -1 if problem else int(frames or 0),
        "missing_share": (missing / values) if values else (0.0 if not problem else 1.0),
        "problem": problem or "",
    }


def _content(entry: dict, config: LsfbData) -> str:
    """The clip's pose files: content-addressed keys, so equal keys mean equal content."""
    return "|".join(entry[f"key_{s}"] for s in config.landmarks)


def run_observe(storage: ObjectStorage, layout: Layout, config: LsfbData):
    """Per-clip profile of the current snapshot (frames, share of missing landmarks, a
    file that breaks the contract), joined with its metadata. Clips whose pose files an
    earlier snapshot already profiled are not read again: a new release costs what it adds.
    Returns the snapshot, the clips, and how many were read this time."""
    import pandas as pd

    snapshot = current_snapshot(storage, layout)
    key = stage_key(layout, "observe", snapshot, "clips.parquet")
    clips = storage.read_parquet(layout.raw(snapshot, "clips.parquet"))
    read = 0
    if storage.exists(key):
        profile = storage.read_parquet(key)
    else:
        known: dict[str, dict] = {}
        for info in storage.list(stage_key(layout, "observe", "", "").rstrip("/")):
            if info.key.endswith("/clips.parquet"):
                for row in storage.read_parquet(info.key).to_dict("records"):
                    if row.get("content"):
                        known[row["content"]] = row
        entries = clips.to_dict("records")
        todo = [e for e in entries if _content(e, config) not in known]
        with _pool(storage) as pool:
            fresh = list(pool.map(lambda e: _profile(storage, e, config), todo))
        read = len(fresh)
        for entry, row in zip(todo, fresh, strict=True):
            known[_content(entry, config)] = row
        rows = [
            {**known[_content(e, config)], "id": e["id"], "content": _content(e, config)}
            for e in entries
        ]
        profile = pd.DataFrame(
            rows, columns=["id", "frames", "missing_share", "problem", "content"]
        )
        storage.write_parquet(key, profile)
    return snapshot, clips.merge(profile.drop(columns=["content"]), on="id"), read


def split_of_fold(config: LsfbData) -> dict[int, str]:
    groups = {"train": config.train_folds, "val": config.val_folds, "test": config.test_folds}
    return {fold: name for name, folds in groups.items() for fold in folds}


# --- clean -----------------------------------------------------------------------------


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
        with _pool(storage) as pool:
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


def current_clean(storage: ObjectStorage, layout: Layout, config: LsfbData) -> tuple[str, dict]:
    snapshot = current_snapshot(storage, layout)
    cleaned = clean_id(snapshot, config)
    key = stage_key(layout, "clean", cleaned, "_clean.json")
    if not storage.exists(key):
        raise RuntimeError(f"snapshot {snapshot} is not cleaned with these settings: run clean")
    return cleaned, storage.read_json(key)


# --- transform -------------------------------------------------------------------------


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


# --- split -----------------------------------------------------------------------------


def run_split(storage: ObjectStorage, layout: Layout, config: LsfbData) -> dict:
    """The dataset's own signer-independent folds: never a random split."""
    snapshot = current_snapshot(storage, layout)
    transformed = storage.read_json(
        stage_key(
            layout, "transform", transform_id(clean_id(snapshot, config), config), "_transform.json"
        )
    )
    folds = {"train": config.train_folds, "val": config.val_folds, "test": config.test_folds}
    version = _hash([s["sha256"] for s in transformed["shards"]], folds, transformed["labels"])
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
