"""The per-task metrics the gate may name that need more than a label per row (regression
errors, probability scores), shared by `evaluate` and the paired tests in `significance`."""

from __future__ import annotations

from typing import Any

import numpy as np


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    y, p = np.asarray(y_true, dtype="float64"), np.asarray(y_pred, dtype="float64")
    rows = len(y)
    error = p - y
    total = float(np.sum((y - y.mean()) ** 2)) if rows else 0.0
    return {
        "rmse": float(np.sqrt(np.mean(error**2))) if rows else 0.0,
        "mae": float(np.mean(np.abs(error))) if rows else 0.0,
        "r2": float(1 - np.sum(error**2) / total) if total else 0.0,
        "rows": rows,
    }


def roc_auc(y: np.ndarray, proba: np.ndarray | None, classes: list[Any]) -> float | None:
    """One-vs-rest macro ROC AUC (binary: of the second class); None without probabilities
    or with a class missing from the rows."""
    from sklearn.metrics import roc_auc_score

    present = set(np.asarray(y).tolist())
    if proba is None or len(classes) < 2 or len(present) < 2 or present - set(classes):
        return None
    if len(classes) == 2:
        return float(roc_auc_score(np.asarray(y) == classes[1], proba[:, 1]))
    if len(present) < len(classes):
        return None
    return float(roc_auc_score(y, proba, labels=classes, multi_class="ovr"))


def log_loss(y: np.ndarray, proba: np.ndarray | None, classes: list[Any]) -> float | None:
    from sklearn.metrics import log_loss as sk_log_loss

    if proba is None or not len(y) or set(np.asarray(y).tolist()) - set(classes):
        return None
    # scikit-learn reads the columns in the labels' sorted order, whatever `labels` says
    order = sorted(range(len(classes)), key=lambda i: classes[i])
    ordered = np.clip(proba[:, order], 1e-15, 1.0)
    return float(sk_log_loss(y, ordered, labels=[classes[i] for i in order]))
