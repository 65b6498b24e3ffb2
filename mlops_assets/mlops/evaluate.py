"""Metrics on a split, and the champion/challenger gate decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_assets.components.config import GateConfig

if TYPE_CHECKING:
    from mlops_assets.pipeline.split_data import SplitData


def evaluate(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    scores: np.ndarray | None,
    classes: list[int],
) -> dict[str, Any]:
    """Metrics on one split. `top1` is `accuracy`; `top5` needs class scores;
    `macro_accuracy` is the mean per-class recall (what LSFB papers call it)."""
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        recall_score,
        top_k_accuracy_score,
    )

    recall = recall_score(y_true, y_pred, labels=classes, average=None, zero_division=0)
    present = [r for c, r in zip(classes, recall, strict=True) if np.any(y_true == c)]
    accuracy = float(accuracy_score(y_true, y_pred))
    top5 = None
    if scores is not None and len(y_true) and scores.shape[1] > 5:
        top5 = float(top_k_accuracy_score(y_true, scores, k=5, labels=classes))
    return {
        "accuracy": accuracy,
        "top1": accuracy,
        "top5": top5,
        "macro_accuracy": float(np.mean(present)) if present else 0.0,
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)
        ),
        "per_class_recall": {str(c): float(r) for c, r in zip(classes, recall, strict=True)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        "classes": classes,
        "rows": int(len(y_true)),
    }


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    summary: str
    """One line a person can read: both values, the margin and the decision."""
    candidate: float
    champion: float | None
    champion_version: int | None
    improvement: float | None


def gate(
    candidate: dict[str, Any],
    champion: dict[str, Any] | None,
    champion_version: int | None,
    config: GateConfig,
) -> GateDecision:
    name, sign = config.metric, (1 if config.direction == "maximize" else -1)
    value = candidate[name]
    reasons = []
    if sign * (value - config.threshold) < 0:
        bound = "minimum" if sign > 0 else "maximum"
        reasons.append(f"{name} {value:.4f} misses the {bound} {config.threshold:.4f}")
    improvement = None
    champion_value = None
    if champion is not None:
        champion_value = champion[name]
        improvement = sign * (value - champion_value)
        if improvement <= 0:  # a tie keeps the champion, whatever the margin
            reasons.append(
                f"it does not beat champion v{champion_version} ({champion_value:.4f}): "
                + ("a tie keeps the champion" if improvement == 0 else f"by {improvement:+.4f}")
            )
        elif improvement < config.margin:
            reasons.append(
                f"it does not beat champion v{champion_version} ({champion_value:.4f}) by the "
                f"margin {config.margin:+.4f} (by {improvement:+.4f})"
            )
    versus = (
        f"vs champion v{champion_version} {name} {champion_value:.4f} "
        f"(improvement {improvement:+.4f}, margin {config.margin:+.4f} required)"
        if champion is not None
        else "(no champion yet)"
    )
    head = (
        f"candidate {name} {value:.4f} {versus}, {config.direction}, "
        f"threshold {config.threshold:.4f}"
    )
    summary = f"PASS: {head}" if not reasons else f"REJECTED: {head}: " + "; ".join(reasons)
    return GateDecision(not reasons, summary, value, champion_value, champion_version, improvement)


def predict_split(
    adapter: Any, model: Any, split: SplitData
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The true labels, the predicted classes and, where the adapter gives them, class
    scores (for top-k metrics), in one pass over the split's shards."""
    labels, predicted, scores = [], [], []
    has_scores = hasattr(adapter, "predict_scores")
    for x, y in split.chunks():
        labels.append(y)
        if has_scores:
            s = adapter.predict_scores(model, x)
            scores.append(s)
            predicted.append(np.argmax(s, axis=1))
        else:
            predicted.append(np.asarray(adapter.predict(model, x)))
    if not predicted:
        return np.zeros(0, "int64"), np.zeros(0, "int64"), None
    return (
        np.concatenate(labels),
        np.concatenate(predicted),
        np.concatenate(scores) if has_scores else None,
    )
