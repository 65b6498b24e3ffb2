"""observe: a profile per clip (frames, missing landmarks, empty clips) of the current snapshot."""

from __future__ import annotations

import numpy as np

from mlops_assets.datasets.lsfb.clips import ClipError, load_pose
from mlops_assets.datasets.lsfb.config import LsfbData
from mlops_assets.datasets.lsfb.shards import stage_key
from mlops_assets.datasets.lsfb.versions import current_snapshot, reader_pool
from mlops_assets.storage import Layout, ObjectStorage


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
        with reader_pool(storage) as pool:
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
