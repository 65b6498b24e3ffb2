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
    merge_version,
)
from mlops_assets.monitoring.provenance import DeployedVersions
from mlops_assets.registry import ModelRegistry, UnknownVersionError
from mlops_assets.serving.inference_log import row_summary  # what the server logs
from mlops_assets.storage import Layout, ObjectStorage

LIVE_METRICS = ("accuracy", "top1")
REFERENCE_ROWS = 20_000


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
    """The gate's metric where logged predictions can compute it, else accuracy."""
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
        test_labels = {
            str(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True), strict=True)
        }
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
            flat = np.asarray(x, dtype="float64").reshape(len(x), -1)
            parts.append(row_summary(flat) if mode == "summary" else flat)
            rows += len(x)
            if rows >= REFERENCE_ROWS:
                break
        values = np.concatenate(parts)
        quantiles = np.linspace(0, 1, self.bins + 1)[1:-1]
        edges = []
        for j in range(values.shape[1]):
            column = values[:, j][~np.isnan(values[:, j])]
            cut = np.unique(np.quantile(column, quantiles)) if len(column) else np.zeros(0)
            edges.append(cut.tolist())
        out["edges"] = edges
        out["train"] = histograms(values, edges)
        out["features"] = _feature_names(metadata, mode, values.shape[1])
        return out


def _feature_names(metadata: dict[str, Any], mode: str, width: int) -> list[str]:
    if mode == "summary":
        return ["input_mean", "input_std", "input_min", "input_max"]
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

    @property
    def coverage(self) -> float:
        return self.labelled / self.rows if self.rows else 0.0

    @property
    def live_metric(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None


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
            predictions=stats["predictions"],
            last=stats["last"],
            reference=references.get(version, stats.get("mode") or "none"),
        )
        _compare(report, stats)
        reports.append(report)
    served = [r for r in reports if r.environment == environment and r.rows]
    judged = max(served, key=lambda r: r.last) if served else None
    return MonitorReport((first, last), digest, reports, judged, hours)


def _compare(report: VersionReport, stats: dict[str, Any]) -> None:
    reference = report.reference
    if report.labelled:
        from scipy.stats import binomtest

        ci = binomtest(report.correct, report.labelled).proportion_ci(0.95, method="wilson")
        report.interval = (float(ci.low), float(ci.high))
    if reference is None:
        return
    classes = sorted(set(reference.test_labels) | set(report.predictions), key=int)
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
