"""Mergeable data profiles and drift.

A profile holds counts, sums and fixed-bin histograms, so the profile of the
whole dataset is the merge of per-batch profiles: observing a new batch costs
the same however large the archive has grown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.core.classes import class_order
from mlops_assets.core.drift import psi
from mlops_assets.datasets.tabular.config import ColumnSpec, TabularData
from mlops_assets.datasets.tabular.row_contract import Typed, as_text, read_typed, row_reasons

Profile = dict[str, Any]


MAX_CATEGORIES = 100
"""Distinct values a category column's profile counts; the rest count as OTHER (a free-text
column must not grow every profile without bound)."""
OTHER = "(other)"


def bin_edges(dataset: TabularData, bins: int, spec: ColumnSpec | None = None) -> np.ndarray | None:
    """A numeric column's fixed histogram edges: its declared range (the shorthand's one
    range for all features); None without one (no histogram, so no drift for it)."""
    if spec is None:
        return np.linspace(dataset.features.min, dataset.features.max, bins + 1)
    if spec.min is None or spec.max is None or spec.max <= spec.min:
        return None
    return np.linspace(spec.min, spec.max, bins + 1)


def _numeric_stats(values: np.ndarray, edges: np.ndarray | None) -> dict[str, Any]:
    stats: dict[str, Any] = {
        "count": int(values.size),
        "sum": float(values.sum()),
        "min": float(values.min()) if values.size else None,
        "max": float(values.max()) if values.size else None,
        "hist": None,
        "outside": 0,
    }
    if edges is not None:
        inside = values[(values >= edges[0]) & (values <= edges[-1])]
        stats["hist"] = np.histogram(inside, bins=edges)[0].astype(int).tolist()
        stats["outside"] = int(values.size - inside.size)
    return stats


def category_counts(values: Any) -> dict[str, int]:
    """Counts per value, at most MAX_CATEGORIES of them (the most frequent) and OTHER."""
    counts = pd.Series(values, dtype=object).dropna().astype(str).value_counts()
    kept = {str(k): int(v) for k, v in counts.iloc[:MAX_CATEGORIES].items()}
    rest = int(counts.iloc[MAX_CATEGORIES:].sum())
    return {**kept, OTHER: rest} if rest else kept


def profile_frame(text: pd.DataFrame, dataset: TabularData, bins: int) -> Profile:
    """Profile of one parsed batch: rows,
    nulls, per-feature stats and histograms (category counts for a category column),
    labels."""
    typed = read_typed(text, dataset)
    values = typed.frame
    shared = None if dataset.typed else bin_edges(dataset, bins)
    features: dict[str, Any] = {}
    for spec in dataset.feature_specs:
        column = values[spec.name]
        if spec.categorical:
            features[spec.name] = {
                "count": int(column.notna().sum()),
                "categories": category_counts(column),
            }
        else:
            edges = shared if shared is not None else bin_edges(dataset, bins, spec)
            features[spec.name] = _numeric_stats(column.dropna().to_numpy(dtype="float64"), edges)
    label = dataset.label_spec
    reasons = row_reasons(text[[label.name]], _only(typed, label.name), dataset, [label])
    usable = (reasons == "").to_numpy()
    unusable = as_text(text[[label.name]][~usable])[label.name]
    labels: dict[str, int] = {}
    if not dataset.continuous_label:
        kept = values[label.name][usable]
        if label.type in ("integer", "boolean"):
            kept = kept.astype("int64")
        labels = category_counts(kept.to_numpy())
    return {
        "rows": int(len(text)),
        "nulls": {c: int(n) for c, n in typed.missing.sum().items()},
        "non_numeric": {c: int(n) for c, n in typed.wrong_type.sum().items()},
        "features": features,
        "labels": dict(sorted(labels.items(), key=lambda kv: class_order(kv[0]))),
        # a blank, non-numeric or out-of-range label is unusable alike: a batch of string
        # labels has no valid one (counting only numbers out of range would pass it)
        "labels_out_of_range": int((~usable).sum()),
        "label_example": str(unusable.iloc[0])[:40] if len(unusable) else None,
        "label_reason": str(reasons[~usable].iloc[0])[:200] if len(unusable) else None,
    }


def _only(typed: Typed, name: str) -> Typed:
    return Typed(typed.frame[[name]], typed.missing[[name]], typed.wrong_type[[name]])


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
        for key in ("label_example", "label_reason"):  # the first batch's with one
            if profile.get(key) is not None and merged.get(key) is None:
                merged[key] = profile[key]
        merged["rows"] += profile["rows"]
        merged["labels_out_of_range"] += profile["labels_out_of_range"]
        for key in ("nulls", "non_numeric", "labels"):
            for name, count in profile[key].items():
                merged[key][name] = merged[key].get(name, 0) + count
        for column, stats in profile["features"].items():
            if "categories" in stats:
                into = merged["features"].setdefault(column, {"count": 0, "categories": {}})
                into["count"] += stats["count"]
                for name, count in stats["categories"].items():
                    into["categories"][name] = into["categories"].get(name, 0) + count
                continue
            into = merged["features"].setdefault(
                column,
                {"count": 0, "sum": 0.0, "min": None, "max": None, "hist": None, "outside": 0},
            )
            into["count"] += stats["count"]
            into["sum"] += stats["sum"]
            into["outside"] += stats["outside"]
            into["min"] = _extreme(min, into["min"], stats["min"])
            into["max"] = _extreme(max, into["max"], stats["max"])
            if stats["hist"] is not None:
                into["hist"] = (
                    list(stats["hist"])
                    if into["hist"] is None
                    else [a + b for a, b in zip(into["hist"], stats["hist"], strict=True)]
                )
    merged["labels"] = dict(sorted(merged["labels"].items(), key=lambda kv: class_order(kv[0])))
    return merged


def _extreme(pick, a, b):
    values = [v for v in (a, b) if v is not None]
    return pick(values) if values else None


def mean(stats: dict[str, Any]) -> float | None:
    return stats["sum"] / stats["count"] if stats["count"] else None


def drift(reference: Profile, current: Profile, label: str = "label") -> dict[str, float]:
    """PSI per feature (of a category column: of its category shares, a category the
    reference never had included), plus the label distribution under the label's own name."""
    scores = {}
    for column, stats in reference["features"].items():
        now = current["features"].get(column)
        if now is None:
            continue
        if "categories" in stats:
            scores[column] = shares_psi(stats["categories"], now.get("categories", {}))
        elif stats.get("hist") is not None and now.get("hist") is not None:
            scores[column] = psi(stats["hist"], now["hist"])
    if reference["labels"] or current["labels"]:
        scores[label] = shares_psi(reference["labels"], current["labels"])
    return scores


def shares_psi(reference: dict[str, int], current: dict[str, int]) -> float:
    names = sorted(set(reference) | set(current), key=class_order)
    return psi([reference.get(c, 0) for c in names], [current.get(c, 0) for c in names])
