"""What observe shows in the UI: tables, plots and the three asset checks."""

from __future__ import annotations

from typing import Any

import dagster as dg

from mlops_assets.core.report import bar_plot, md_table
from mlops_assets.datasets.tabular.config import ObserveConfig, TabularData
from mlops_assets.datasets.tabular.observe import ObserveResult
from mlops_assets.datasets.tabular.profile import mean


def observe_metadata(
    result: ObserveResult, dataset: TabularData, config: ObserveConfig
) -> tuple[dict[str, Any], list[dg.AssetCheckResult]]:
    label = dataset.label.column
    metadata: dict[str, Any] = {
        "new_batches": dg.MetadataValue.md(
            md_table(
                ["file", "batch", "rows", "status", "reason"],
                [
                    (p["file"], p["batch_id"], p["rows"], p["status"], p["reason"] or "-")
                    for p in result.new
                ],
            )
            if result.new
            else "no new batches"
        ),
        "rows_new": sum(p["rows"] for p in result.new),
        "rows_total": result.dataset["rows"] if result.dataset else 0,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(c, "float") for c in dataset.features.columns]
            + [dg.TableColumn(label, "int", description="class label")]
        ),
    }
    if result.dataset:
        whole, new = result.dataset, result.current
        metadata["features"] = dg.MetadataValue.md(
            "Whole dataset, the new rows' mean and nulls, and the PSI of the new rows against "
            "the reference batches.\n\n"
            + md_table(
                [
                    "feature",
                    "values",
                    "nulls",
                    "non-numeric",
                    "min",
                    "mean",
                    "max",
                    "new mean",
                    "new nulls",
                    "PSI",
                ],
                [
                    (
                        c,
                        s["count"],
                        whole["nulls"].get(c, 0),
                        whole["non_numeric"].get(c, 0),
                        s["min"],
                        mean(s),
                        s["max"],
                        mean(new["features"][c]) if new else "-",
                        new["nulls"].get(c, 0) if new else "-",
                        result.drift.get(c, "-"),
                    )
                    for c, s in whole["features"].items()
                ],
            )
        )
        series = {"whole dataset": whole["labels"]}
        if new:
            series["new rows"] = new["labels"]
        metadata["label_distribution"] = dg.MetadataValue.md(
            md_table(
                ["label", "whole dataset", "new rows"],
                [
                    (k, v, (new or {}).get("labels", {}).get(k, 0))
                    for k, v in whole["labels"].items()
                ],
            )
            + "\n\n"
            + bar_plot(series, "label share", "label distribution", normalize=True)
        )
    if result.drift:
        top = sorted(result.drift.items(), key=lambda kv: -kv[1])
        metadata["drift_max_psi"] = top[0][1]
        metadata["drift"] = dg.MetadataValue.md(
            f"PSI of the new rows against the first {dataset.reference_batches} batch(es); "
            f"threshold {config.drift_threshold}.\n\n"
            + md_table(["feature", "PSI"], top[:10])
            + "\n\n"
            + bar_plot(
                {"PSI": dict(result.drift)},
                "PSI per feature",
                "drift per feature",
                threshold=config.drift_threshold,
            )
        )
    return metadata, _checks(result, dataset, config)


def _checks(
    result: ObserveResult, dataset: TabularData, config: ObserveConfig
) -> list[dg.AssetCheckResult]:
    rejected = result.rejected
    bad_labels = [
        (p["file"], p["labels_out_of_range"], p.get("label_example"))
        for p in result.new
        if p["status"] == "ok" and p["labels_out_of_range"]
    ]
    drifted = {c: v for c, v in result.drift.items() if v >= config.drift_threshold}
    return [
        dg.AssetCheckResult(
            check_name="schema_matches_contract",
            passed=not rejected,
            description="; ".join(p["reason"] for p in rejected)
            or f"{len(result.new)} new file(s) match the contract",
            metadata={"rejected_files": [p["file"] for p in rejected]},
        ),
        dg.AssetCheckResult(
            check_name="labels_in_range",
            passed=not bad_labels,
            description="; ".join(
                f"{f}: {n} row(s) with {dataset.label.column} not an integer in "
                f"{dataset.label.min}..{dataset.label.max}"
                + (f" (e.g. {example!r})" if example is not None else "")
                for f, n, example in bad_labels
            )
            or "every new label is in range",
            metadata={"rows_out_of_range": sum(n for _, n, _ in bad_labels)},
        ),
        dg.AssetCheckResult(
            check_name="drift_below_threshold",
            passed=not drifted,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{len(drifted)} feature(s) drifted (PSI >= {config.drift_threshold}): "
                + ", ".join(
                    f"{c}={v:.3f}" for c, v in sorted(drifted.items(), key=lambda kv: -kv[1])[:10]
                )
                if drifted
                else "no feature drifted"
            ),
            metadata={"max_psi": max(result.drift.values(), default=0.0)},
        ),
    ]
