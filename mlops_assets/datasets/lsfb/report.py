"""What observe shows for LSFB-ISOL: per split counts, and two plots."""

from __future__ import annotations

from typing import Any

import dagster as dg

from mlops_assets.core.report import embed, figure, md_table
from mlops_assets.datasets.lsfb.config import LsfbData


def _histogram(values, title: str, xlabel: str, alt: str) -> str:
    fig = figure()
    ax = fig.add_subplot()
    ax.hist(values, bins=30, color="#4c72b0")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("clips")
    return embed(fig, alt)


def _class_balance(counts, title: str) -> str:
    fig = figure()
    ax = fig.add_subplot()
    ax.plot(range(1, len(counts) + 1), list(counts.values), color="#dd8452")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel("sign rank")
    ax.set_ylabel("clips (log)")
    return embed(fig, "class balance")


def observe_metadata(snapshot: str, clips, config: LsfbData) -> tuple[dict[str, Any], list]:
    from mlops_assets.datasets.lsfb.versions import split_of_fold

    fold_split = split_of_fold(config)
    clips = clips.assign(split=clips["fold"].map(lambda f: fold_split.get(int(f), "unused")))
    valid = clips[clips["problem"] == ""]
    rows = []
    for name in ("train", "val", "test", "unused"):
        part = clips[clips["split"] == name]
        if name == "unused" and not len(part):
            continue
        ok = part[part["problem"] == ""]
        rows.append(
            (
                name,
                len(part),
                part["signer"].nunique(),
                part["sign"].nunique(),
                f"{ok['frames'].median():.0f}" if len(ok) else "-",
                int((ok["frames"] == 0).sum()),
                f"{ok['missing_share'].mean():.3f}" if len(ok) else "-",
            )
        )
    counts = valid["sign"].value_counts()
    broken = clips[clips["problem"] != ""]
    empty = valid[(valid["frames"] == 0) | (valid["missing_share"] >= 1.0)]
    imbalance = f"{counts.iloc[0] / counts.iloc[-1]:.1f}" if len(counts) else "-"
    metadata = {
        "snapshot": snapshot,
        "instances": len(clips),
        "signers": int(clips["signer"].nunique()),
        "signs": int(clips["sign"].nunique()),
        "per_split": dg.MetadataValue.md(
            md_table(
                ["split", "clips", "signers", "signs", "median frames", "empty", "missing share"],
                rows,
            )
        ),
        "frames_per_clip": dg.MetadataValue.md(
            _histogram(valid["frames"], "frames per clip", "frames", "frames per clip distribution")
            if len(valid)
            else "no readable clip"
        ),
        "class_balance": dg.MetadataValue.md(
            f"most frequent / least frequent sign: {imbalance}\n\n"
            + md_table(["sign", "clips"], list(counts.head(10).items()))
            + "\n\n"
            + (_class_balance(counts, "clips per sign, by rank") if len(counts) else "")
        ),
        "missing_landmark_share": float(valid["missing_share"].mean()) if len(valid) else 0.0,
        "empty_clips": len(empty),
        "invalid_pose_files": len(broken),
    }
    checks = [
        dg.AssetCheckResult(
            check_name="pose_files_valid",
            passed=not len(broken),
            severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(broken["problem"].head(5)) + (" ..." if len(broken) > 5 else "")
            if len(broken)
            else "every pose file is valid",
            metadata={"invalid": len(broken)},
        ),
        dg.AssetCheckResult(
            check_name="no_empty_clips",
            passed=not len(empty),
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{len(empty)} empty or entirely missing clip(s); clean quarantines them"
            if len(empty)
            else "no empty clip",
            metadata={"empty": len(empty)},
        ),
    ]
    return metadata, checks
