"""A generated dataset in the exact LSFB-ISOL layout, for tests, benchmarks and a local mirror.

The real dataset (about 120,000 clips, 10 GB of poses) is fetched from the LSFB
team's server; this writes the same files (`instances.csv`, `metadata/...`,
`poses/<set>/<id>.npy` and `poses_raw/...`, float16, MediaPipe landmark counts)
with a learnable signal per sign, so the whole graph can run on any machine.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlops_assets.datasets.lsfb.dataset import LANDMARK_COUNTS


@dataclass(frozen=True)
class GeneratedLsfb:
    root: Path
    instances: list[str]
    signs: list[str]
    empty: list[str]
    """Clips with 0 frames."""
    all_missing: list[str]
    """Clips whose raw poses are NaN throughout (nothing was detected)."""


def instance_id(signer: int, session: int, start: int) -> str:
    # The Downloader reads the signer from characters 13..15 of the id, as in the real data.
    return f"CLSFBI{session:02d}{session % 7 + 1:02d}A_S{signer:03d}_B_{start}_{start + 40}"


def _clip(
    rng: np.random.Generator, sign: int, frames: int, count: int, set_index: int
) -> np.ndarray:
    """(frames, count, 3): a per-sign trajectory plus noise, in MediaPipe's 0..1 coordinates."""
    t = np.linspace(0.0, 1.0, max(frames, 1))[:frames, None, None]
    base = rng.uniform(0.3, 0.7, size=(1, count, 3))
    phase = 2 * np.pi * (0.5 + 0.35 * sign)
    amplitude = 0.05 + 0.1 * ((sign * 7 + set_index * 3) % 5) / 4
    offset = np.zeros((1, count, 3))
    offset[..., 0] = 0.08 * np.cos(sign * 1.3 + set_index)
    offset[..., 1] = 0.08 * np.sin(sign * 0.7 + set_index)
    motion = amplitude * np.sin(phase * t + sign)
    noise = rng.normal(0.0, 0.01, size=(frames, count, 3))
    return (base * 0.1 + 0.45 + offset + motion + noise).astype("float16")


def generate(
    root: Path,
    *,
    signers: int = 10,
    signs: int = 12,
    clips_per_sign: int = 3,
    extra_rare_signs: int = 2,
    landmarks: tuple[str, ...] = ("pose", "left_hand", "right_hand", "face"),
    empty_clips: int = 2,
    all_missing_clips: int = 1,
    frames: tuple[int, int] = (12, 48),
    folders: tuple[str, ...] = ("poses", "poses_raw"),
    seed: int = 0,
) -> GeneratedLsfb:
    """Write a dataset: `signers` split over the 5 signer-independent folds, `signs` common
    signs each signed `clips_per_sign` times by every signer, and `extra_rare_signs` signs
    with one clip each (the ones top-n or min_count leave out)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    names = [f"SIGN_{i:04d}" for i in range(signs + extra_rare_signs)]
    rows: list[tuple[str, str, int, int, int]] = []
    fold_of: dict[str, int] = {}
    start = 1000
    for signer in range(1, signers + 1):
        fold = (signer - 1) % 5
        for sign in range(signs):
            for _ in range(clips_per_sign):
                start += 97
                iid = instance_id(signer, sign % 40 + 1, start)
                rows.append((iid, names[sign], signer, start, start + 40))
                fold_of[iid] = fold
    for k, name in enumerate(names[signs:]):
        signer = k % signers + 1
        start += 97
        iid = instance_id(signer, 50, start)
        rows.append((iid, name, signer, start, start + 40))
        fold_of[iid] = (signer - 1) % 5
    ids = [r[0] for r in rows]
    order = rng.permutation(len(rows))
    empty = [ids[i] for i in order[:empty_clips]]
    all_missing = [ids[i] for i in order[empty_clips : empty_clips + all_missing_clips]]

    with open(root / "instances.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "sign", "signer", "start", "end"])
        writer.writerows(rows)
    with open(root / "instances_special.csv", "w", newline="") as f:
        csv.writer(f).writerow(["id", "sign", "signer", "start", "end"])
    meta = root / "metadata"
    (meta / "splits").mkdir(parents=True, exist_ok=True)
    with open(meta / "sign_to_index.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sign", "class"])
        writer.writerows((name, i) for i, name in enumerate(names))
    counts = {name: sum(1 for r in rows if r[1] == name) for name in names}
    with open(meta / "sign_occurrences.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sign", "occurrences"])
        writer.writerows(sorted(counts.items(), key=lambda kv: -kv[1]))
    folds = {k: [i for i in ids if fold_of[i] == k] for k in range(5)}
    splits = {
        "all": ids,
        "mini_sample": ids[:: max(1, len(ids) // 20)],
        "test": folds[0] + folds[1],
        "train": folds[2] + folds[3] + folds[4],
        **{f"fold_{k}": folds[k] for k in range(5)},
    }
    for name, members in splits.items():
        (meta / "splits" / f"{name}.json").write_text(json.dumps(members))

    sign_index = {name: i for i, name in enumerate(names)}
    for iid, sign, *_ in rows:
        n = 0 if iid in empty else int(rng.integers(frames[0], frames[1] + 1))
        for set_index, landmark_set in enumerate(landmarks):
            count = LANDMARK_COUNTS[landmark_set]
            clean = _clip(rng, sign_index[sign], n, count, set_index)
            raw = clean.copy()
            if iid in all_missing:
                raw[:] = np.nan
            elif n and landmark_set in ("left_hand", "right_hand"):
                # a hand out of view for a few frames, as MediaPipe reports it
                gone = rng.random(n) < 0.15
                raw[gone] = np.nan
            for folder, array in (("poses", clean), ("poses_raw", raw)):
                if folder not in folders:
                    continue
                path = root / folder / landmark_set / f"{iid}.npy"
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, array)
    return GeneratedLsfb(root, ids, names, empty, all_missing)
