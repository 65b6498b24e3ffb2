"""What validate shows in the UI: both models' metrics, and the confusion matrix."""

from typing import Any

import dagster as dg

from mlops_assets.core.config import TASK_METRICS
from mlops_assets.core.report import heatmap, md_table

MAX_TABLE_CLASSES = 20
ALIASES = ("top1", "macro_f1")
"""Shown once, under their other names (accuracy, f1_macro)."""
ROWS = {task: tuple(m for m in names if m not in ALIASES) for task, names in TASK_METRICS.items()}


def validation_metadata(validation: dict[str, Any]) -> dict[str, Any]:
    candidate, champion = validation["candidate_metrics"], validation["champion_metrics"]
    champion_name = f"champion v{validation['champion_version']}" if champion else "champion"
    regression = "per_class_recall" not in candidate
    names = ROWS["regression" if regression else "classification"]
    rows = [
        (name, candidate[name], champion.get(name, "-") if champion else "-")
        for name in names
        if candidate.get(name) is not None
    ]
    extra: dict[str, Any] = {}
    if not regression:
        extra.update(_classes(candidate, champion, champion_name))
    evaluations = _evaluations(validation, candidate, champion)
    if evaluations:
        extra["evaluations"] = dg.MetadataValue.md(
            md_table(
                [
                    "evaluated on",
                    "rows",
                    "candidate",
                    champion_name,
                    "difference (95% CI)",
                    "p-value",
                    "test",
                ],
                evaluations,
            )
        )
    comparison = validation.get("comparison") or {}
    if comparison:
        extra["p_value"] = comparison["p_value"]
        extra["difference"] = comparison["difference"]
    return {
        "gate_decision": validation.get("decision", "PASS"),
        "decision": validation["summary"],
        "passed": validation["passed"],
        "candidate_id": validation["candidate_id"],
        "dataset_version": validation["dataset_version"],
        "test_rows": candidate["rows"],
        f"candidate_{validation['metric']}": candidate[validation["metric"]],
        "metrics": dg.MetadataValue.md(md_table(["metric", "candidate", champion_name], rows)),
        **extra,
    }


def _classes(
    candidate: dict[str, Any], champion: dict[str, Any] | None, champion_name: str
) -> dict[str, Any]:
    """Per-class recall and the confusion matrix, for a classifier."""
    recall = [
        (c, r, champion["per_class_recall"].get(c, "-") if champion else "-")
        for c, r in candidate["per_class_recall"].items()
    ]
    labels = [str(c) for c in candidate["classes"]]
    matrix = candidate["confusion_matrix"]
    many = len(labels) > MAX_TABLE_CLASSES  # hundreds of signs: the picture, not the table
    if many:
        recall = sorted(recall, key=lambda row: row[1])[:MAX_TABLE_CLASSES]
    matrix_table = (
        ""
        if many
        else md_table(
            ["true \\ predicted", *labels], [(labels[i], *row) for i, row in enumerate(matrix)]
        )
        + "\n\n"
    )
    return {
        "per_class_recall": dg.MetadataValue.md(
            ("Per-class recall (the worst classes):\n\n" if many else "")
            + md_table(["class", "candidate", champion_name], recall)
        ),
        "confusion_matrix": dg.MetadataValue.md(
            matrix_table
            + heatmap(matrix, labels, "candidate confusion matrix (test split)", "confusion matrix")
        ),
    }


def _evaluations(
    validation: dict[str, Any], candidate: dict[str, Any], champion: dict[str, Any] | None
) -> list[tuple]:
    """One row per set the two models were compared on (the test split, production)."""
    evaluations: list[tuple] = []
    for name, found in (
        ("test split", validation.get("comparison")),
        ("production traffic", validation.get("shadow")),
    ):
        if not found:
            continue
        if "difference" not in found:
            evaluations.append(
                (
                    name,
                    found.get("labelled_requests", 0),
                    "-",
                    "-",
                    "-",
                    "-",
                    found.get("not_evaluated", ""),
                )
            )
            continue
        evaluations.append(
            (
                name,
                found["rows"],
                found.get("candidate", candidate[validation["metric"]]),
                found.get("champion", (champion or {}).get(validation["metric"], "-")),
                f"{found['difference']:+.4f} ({found['low']:+.4f} to {found['high']:+.4f})",
                found["p_value"],
                found["test"],
            )
        )
    return evaluations
