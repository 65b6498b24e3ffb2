"""Mergeable data profiles and drift.

A profile holds counts, sums and fixed-bin histograms, so the profile of the
whole dataset is the merge of per-batch profiles: observing a new batch costs
the same however large the archive has grown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.core.drift import psi
from mlops_assets.datasets.tabular.config import TabularData
from mlops_assets.datasets.tabular.rows import blanks

Profile = dict[str, Any]


def bin_edges(dataset: TabularData, bins: int) -> np.ndarray:
    return np.linspace(dataset.features.min, dataset.features.max, bins + 1)


def profile_frame(
    text: pd.DataFrame, numeric: pd.DataFrame, dataset: TabularData, bins: int
) -> Profile:
    """Profile of one parsed batch: rows, nulls, per-feature stats and histograms, labels."""
    edges = bin_edges(dataset, bins)
    blank = blanks(text)
    features: dict[str, Any] = {}
    for column in dataset.features.columns:
        values = numeric[column].dropna().to_numpy()
        inside = values[(values >= edges[0]) & (values <= edges[-1])]
        hist, _ = np.histogram(inside, bins=edges)
        features[column] = {
            "count": int(values.size),
            "sum": float(values.sum()),
            "min": float(values.min()) if values.size else None,
            "max": float(values.max()) if values.size else None,
            "hist": hist.astype(int).tolist(),
            "outside": int(values.size - inside.size),
        }
    label = numeric[dataset.label.column]
    lo, hi = dataset.label.min, dataset.label.max
    usable = label.notna() & (label >= lo) & (label <= hi) & (label == np.floor(label))
    valid = label[usable]
    # a blank, non-numeric or out-of-range label is unusable alike: a batch of string
    # labels has no valid one (counting only numbers out of range would pass it)
    unusable = text[dataset.label.column][~usable.to_numpy()]
    return {
        "rows": int(len(text)),
        "nulls": {c: int(n) for c, n in blank.sum().items()},
        "non_numeric": {c: int(n) for c, n in (numeric.isna() & ~blank).sum().items()},
        "features": features,
        "labels": {
            str(k): int(v) for k, v in valid.astype(int).value_counts().sort_index().items()
        },
        "labels_out_of_range": int(len(label) - len(valid)),
        "label_example": str(unusable.iloc[0])[:40] if len(unusable) else None,
    }


def merge_profiles(profiles: list[Profile]) -> Profile | None:
    """The profile of the union of the batches behind `profiles`."""
    if not profiles:
        return None
    merged: Profile = {
        "rows": 0,
        "nulls": {},
        "non_numeric": {},
        "features": {},
        "labels": {},
        "labels_out_of_range": 0,
    }
    for profile in profiles:
        merged["rows"] += profile["rows"]
        merged["labels_out_of_range"] += profile["labels_out_of_range"]
        for key in ("nulls", "non_numeric", "labels"):
            for name, count in profile[key].items():
                merged[key][name] = merged[key].get(name, 0) + count
        for column, stats in profile["features"].items():
            into = merged["features"].setdefault(
                column,
                {"count": 0, "sum": 0.0, "min": None, "max": None, "hist": None, "outside": 0},
            )
            into["count"] += stats["count"]
            into["sum"] += stats["sum"]
            into["outside"] += stats["outside"]
            into["min"] = _extreme(min, into["min"], stats["min"])
            into["max"] = _extreme(max, into["max"], stats["max"])
            into["hist"] = (
                list(stats["hist"])
                if into["hist"] is None
                else [a + b for a, b in zip(into["hist"], stats["hist"], strict=True)]
            )
    merged["labels"] = dict(sorted(merged["labels"].items(), key=lambda kv: int(kv[0])))
    return merged


def _extreme(pick, a, b):
    values = [v for v in (a, b) if v is not None]
    return pick(values) if values else None


def mean(stats: dict[str, Any]) -> float | None:
    return stats["sum"] / stats["count"] if stats["count"] else None


def drift(reference: Profile, current: Profile, label: str = "label") -> dict[str, float]:
    """PSI per feature, plus the label distribution under the label's own name."""
    scores = {
        column: psi(stats["hist"], current["features"][column]["hist"])
        for column, stats in reference["features"].items()
    }
    classes = sorted(set(reference["labels"]) | set(current["labels"]), key=int)
    scores[label] = psi(
        [reference["labels"].get(c, 0) for c in classes],
        [current["labels"].get(c, 0) for c in classes],
    )
    return scores
