"""The monitor's materialization metadata: tables and plots, as observe and validate show."""

from __future__ import annotations

from typing import Any

import dagster as dg

from mlops_assets.core.classes import class_order
from mlops_assets.core.report import bar_plot, md_table
from mlops_assets.monitoring.checks import Verdict
from mlops_assets.monitoring.monitor import MonitorReport


def monitor_metadata(report: MonitorReport, verdicts: list[Verdict], retrain: str) -> dict:
    judged = report.judged
    metadata: dict[str, Any] = {
        "window": f"{report.window[0]}:00 to {report.window[1]}:59 UTC",
        "log_files_read": report.digest.log_files,
        "labelled_files_read": report.digest.labelled_files,
        "hours_read": report.hours_read,
        "log_files_refused": len(report.digest.refused),
        "checks": dg.MetadataValue.json({v.name: v.status for v in verdicts}),
        "retrain": retrain,
    }
    metadata["versions"] = dg.MetadataValue.md(
        md_table(
            [
                "environment",
                "version",
                "rows",
                "requests",
                "labelled",
                "coverage",
                "live metric (95% CI)",
                "test",
                "prediction PSI",
                "max input PSI",
            ],
            [
                (
                    r.environment,
                    f"v{r.version}",
                    r.rows,
                    r.requests,
                    r.labelled,
                    f"{r.coverage:.1%}",
                    f"{r.live_metric:.4f} ({r.interval[0]:.4f} to {r.interval[1]:.4f})"
                    if r.interval
                    else "-",
                    r.reference.test_metric if r.reference and r.reference.test_metric else "-",
                    r.prediction_psi if r.prediction_psi is not None else "-",
                    max(r.drift.values()) if r.drift else "-",
                )
                for r in report.versions
            ],
        )
    )
    if report.digest.refused:
        metadata["refused_files"] = dg.MetadataValue.md(
            md_table(["file", "reason"], report.digest.refused[:50])
        )
    if judged is None:
        return metadata
    metadata.update(
        {
            "environment": judged.environment,
            "model_version": judged.version,
            "rows": judged.rows,
            "requests": judged.requests,
            "labelled": judged.labelled,
            "label_coverage": judged.coverage,
        }
    )
    if judged.interval:
        metadata["live_metric"] = judged.live_metric
        metadata["live_ci_low"], metadata["live_ci_high"] = judged.interval
    reference = judged.reference
    if reference and reference.test_metric is not None:
        metadata[f"test_{reference.metric}"] = reference.test_metric
    if judged.drift:
        top = sorted(judged.drift.items(), key=lambda kv: -kv[1])
        metadata["max_input_psi"] = top[0][1]
        metadata["input_psi"] = dg.MetadataValue.json(dict(judged.drift))
        metadata["drift"] = dg.MetadataValue.md(
            f"PSI of v{judged.version}'s inputs in the window against its training split "
            f"(dataset {reference.dataset_version}), per feature.\n\n"
            + md_table(["feature", "PSI"], top[:12])
            + "\n\n"
            + bar_plot({"PSI": dict(judged.drift)}, "input PSI per feature", "input drift")
        )
    if judged.predictions and reference:
        classes = sorted(set(reference.test_labels) | set(judged.predictions), key=class_order)
        live_total = sum(judged.predictions.values()) or 1
        test_total = sum(reference.test_labels.values()) or 1
        metadata["prediction_psi"] = judged.prediction_psi
        metadata["predictions"] = dg.MetadataValue.md(
            md_table(
                ["class", "live share", "test split share"],
                [
                    (
                        c,
                        judged.predictions.get(c, 0) / live_total,
                        reference.test_labels.get(c, 0) / test_total,
                    )
                    for c in classes
                ],
            )
            + "\n\n"
            + bar_plot(
                {
                    "live predictions": {c: judged.predictions.get(c, 0) for c in classes},
                    "test split labels": {c: reference.test_labels.get(c, 0) for c in classes},
                },
                "class share",
                "prediction distribution",
                normalize=True,
            )
        )
    return metadata
