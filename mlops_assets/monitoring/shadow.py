"""The labelled production requests a candidate is scored on before it serves (validate's
shadow evaluation): the most recent ones of the deploy environment, with their inputs as
the server logged them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np

from mlops_assets.core.production import ProductionSample
from mlops_assets.registry import ModelRegistry, UnknownVersionError
from mlops_assets.storage import Layout, ObjectStorage


def production_sample(
    storage: ObjectStorage,
    layout: Layout,
    environment: str,
    window_hours: int,
    item_shape: list[int],
    class_names: list[str] | None,
    now: datetime | None = None,
) -> ProductionSample:
    """Requests logged without their full inputs, or labelled in another class numbering
    than the dataset's (a renumbered LSFB release), are skipped and counted."""
    import pandas as pd

    from mlops_assets.monitoring.retrain import labelled_in_window

    now = now or datetime.now(UTC)
    labelled = labelled_in_window(storage, layout, now - timedelta(hours=window_hours), now)
    width = int(np.prod(item_shape))
    empty = ProductionSample(np.zeros((0, *item_shape), "float32"), np.zeros(0, "int64"))
    if labelled.empty:
        return empty
    labelled = labelled[labelled["environment"] == environment]
    skipped: dict[str, int] = {}
    if "inputs_json" in labelled:  # a table's rows as sent: the model takes them as they are
        return _table_sample(labelled, width, skipped)
    if "inputs" not in labelled:
        skipped["inputs not logged in full"] = len(labelled)
        return ProductionSample(empty.x, empty.y, skipped)
    full = labelled["inputs"].map(lambda v: v is not None and len(v) == width)
    if (~full).any():
        skipped["inputs not logged in full"] = int((~full).sum())
    labelled = labelled[full]
    registry = ModelRegistry(storage, layout.use_case)
    numbering: dict[str, bool] = {}
    for version in labelled["model_version"].unique():
        try:
            names = registry.metadata(int(version)).get("class_names")
        except (ValueError, UnknownVersionError):
            names = "unknown"
        numbering[version] = names == class_names or (not names and not class_names)
    same = labelled["model_version"].map(numbering).astype(bool)
    if (~same).any():
        skipped["labelled in another class numbering"] = int((~same).sum())
    labelled = labelled[same].sort_values("time").drop_duplicates(["request_id", "row"])
    if labelled.empty:
        return ProductionSample(empty.x, empty.y, skipped)
    x = np.stack(labelled["inputs"].to_numpy()).astype("float32").reshape(-1, *item_shape)
    y = pd.to_numeric(labelled["label"]).to_numpy("int64")
    return ProductionSample(x, y, skipped)


def _table_sample(labelled, width: int, skipped: dict[str, int]) -> ProductionSample:
    """The logged rows of a table declared column by column (object values, None where
    missing) and their labels in the label's own type; a row that does not parse or has
    another width is skipped and counted."""
    labelled = labelled.sort_values("time").drop_duplicates(["request_id", "row"])
    rows, labels = [], []
    for text, label in zip(labelled["inputs_json"], labelled["label"], strict=True):
        try:
            row = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            row = None
        if isinstance(row, list) and len(row) == width:
            rows.append(row)
            labels.append(label)
    if len(rows) < len(labelled):
        skipped["inputs not logged in full"] = len(labelled) - len(rows)
    x = np.empty((len(rows), width), dtype=object)
    for i, row in enumerate(rows):
        x[i, :] = row
    return ProductionSample(x, np.asarray(labels), skipped)
