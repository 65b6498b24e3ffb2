"""validate: candidate and champion on the same test split, and the gate decision."""

from __future__ import annotations

import hashlib
from typing import Any

from mlops_assets.components.config import DatasetConfig, GateConfig
from mlops_assets.mlops.evaluate import evaluate, gate
from mlops_assets.mlops.train import CANDIDATE, current_dataset, load_xy
from mlops_assets.models import load_adapter
from mlops_assets.registry import ArtifactIntegrityError, ModelRegistry
from mlops_assets.storage import Layout, ObjectStorage

VALIDATION = "validation.json"


def load_candidate(
    storage: ObjectStorage, layout: Layout, candidate_id: str
) -> tuple[dict[str, Any], bytes]:
    candidate = storage.read_json(layout.candidate(candidate_id, CANDIDATE))
    data = storage.read_bytes(layout.candidate(candidate_id, candidate["artifact"]))
    if hashlib.sha256(data).hexdigest() != candidate["artifact_sha256"]:
        raise ArtifactIntegrityError(
            f"candidate {candidate_id}: artifact changed since training (sha256 mismatch)"
        )
    return candidate, data


def run_validate(
    storage: ObjectStorage,
    layout: Layout,
    dataset: DatasetConfig,
    config: GateConfig,
    candidate_id: str,
) -> dict[str, Any]:
    candidate, data = load_candidate(storage, layout, candidate_id)
    version = current_dataset(storage, layout)
    x_test, y_test = load_xy(storage, layout, version, "test", dataset)
    classes = list(range(dataset.label.min, dataset.label.max + 1))
    adapter = load_adapter(candidate["adapter"])
    candidate_metrics = evaluate(y_test, adapter.predict(adapter.loads(data), x_test), classes)

    registry = ModelRegistry(storage, layout.use_case)
    champion = registry.champion()
    champion_version = champion["version"] if champion else None
    champion_metrics = None
    if champion is not None:
        champion_data, meta = registry.artifact(champion_version)  # refuses a tampered artifact
        champion_adapter = load_adapter(meta["adapter"])
        champion_model = champion_adapter.loads(champion_data)
        champion_metrics = evaluate(
            y_test, champion_adapter.predict(champion_model, x_test), classes
        )
    decision = gate(candidate_metrics, champion_metrics, champion_version, config)
    validation = {
        "candidate_id": candidate_id,
        "dataset_version": version,
        "passed": decision.passed,
        "summary": decision.summary,
        "metric": config.metric,
        "direction": config.direction,
        "threshold": config.threshold,
        "margin": config.margin,
        "improvement": decision.improvement,
        "candidate_metrics": candidate_metrics,
        "champion_version": champion_version,
        "champion_metrics": champion_metrics,
    }
    storage.write_json(layout.candidate(candidate_id, VALIDATION), validation)
    return validation
