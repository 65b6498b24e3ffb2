"""Is a difference between two models real? Paired tests on the same rows.

Accuracy-like metrics (a row is right or wrong: accuracy, top-1, top-5) use McNemar's exact
test on the discordant rows (scipy's exact binomial test) and, for the interval, the exact
(Clopper-Pearson) interval of the discordant split turned into a difference of accuracies,
so that interval and p-value come from the same conditional model and do not contradict
each other on a handful of discordant rows (as a Wald interval does); any other metric (macro F1,
macro accuracy) a paired bootstrap of the difference (scipy's, seeded), whose percentile
interval and two-sided sign share give the interval and the p-value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mlops_assets.mlops.metrics import log_loss, regression_metrics, roc_auc

ACCURACY_LIKE = ("accuracy", "top1", "top5")
UNIT_METRICS = ("rmse", "mae", "log_loss")
"""Metrics in their own units, not shares of rows: shown as they are, not as points."""
PROBABILITY_METRICS = ("roc_auc", "log_loss")


@dataclass(frozen=True)
class Comparison:
    """candidate minus champion, in the metric's units, on the same `rows`."""

    metric: str
    difference: float
    low: float
    high: float
    p_value: float
    test: str
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def points(self) -> str:
        """'+0.3 points (95% CI -1.2 to +1.8, p=0.61)' for a share (accuracy, F1, AUC);
        '-2.41 (95% CI -4.02 to -0.77, p=0.004)' in the metric's units (RMSE, log loss)."""
        if self.metric in UNIT_METRICS:
            return (
                f"{self.difference:+.4g} (95% CI {self.low:+.4g} to {self.high:+.4g}, "
                f"p={self.p_value:.2g})"
            )
        return (
            f"{100 * self.difference:+.1f} points (95% CI {100 * self.low:+.1f} to "
            f"{100 * self.high:+.1f}, p={self.p_value:.2g})"
        )

    def amount(self, value: float) -> str:
        """A threshold (min_effect) in the units `points` uses."""
        if self.metric in UNIT_METRICS:
            return f"{value:.4g}"
        return f"{100 * value:.1f} points"


def mcnemar(
    candidate_right: np.ndarray, champion_right: np.ndarray, metric: str, confidence: float = 0.95
) -> Comparison:
    from scipy.stats import binomtest

    a = np.asarray(candidate_right, dtype=bool)
    b = np.asarray(champion_right, dtype=bool)
    n = len(a)
    only_candidate = int(np.sum(a & ~b))
    only_champion = int(np.sum(~a & b))
    discordant = only_candidate + only_champion
    difference = (only_candidate - only_champion) / n if n else 0.0
    low = high = difference
    p_value = 1.0
    if discordant:
        test = binomtest(only_candidate, discordant, 0.5)
        p_value = test.pvalue
        share = test.proportion_ci(confidence, method="exact")  # of the candidate's wins
        low = discordant / n * (2 * share.low - 1)
        high = discordant / n * (2 * share.high - 1)
    return Comparison(
        metric,
        float(difference),
        float(low),
        float(high),
        float(p_value),
        f"McNemar exact ({only_candidate} rows only the candidate got right, "
        f"{only_champion} only the champion)",
        n,
    )


def paired_bootstrap(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    y: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray,
    metric: str,
    *,
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Comparison:
    """`statistic(y, predicted)`, compared on resamples of the same rows for both models."""
    from scipy.stats import bootstrap

    def difference(yy, aa, bb) -> float:
        return statistic(yy, aa) - statistic(yy, bb)

    y, candidate, champion = np.asarray(y), np.asarray(candidate), np.asarray(champion)
    observed = difference(y, candidate, champion)
    if len(y) < 2:
        return Comparison(metric, observed, observed, observed, 1.0, "too few rows", len(y))
    # the rows are resampled (their indices), so a row's label and both models' outputs for
    # it, class probabilities included, stay together
    result = bootstrap(
        (np.arange(len(y)),),
        lambda rows: difference(y[rows], candidate[rows], champion[rows]),
        vectorized=False,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        random_state=seed,
    )
    draws = np.asarray(result.bootstrap_distribution)
    # two-sided, counting the observed sample among the draws (Davison & Hinkley): never 0,
    # at least 2 / (resamples + 1), since that is all `resamples` draws can tell
    side = min(np.sum(draws <= 0), np.sum(draws >= 0))
    p_value = min(1.0, 2 * (side + 1) / (len(draws) + 1))
    return Comparison(
        metric,
        float(observed),
        float(result.confidence_interval.low),
        float(result.confidence_interval.high),
        float(p_value),
        f"paired bootstrap ({resamples} resamples, seed {seed})",
        len(y),
    )


def right_rows(metric: str, y: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None):
    """Per row, whether it counts as right for an accuracy-like metric (None: not one, or
    top-5 without class scores)."""
    if metric in ("accuracy", "top1"):
        return np.asarray(predicted) == np.asarray(y)
    if metric == "top5" and scores is not None:
        top = np.argsort(scores, axis=1)[:, -5:]
        return np.any(top == np.asarray(y)[:, None], axis=1)
    return None


def metric_function(metric: str, classes: list[Any]) -> Callable[[np.ndarray, np.ndarray], float]:
    """`metric(y, predicted)` (predicted: class probabilities for roc_auc and log_loss)."""
    from sklearn.metrics import f1_score, recall_score

    if metric in ("macro_f1", "f1_macro", "f1_weighted"):
        average = "weighted" if metric == "f1_weighted" else "macro"
        return lambda y, p: float(f1_score(y, p, labels=classes, average=average, zero_division=0))
    if metric == "balanced_accuracy":
        # scikit-learn's definition (the mean recall over the classes y holds), without its
        # warnings on a resample that happens to hold one class
        def balanced_accuracy(y, p) -> float:
            y, p = np.asarray(y), np.asarray(p)
            return float(np.mean([np.mean(p[y == c] == c) for c in np.unique(y)]))

        return balanced_accuracy
    if metric == "macro_accuracy":

        def macro_accuracy(y, p) -> float:
            recall = recall_score(y, p, labels=classes, average=None, zero_division=0)
            present = [r for c, r in zip(classes, recall, strict=True) if np.any(y == c)]
            return float(np.mean(present)) if present else 0.0

        return macro_accuracy
    if metric in ("rmse", "mae", "r2"):
        return lambda y, p: regression_metrics(y, p)[metric]
    if metric == "roc_auc":
        return lambda y, p: roc_auc(y, p, classes) or 0.5
    if metric == "log_loss":
        return lambda y, p: log_loss(y, p, classes) or 0.0
    raise ValueError(f"no paired test for the metric {metric!r}")


def compare(
    metric: str,
    y: np.ndarray,
    candidate: tuple[np.ndarray, ...],
    champion: tuple[np.ndarray, ...],
    classes: list[Any],
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """The paired test suited to `metric`, on (predicted, scores[, probabilities]) of both
    models: McNemar where a row is right or wrong, else a seeded paired bootstrap of the
    metric's difference."""
    a = right_rows(metric, y, candidate[0], candidate[1])
    b = right_rows(metric, y, champion[0], champion[1])
    if a is not None and b is not None:
        return mcnemar(a, b, metric)
    which = 2 if metric in PROBABILITY_METRICS else 0
    if which >= len(candidate) or candidate[which] is None or champion[which] is None:
        raise ValueError(f"{metric} needs class probabilities from both models")
    return paired_bootstrap(
        metric_function(metric, classes),
        y,
        candidate[which],
        champion[which],
        metric,
        resamples=resamples,
        seed=seed,
    )
