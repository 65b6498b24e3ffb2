"""train: fit a candidate on the training split of the current dataset version.

The candidate lives under `candidates/<use_case>/<candidate_id>/` until release;
the registry never sees a model that has not passed the gate.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

import numpy as np

from mlops_assets.components.config import DatasetConfig, ModelConfig
from mlops_assets.mlops.code_version import code_version
from mlops_assets.models import load_adapter
from mlops_assets.storage import Layout, ObjectStorage

CANDIDATE = "candidate.json"


class NoDatasetError(RuntimeError):
    """Nothing to train on yet."""


def current_dataset(storage: ObjectStorage, layout: Layout) -> str:
    latest = storage.read_json(layout.dataset_latest, default={})
    if not latest:
        raise NoDatasetError(
            f"no dataset version for {layout.use_case} yet: "
            f"materialize {layout.use_case}/split first"
        )
    return latest["dataset_version"]


def load_xy(
    storage: ObjectStorage, layout: Layout, version: str, split: str, dataset: DatasetConfig
) -> tuple[np.ndarray, np.ndarray]:
    frame = storage.read_parquet(layout.dataset(version, f"{split}.parquet"))
    return (
        frame[dataset.features.columns].to_numpy(dtype="float32"),
        frame[dataset.label.column].to_numpy(dtype="int64"),
    )


def resolved_params(model: ModelConfig, override: dict[str, Any] | None = None) -> dict[str, Any]:
    adapter = load_adapter(model.adapter)
    return {**adapter.default_params, **model.params, **(override or {})}


def run_train(
    storage: ObjectStorage,
    layout: Layout,
    dataset: DatasetConfig,
    model: ModelConfig,
    candidate_id: str,
    override: dict[str, Any] | None = None,
) -> dict[str, Any]:
    adapter = load_adapter(model.adapter)
    version = current_dataset(storage, layout)
    params = resolved_params(model, override)
    x_train, y_train = load_xy(storage, layout, version, "train", dataset)
    x_val, y_val = load_xy(storage, layout, version, "val", dataset)
    started = perf_counter()
    fitted = adapter.fit(x_train, y_train, x_val, y_val, params, model.seed)
    seconds = perf_counter() - started
    artifact = adapter.dumps(fitted)
    storage.write_bytes(layout.candidate(candidate_id, adapter.artifact_name), artifact)
    val_accuracy = float(np.mean(adapter.predict(fitted, x_val) == y_val)) if len(y_val) else None
    candidate = {
        "candidate_id": candidate_id,
        "adapter": model.adapter,
        "artifact": adapter.artifact_name,
        "artifact_sha256": hashlib.sha256(artifact).hexdigest(),
        "dataset_version": version,
        "params": params,
        "seed": model.seed,
        "rows_train": int(len(y_train)),
        "rows_val": int(len(y_val)),
        "training_seconds": seconds,
        "val_accuracy": val_accuracy,
        "code_version": code_version(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        # What the model server accepts: the transformed features, in this order.
        "input": {
            "name": "input-0",
            "datatype": "FP32",
            "shape": [-1, len(dataset.features.columns)],
            "features": dataset.features.columns,
            "transform": f"raw value / {dataset.scale:g}",
        },
        "output": {"name": "output-0", "datatype": "INT64", "shape": [-1]},
    }
    storage.write_json(layout.candidate(candidate_id, CANDIDATE), candidate)
    return candidate
