"""What the pipeline's tasks do, as plain functions: the Dagster backend's own code.

`train_step` is `run_train`, `evaluate_step` scores the candidate with the same
`evaluate` the gate uses. The tasks receive a storage root, the use case's settings
as JSON and the candidate id; they read the dataset version from the storage and
write the candidate where the Dagster backend would, so validate, release and deploy
cannot tell the two backends apart.
"""

from __future__ import annotations

import json
from typing import Any

from mlops_assets.core.config import ModelConfig
from mlops_assets.datasets import kind as dataset_kind
from mlops_assets.models import load_adapter
from mlops_assets.resources import build_storage
from mlops_assets.settings import load_settings
from mlops_assets.storage import Layout

EVALUATION = "kfp_evaluation.json"


def _storage(storage_root: str):

    return build_storage(load_settings(), storage_root)


def _dataset(kind: str, settings_json: str):
    """The use case's `dataset:` block, as its kind's model (the kind is one the
    registry knows; the pipeline was compiled with it)."""
    return dataset_kind(kind).model_validate_json(settings_json)


def train_step(
    storage_root: str,
    use_case: str,
    candidate_id: str,
    dataset_kind: str,
    dataset_json: str,
    model_json: str,
    params_json: str,
) -> dict[str, Any]:
    from mlops_assets.mlops.train import run_train

    return run_train(
        _storage(storage_root),
        Layout(use_case),
        _dataset(dataset_kind, dataset_json),
        ModelConfig.model_validate_json(model_json),
        candidate_id,
        json.loads(params_json),
    )


def evaluate_step(
    storage_root: str,
    use_case: str,
    candidate_id: str,
    dataset_kind: str,
    dataset_json: str,
    model_json: str,
) -> dict[str, Any]:
    """The candidate's metrics on the test split (for the KFP UI; validate scores again,
    next to the champion, and decides)."""
    from mlops_assets.mlops.evaluate import evaluate, predict_split
    from mlops_assets.mlops.train import current_dataset
    from mlops_assets.mlops.validate import load_candidate

    storage, layout = _storage(storage_root), Layout(use_case)
    dataset = _dataset(dataset_kind, dataset_json)
    adapter_name = ModelConfig.model_validate_json(model_json).adapter  # the YAML's, not stored
    _, data = load_candidate(storage, layout, candidate_id, adapter_name)
    adapter = load_adapter(adapter_name)
    test = dataset.load_split(storage, layout, current_dataset(storage, layout), "test")
    metrics = evaluate(*predict_split(adapter, adapter.loads(data), test), test.classes)
    storage.write_json(layout.candidate(candidate_id, EVALUATION), metrics)
    return metrics
