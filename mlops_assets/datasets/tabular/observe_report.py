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
            columns=[
                dg.TableColumn(
                    c.name,
                    COLUMN_TYPES[c.type],
                    description=c.role if c.role != "feature" else "",
                    constraints=dg.TableColumnConstraints(nullable=c.nullable),
                )
                for c in dataset.schema
            ]
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
                        *_spread(s),
                        _centre(new["features"].get(c)) if new else "-",
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


COLUMN_TYPES = {
    "number": "float",
    "integer": "int",
    "boolean": "bool",
    "category": "category",
    "string": "string",
}


def _spread(stats: dict[str, Any]) -> tuple[Any, Any, Any]:
    """min, mean, max of a number column; of a category column its categories and the
    most frequent one."""
    if "categories" in stats:
        counts = stats["categories"]
        top = max(counts, key=counts.get) if counts else "-"
        return f"{len(counts)} categories", f"mode {top}", "-"
    return stats["min"], mean(stats), stats["max"]


def _centre(stats: dict[str, Any] | None) -> Any:
    if stats is None:
        return "-"
    return _spread(stats)[1]


def _checks(
    result: ObserveResult, dataset: TabularData, config: ObserveConfig
) -> list[dg.AssetCheckResult]:
    rejected = result.rejected
    bad_labels = [
        (p["file"], p["labels_out_of_range"], p.get("label_reason") or p.get("label_example"))
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
                f"{f}: {n} row(s) with an unusable {dataset.label.column}"
                + (f" (e.g. {example})" if example is not None else "")
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
