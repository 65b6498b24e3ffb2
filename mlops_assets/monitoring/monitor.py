"""monitor: what production asked and how right the answers were, per environment and
model version, over the last hours, against the release that serves.

Drift is PSI per input feature, in the model-input space the server logs, over the deciles
(`drift_bins` quantile bins) of the deployed version's training split; the live metric is
the share of labelled requests the logged prediction got right (accuracy, top-1), with a
95% Wilson interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from mlops_assets.core.classes import class_order
from mlops_assets.core.config import MonitorConfig
from mlops_assets.core.drift import psi
from mlops_assets.core.kind import DatasetKind
from mlops_assets.monitoring.digest import (
    DigestResult,
    digest_new,
    environment_folders,
    histograms,
    hour_of,
    hour_summaries,
    labelled_since,
    merge_version,
)
from mlops_assets.monitoring.provenance import DeployedVersions
from mlops_assets.registry import ModelRegistry, UnknownVersionError
from mlops_assets.serving.inference_log import row_summary  # what the server logs
from mlops_assets.storage import Layout, ObjectStorage

LIVE_METRICS = ("accuracy", "top1")
REGRESSION_LIVE = {"rmse": "rmse", "r2": "rmse", "mae": "mae"}
"""A regression's live metric from its gate's: the errors logged answers can give."""
REFERENCE_ROWS = 20_000
BOOTSTRAP_RESAMPLES = 2000


@dataclass
class Reference:
    version: str
    mode: str
    features: list[str]
    edges: list[list[float]]
    train: list[list[int]]
    test_labels: dict[str, int]
    test_metric: float | None
    metric: str
    dataset_version: str


def live_metric_name(gate_metric: str) -> str:
    """The gate's metric where logged predictions can compute it, else accuracy (RMSE or
    MAE for a regression)."""
    if gate_metric in REGRESSION_LIVE:
        return REGRESSION_LIVE[gate_metric]
    return gate_metric if gate_metric in LIVE_METRICS else "accuracy"


class References:
    """Each model version's reference, computed once and stored beside the summaries."""

    def __init__(
        self,
        storage: ObjectStorage,
        layout: Layout,
        dataset: DatasetKind,
        gate_metric: str,
        bins: int,
    ) -> None:
        self.storage, self.layout, self.dataset = storage, layout, dataset
        self.metric, self.bins = live_metric_name(gate_metric), bins
        self.registry = ModelRegistry(storage, layout.use_case)
        self._cache: dict[tuple[str, str], Reference | None] = {}

    def classes(self, version: str) -> list[int] | None:
        try:
            return self.registry.metadata(int(version)).get("classes")
        except (ValueError, UnknownVersionError):
            return None

    def edges(self, version: str, mode: str) -> list[list[float]] | None:
        reference = self.get(version, mode)
        return reference.edges if reference else None

    def get(self, version: str, mode: str) -> Reference | None:
        if (version, mode) not in self._cache:
            self._cache[(version, mode)] = self._load(version, mode)
        return self._cache[(version, mode)]

    def _load(self, version: str, mode: str) -> Reference | None:
        if not version.isdigit():
            return None  # not a version of this registry (digest refuses such files)
        key = self.layout.monitor("reference", f"v{version}-{mode}.json")
        stored = self.storage.read_json(key, default={}) if mode != "none" else {}
        if not stored:
            try:
                metadata = self.registry.metadata(int(version))
            except (ValueError, UnknownVersionError):
                return None  # a version this registry does not hold: nothing to compare with
            stored = self._compute(metadata, mode)
            if mode != "none":
                self.storage.write_json(key, stored, if_absent=True)
        return Reference(version=version, mode=mode, **stored)

    def _compute(self, metadata: dict[str, Any], mode: str) -> dict[str, Any]:
        dataset_version = metadata["dataset_version"]
        test = self.dataset.load_split(self.storage, self.layout, dataset_version, "test")
        labels = np.concatenate([y for _, y in test.chunks()] or [np.zeros(0, "int64")])
        test_labels = (
            {}  # a regression target: no classes to count
            if labels.dtype.kind == "f"
            else {
                str(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True), strict=True)
            }
        )
        metrics = metadata.get("metrics", {})
        out: dict[str, Any] = {
            "features": [],
            "edges": [],
            "train": [],
            "test_labels": test_labels,
            "test_metric": metrics.get(self.metric, metrics.get("accuracy")),
            "metric": self.metric,
            "dataset_version": dataset_version,
        }
        if mode == "none":
            return out
        train = self.dataset.load_split(self.storage, self.layout, dataset_version, "train")
        parts, rows = [], 0
        for x, _ in train.chunks():
            if mode == "table":
                parts.append(np.asarray(x, dtype=object))
            else:
                flat = np.asarray(x, dtype="float64").reshape(len(x), -1)
                parts.append(row_summary(flat) if mode == "summary" else flat)
            rows += len(x)
            if rows >= REFERENCE_ROWS:
                break
        values = np.concatenate(parts)
        if mode == "table":
            out["edges"] = self._table_edges(metadata, values)
        else:
            out["edges"] = [self._cut(values[:, j]) for j in range(values.shape[1])]
        out["train"] = histograms(values, out["edges"])
        out["features"] = _feature_names(metadata, mode, values.shape[1])
        return out

    def _cut(self, column: np.ndarray) -> list[float]:
        """The quantile edges of a numeric column (`drift_bins` bins), NaN left out."""
        column = column[~np.isnan(column)]
        quantiles = np.linspace(0, 1, self.bins + 1)[1:-1]
        return (np.unique(np.quantile(column, quantiles)) if len(column) else np.zeros(0)).tolist()

    def _table_edges(self, metadata: dict[str, Any], values: np.ndarray) -> list[Any]:
        """Per column of a table, as its request contract declares it: the quantile edges of
        a number column, the known categories of a category column (what the model saw)."""
        edges: list[Any] = []
        for j, column in enumerate(metadata["request"]["columns"]):
            if column.get("datatype") == "BYTES":
                known = column.get("categories") or sorted(
                    {str(v) for v in values[:, j] if v is not None}
                )
                edges.append({"categories": [str(c) for c in known]})
            else:
                numbers = np.array(
                    [np.nan if v is None else float(v) for v in values[:, j]], dtype="float64"
                )
                edges.append(self._cut(numbers))
        return edges


def _feature_names(metadata: dict[str, Any], mode: str, width: int) -> list[str]:
    if mode == "summary":
        return ["input_mean", "input_std", "input_min", "input_max"]
    if mode == "table":
        return [c["name"] for c in metadata["request"]["columns"]]
    inputs = (metadata.get("request") or {}).get("inputs") or [{}]
    names = inputs[0].get("features") or []
    return list(names) if len(names) == width else [f"x{i}" for i in range(width)]


@dataclass
class VersionReport:
    environment: str
    version: str
    rows: int
    requests: int
    errors: int
    labelled: int
    correct: int
    predictions: dict[str, int]
    last: str
    reference: Reference | None
    drift: dict[str, float] = field(default_factory=dict)
    prediction_psi: float | None = None
    interval: tuple[float, float] | None = None
    sq_error: float = 0.0
    abs_error: float = 0.0

    @property
    def coverage(self) -> float:
        return self.labelled / self.rows if self.rows else 0.0

    @property
    def regression(self) -> bool:
        return self.reference is not None and self.reference.metric in ("rmse", "mae")

    @property
    def live_metric(self) -> float | None:
        if not self.labelled:
            return None
        if self.regression and self.reference.metric == "rmse":
            return float(np.sqrt(self.sq_error / self.labelled))
        if self.regression:
            return self.abs_error / self.labelled
        return self.correct / self.labelled


@dataclass
class MonitorReport:
    window: tuple[str, str]
    digest: DigestResult
    versions: list[VersionReport]
    judged: VersionReport | None
    """The version the judged environment served last: the checks are about it."""
    hours_read: int


def run_monitor(
    storage: ObjectStorage,
    layout: Layout,
    dataset: DatasetKind,
    config: MonitorConfig,
    environment: str,
    gate_metric: str,
    now: datetime | None = None,
    *,
    deployed: DeployedVersions,
) -> MonitorReport:
    """The report over the window ending at `now`; `deployed` (what git deployed, per
    environment) decides which log files are believed."""
    references = References(storage, layout, dataset, gate_metric, config.drift_bins)
    now = now or datetime.now(UTC)
    budget = int(config.max_file_mb * 1024 * 1024)
    digest = digest_new(
        storage, layout, references.edges, now, deployed=deployed, budget_bytes=budget
    )
    first = hour_of(now - timedelta(hours=config.window_hours - 1))
    last = hour_of(now)
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    hours = 0
    for env in environment_folders(storage, layout.monitor("hours")):
        for _, key in hour_summaries(storage, layout, env, first, last):  # the window's only
            hours += 1
            summary = storage.read_json(key)
            for version, stats in summary.get("versions", {}).items():
                totals[(env, version)] = merge_version(totals.get((env, version)), stats)
    reports = []
    for (env, version), stats in sorted(totals.items()):
        report = VersionReport(
            environment=env,
            version=version,
            rows=stats["rows"],
            requests=stats["requests"],
            errors=stats.get("errors", 0),
            labelled=stats["labelled"],
            correct=stats["correct"],
            sq_error=stats.get("sq_error", 0.0),
            abs_error=stats.get("abs_error", 0.0),
            predictions=stats["predictions"],
            last=stats["last"],
            reference=references.get(version, stats.get("mode") or "none"),
        )
        _compare(report, stats)
        reports.append(report)
    served = [r for r in reports if r.environment == environment and r.rows]
    judged = max(served, key=lambda r: r.last) if served else None
    if judged is not None and judged.regression and judged.labelled:
        since = datetime.strptime(first, "%Y-%m-%dT%H").replace(tzinfo=UTC)
        errors = labelled_errors(storage, layout, since, first, judged)
        if len(errors):
            judged.interval = bootstrap_interval(errors, judged.reference.metric)
    return MonitorReport((first, last), digest, reports, judged, hours)


def labelled_errors(
    storage: ObjectStorage, layout: Layout, since: datetime, first: str, report: VersionReport
) -> np.ndarray:
    """The per-row errors of the version's labelled regression answers in the window, from
    the labelled batches written since its first hour (what the hour summaries sum)."""
    parts = []
    for info in labelled_since(storage, layout, since):
        frame = storage.read_parquet(
            info.key, columns=["time", "environment", "model_version", "prediction", "label"]
        )
        if frame["label"].dtype.kind != "f":
            continue
        mine = frame[
            (frame["environment"] == report.environment)
            & (frame["model_version"].astype(str) == report.version)
            & (frame["time"].dt.strftime("%Y-%m-%dT%H") >= first)
        ]
        parts.append((mine["prediction"].astype("float64") - mine["label"]).to_numpy())
    return np.concatenate(parts) if parts else np.zeros(0)


def bootstrap_interval(errors: np.ndarray, metric: str, seed: int = 0) -> tuple[float, float]:
    """The 95% interval of the live RMSE or MAE: a seeded bootstrap of the labelled rows."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(errors), size=(BOOTSTRAP_RESAMPLES, len(errors)))
    sample = errors[picks]
    values = (
        np.sqrt(np.mean(sample**2, axis=1)) if metric == "rmse" else np.mean(np.abs(sample), axis=1)
    )
    low, high = np.quantile(values, [0.025, 0.975])
    return float(low), float(high)


def _compare(report: VersionReport, stats: dict[str, Any]) -> None:
    reference = report.reference
    if report.labelled and not report.regression:
        from scipy.stats import binomtest

        ci = binomtest(report.correct, report.labelled).proportion_ci(0.95, method="wilson")
        report.interval = (float(ci.low), float(ci.high))
    if reference is None:
        return
    classes = sorted(set(reference.test_labels) | set(report.predictions), key=class_order)
    if report.predictions and reference.test_labels:
        report.prediction_psi = psi(
            [reference.test_labels.get(c, 0) for c in classes],
            [report.predictions.get(c, 0) for c in classes],
        )
    if stats.get("hist") is not None and reference.train:
        report.drift = {
            name: psi(expected, actual)
            for name, expected, actual in zip(
                reference.features, reference.train, stats["hist"], strict=True
            )
        }
