"""The LSFB kind's configuration: the `dataset:` block as data and the landmark counts,
the leaf every stage imports (so that no stage imports the kind, `dataset.py`, or the
component above it)."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field, model_validator

LSFB_POSE = "lsfb_pose"
"""The request contract's kind: one clip, per landmark set frames x landmarks x 3."""

LANDMARK_SETS = ("pose", "left_hand", "right_hand", "face")
LANDMARK_COUNTS = {"pose": 33, "left_hand": 21, "right_hand": 21, "face": 478}
"""What the files hold (MediaPipe); the library's docstrings say 23 pose and 468 face."""

LSFB_ISOL_SOURCE = "https://lsfb.info.unamur.be/static/datasets/lsfb_v2/isol"


class LsfbData(dg.Model, dg.Resolvable):
    """LSFB-ISOL: where it is fetched from, what of it, and how clips become tensors."""

    source: str = Field(
        LSFB_ISOL_SOURCE,
        description="base URL of the dataset; MLOPS_LSFB_SOURCE overrides it (a mirror, a test "
        "server)",
    )
    splits: list[str] = Field(
        default_factory=lambda: ["all"],
        description="the Downloader's splits: all, train, test, fold_0..fold_4, mini_sample",
    )
    landmarks: list[Literal["pose", "left_hand", "right_hand", "face"]] = Field(
        default_factory=lambda: ["pose", "left_hand", "right_hand"],
        description="landmark sets downloaded and fed to the model",
    )
    poses: Literal["cleaned", "raw"] = Field(
        "cleaned",
        description="cleaned: the team's interpolated and smoothed poses; raw: NaN where "
        "nothing was detected (clean fills them)",
    )
    pose_landmarks: int = Field(
        23, ge=1, le=33, description="the first N pose landmarks: 23 is the upper body"
    )
    coordinates: list[Literal["x", "y", "z"]] = Field(default_factory=lambda: ["x", "y"])
    frames: int = Field(32, ge=2, description="every clip resampled or padded to this length")
    min_count: int = Field(
        1, ge=1, description="keep only signs with at least this many clean clips"
    )
    top_n: int | None = Field(
        None, ge=2, description="then keep only the N most frequent signs (500 in the papers)"
    )
    train_folds: list[int] = Field(default_factory=lambda: [2, 3])
    val_folds: list[int] = Field(default_factory=lambda: [4])
    test_folds: list[int] = Field(default_factory=lambda: [0, 1])
    shard_size: int = Field(
        1024, ge=1, description="clips per shard of the clean and transform output"
    )
    retries: int = Field(5, ge=0, description="per file, with exponential backoff")
    timeout_seconds: int = Field(60, ge=1)
    max_parallel_connections: int = Field(10, ge=1)
    check_ssl: bool = True

    @model_validator(mode="after")
    def _folds_disjoint(self) -> LsfbData:
        groups = [set(self.train_folds), set(self.val_folds), set(self.test_folds)]
        if (groups[0] & groups[1]) or (groups[0] & groups[2]) or (groups[1] & groups[2]):
            raise ValueError(
                f"train_folds {self.train_folds}, val_folds {self.val_folds} and test_folds "
                f"{self.test_folds} must not share a fold (the folds are signer-independent)"
            )
        if not self.train_folds or not self.test_folds:
            raise ValueError("train_folds and test_folds must not be empty")
        if not set().union(*groups) <= set(range(5)):
            raise ValueError("LSFB-ISOL folds are 0..4")
        return self

    @property
    def features(self) -> int:
        points = sum(
            self.pose_landmarks if s == "pose" else LANDMARK_COUNTS[s] for s in self.landmarks
        )
        return points * len(self.coordinates)
