"""Metrics on a split, and the champion/challenger gate decision."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_assets.core.config import GateConfig
from mlops_assets.errors import MlopsError
from mlops_assets.mlops.metrics import log_loss, regression_metrics, roc_auc
from mlops_assets.mlops.significance import Comparison


class MissingMetricError(MlopsError, ValueError):
    """The gate's metric cannot be computed for the candidate (no probabilities)."""


if TYPE_CHECKING:
    from mlops_assets.core.split_data import SplitData


def evaluate(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    scores: np.ndarray | None,
    classes: list[Any],
    task: str = "classification",
    proba: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics on one split, for its task. Classification: `top1` is `accuracy`; `top5`
    needs class scores; `macro_accuracy` is the mean per-class recall (what LSFB papers call
    it); `roc_auc` and `log_loss` need class probabilities (`proba`, columns in `classes`
    order). Regression: RMSE, MAE and R²."""
    if task == "regression":
        return regression_metrics(y_true, y_pred)
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        recall_score,
        top_k_accuracy_score,
    )

    recall = recall_score(y_true, y_pred, labels=classes, average=None, zero_division=0)
    present = [r for c, r in zip(classes, recall, strict=True) if np.any(y_true == c)]
    accuracy = float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0
    top5 = None
    if scores is not None and len(y_true) and scores.shape[1] > 5:
        top5 = float(top_k_accuracy_score(y_true, scores, k=5, labels=classes))
    macro_f1 = float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0))
    return {
        "accuracy": accuracy,
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "f1_macro": macro_f1,
        "f1_weighted": float(
            f1_score(y_true, y_pred, labels=classes, average="weighted", zero_division=0)
        ),
        "roc_auc": roc_auc(y_true, proba, classes),
        "log_loss": log_loss(y_true, proba, classes),
        "top1": accuracy,
        "top5": top5,
        "macro_accuracy": float(np.mean(present)) if present else 0.0,
        "macro_f1": macro_f1,
        "per_class_recall": {str(c): float(r) for c, r in zip(classes, recall, strict=True)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        "classes": list(classes),
        "rows": int(len(y_true)),
    }


def predict_all(
    adapter: Any, model: Any, split: SplitData
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The true labels, the predicted classes, class scores and class probabilities (in
    `split.classes` order; None where the adapter gives none), in one pass over the split:
    an adapter with `predict_and_proba` predicts both from one call per shard."""
    wants_proba = split.task == "classification" and hasattr(adapter, "predict_proba")
    if not wants_proba:
        return (*predict_split(adapter, model, split), None)
    labels, predicted, parts = [], [], []
    both = getattr(adapter, "predict_and_proba", None)
    for x, y in split.chunks():
        labels.append(y)
        if both is not None:
            p, proba = both(model, x)
        else:
            p, proba = adapter.predict(model, x), adapter.predict_proba(model, x)
        predicted.append(np.asarray(p))
        parts.append(proba)
    if not predicted:
        return np.zeros(0, "int64"), np.zeros(0, "int64"), None, None
    y_true, y_pred = np.concatenate(labels), np.concatenate(predicted)
    if any(part is None for part in parts):
        return y_true, y_pred, None, None
    proba = np.concatenate(parts)
    index = {c: i for i, c in enumerate(getattr(model, "classes_", split.classes))}
    out = np.zeros((len(proba), len(split.classes)))
    for column, name in enumerate(split.classes):
        if name in index:
            out[:, column] = proba[:, index[name]]
    return y_true, y_pred, None, out


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    """Whether release runs: PASS, or HOLD when `on_hold` is `promote`."""
    summary: str
    """One line a person can read: the decision, the difference, its interval and p-value."""
    candidate: float
    champion: float | None
    champion_version: int | None
    improvement: float | None
    decision: str = "PASS"
    """PASS, REJECT or HOLD."""


def gate(
    candidate: dict[str, Any],
    champion: dict[str, Any] | None,
    champion_version: int | None,
    config: GateConfig,
    comparison: Comparison | None = None,
    shadow: Comparison | None = None,
) -> GateDecision:
    """The absolute threshold first; then, against a champion, the paired test on the test
    split (`comparison`) and, where there is one, on production traffic (`shadow`)."""
    name, sign = config.metric, (1 if config.better == "maximize" else -1)
    value = candidate.get(name)
    if value is None:
        raise MissingMetricError(
            f"gate.metric {name!r} cannot be computed for this candidate: "
            + (
                "it needs class probabilities (predict_proba), which the model does not give"
                if name in ("roc_auc", "log_loss")
                else "not a metric of its task"
            )
        )
    champion_value = champion[name] if champion is not None else None
    improvement = sign * (value - champion_value) if champion is not None else None
    if sign * (value - config.threshold) < 0:
        bound = "minimum" if sign > 0 else "maximum"
        versus = f"; champion v{champion_version} stays" if champion_version else ""
        return GateDecision(
            False,
            f"REJECT: candidate {name} {value:.4f} misses the {bound} {config.threshold:.4f}"
            + versus,
            value,
            champion_value,
            champion_version,
            improvement,
            "REJECT",
        )
    if champion is None or comparison is None:
        return GateDecision(
            True,
            f"PASS: candidate {name} {value:.4f} reaches the threshold {config.threshold:.4f} "
            "(no champion yet)",
            value,
            champion_value,
            champion_version,
            improvement,
        )
    difference = sign * comparison.difference
    significant = comparison.p_value < config.alpha
    head = f"{name} {value:.4f} vs champion v{champion_version} {champion_value:.4f}: "
    stays = f"champion v{champion_version} stays"
    if significant and difference < 0:
        decision, line = "REJECT", f"{comparison.points()} is significantly worse; {stays}"
    elif significant and difference > 0 and difference >= config.min_effect:
        decision = "PASS"
        line = f"{comparison.points()} is significant; the candidate replaces v{champion_version}"
    elif significant and difference > 0:
        decision = "HOLD"
        line = (
            f"{comparison.points()} is significant but below min_effect "
            f"{comparison.amount(config.min_effect)}; {stays}"
        )
    else:
        decision, line = "HOLD", f"{comparison.points()} is not significant; {stays}"
    if shadow is not None and decision != "REJECT":
        worse = shadow.p_value < config.alpha and sign * shadow.difference < 0
        on_traffic = f"on {shadow.rows} labelled production requests {shadow.points()}"
        if worse and config.shadow.when_worse != "report":
            decision = "REJECT" if config.shadow.when_worse == "reject" else "HOLD"
            line = f"{line.split(';')[0]}, but {on_traffic} is significantly worse; {stays}"
        else:
            line += f"; {on_traffic}" + (" (significantly worse, reported only)" if worse else "")
    passed = decision == "PASS" or (decision == "HOLD" and config.on_hold == "promote")
    if decision == "HOLD" and passed:
        line = line.replace(stays, f"promoted anyway (on_hold: promote) over v{champion_version}")
    return GateDecision(
        passed,
        f"{decision}: {head}{line}",
        value,
        champion_value,
        champion_version,
        improvement,
        decision,
    )


def incomparable_decision(
    decision: GateDecision, why: str, champion_version: int | None, config: GateConfig
) -> GateDecision:
    """The champion cannot score this test split (another schema, another task, an
    artifact this process may not load): a HOLD with the reason, not a pass on the
    threshold. A candidate that misses the threshold stays rejected."""
    if decision.decision == "REJECT":
        return replace(decision, champion_version=champion_version)
    promote = config.on_hold == "promote"
    then = (
        "promoted anyway (on_hold: promote)"
        if promote
        else f"champion v{champion_version} stays (on_hold: keep_champion)"
    )
    head = decision.summary.split(" (no champion yet)")[0].removeprefix("PASS: ")
    return replace(
        decision,
        passed=promote,
        decision="HOLD",
        champion_version=champion_version,
        summary=f"HOLD: {head}; {why}; {then}",
    )


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
