"""What split shows in the UI, and its two blocking checks."""

from __future__ import annotations

from typing import Any

import dagster as dg

from mlops_assets.core.classes import class_order
from mlops_assets.core.report import bar_plot, md_table
from mlops_assets.datasets.tabular.config import TabularData
from mlops_assets.datasets.tabular.split import SPLITS, SplitResult, is_base_of, read_split_ids
from mlops_assets.storage import Layout, ObjectStorage


def split_metadata(
    storage: ObjectStorage, layout: Layout, result: SplitResult, dataset: TabularData
) -> tuple[dict[str, Any], list[dg.AssetCheckResult]]:
    manifest = result.manifest
    balance = manifest["class_balance"]
    classes = sorted({c for split in balance.values() for c in split}, key=class_order)
    metadata: dict[str, Any] = {
        "dataset_version": result.version,
        "dataset_location": dg.MetadataValue.path(storage.uri(layout.dataset(result.version))),
        "dagster/row_count": sum(manifest["rows"].values()),
        "rows": dg.MetadataValue.md(md_table(["split", "rows"], manifest["rows"].items())),
        "class_balance": dg.MetadataValue.md(
            "a regression target: no classes to balance"
            if not classes
            else md_table(
                ["label", *SPLITS], [(c, *(balance[s].get(c, 0) for s in SPLITS)) for c in classes]
            )
            + "\n\n"
            + bar_plot(
                {s: balance[s] for s in SPLITS},
                "class share per split",
                "class balance",
                normalize=True,
            )
        ),
        "batches": manifest.get("batch_count", len(manifest.get("batches", []))),
        "new_rows": sum(result.new_rows.values()),
        "new_version": result.created,
    }
    overlap = result.in_two_splits  # each new part checked as it was cut; older ones were
    earlier = _earlier_version(result)
    missing: set[str] = set()
    if earlier:
        missing = _missing_test_rows(storage, layout, earlier, result.version)
    checks = [
        dg.AssetCheckResult(
            check_name="no_row_in_two_splits",
            passed=not overlap,
            description=f"{overlap} row id(s) in two splits"
            if overlap
            else "every row id is in exactly one split",
            metadata={"overlapping": overlap},
        ),
        dg.AssetCheckResult(
            check_name="test_set_keeps_earlier_rows",
            passed=not missing,
            description=(
                f"{len(missing)} test row(s) of {earlier} are missing from {result.version}"
                if missing
                else (
                    f"every test row of {earlier} is still in the test set"
                    if earlier
                    else "first dataset version: nothing to compare"
                )
            ),
            metadata={"compared_with": earlier or "", "missing": len(missing)},
        ),
    ]
    return metadata, checks


def _missing_test_rows(storage: ObjectStorage, layout: Layout, earlier: str, now: str) -> set[str]:
    """Test rows of `earlier` not in `now`: none when `now` was built on `earlier` (it holds
    its parts, which are immutable), else compared row by row (the fractions changed)."""
    if is_base_of(storage, layout, earlier, now):
        return set()
    return read_split_ids(storage, layout, earlier, "test") - read_split_ids(
        storage, layout, now, "test"
    )


def _earlier_version(result: SplitResult) -> str | None:
    previous = result.previous or {}
    if previous.get("dataset_version") and previous["dataset_version"] != result.version:
        return previous["dataset_version"]
    return previous.get("previous")
