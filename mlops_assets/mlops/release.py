"""release: the validated candidate into the registry, with its full metadata."""

from __future__ import annotations

from mlops_assets.core.config import GATE_METRICS
from mlops_assets.errors import MlopsError
from mlops_assets.mlops.train import record_outcome
from mlops_assets.mlops.validate import VALIDATION, load_candidate
from mlops_assets.models import adapter_name, load_adapter
from mlops_assets.registry import ModelRegistry, ReleaseResult
from mlops_assets.storage import Layout, ObjectStorage


class GateNotPassedError(MlopsError, RuntimeError):
    """Release was asked for a candidate the gate rejected."""


def held(storage: ObjectStorage, layout: Layout, candidate_id: str, run_id: str = "") -> str:
    """The gate's HOLD line when it held this candidate and keeps the champion (recorded in
    the registry's history once), else ''."""
    validation = storage.read_json(layout.candidate(candidate_id, VALIDATION))
    if validation.get("decision") != "HOLD" or validation["passed"]:
        return ""
    ModelRegistry(storage, layout.use_case).note_hold(validation["summary"], candidate_id, run_id)
    return validation["summary"]


def run_release(
    storage: ObjectStorage,
    layout: Layout,
    candidate_id: str,
    run_id: str = "",
    *,
    adapter: str,
    estimator: str | None = None,
) -> tuple[ReleaseResult, dict]:
    """`adapter` and `estimator` are the YAML's: the release records them, after checking
    the candidate's, with the hash of the rule for the types its artifact may hold."""
    candidate, artifact = load_candidate(storage, layout, candidate_id, adapter, estimator)
    validation = storage.read_json(layout.candidate(candidate_id, VALIDATION))
    if not validation["passed"]:
        raise GateNotPassedError(
            f"candidate {candidate_id} did not pass the gate: {validation['summary']}"
        )
    metrics = validation["candidate_metrics"]
    trusted = ""
    scorer = load_adapter(adapter)
    if candidate.get("estimator") and hasattr(scorer, "trust_digest"):
        scorer.estimator = candidate["estimator"]  # checked against the YAML's above
        trusted = scorer.trust_digest()  # what the server's loader recomputes
    metadata = {
        "adapter": adapter_name(adapter),
        "estimator": candidate.get("estimator"),
        "trusted_types": trusted or None,
        "task": candidate.get("task", "classification"),
        "metrics": {
            k: metrics[k] for k in (*GATE_METRICS, "per_class_recall", "rows") if k in metrics
        },
        "gate": {
            "metric": validation["metric"],
            "summary": validation["summary"],
            "beat_champion": validation["champion_version"],
            "champion_value": (validation["champion_metrics"] or {}).get(validation["metric"]),
            "decision": validation.get("decision", "PASS"),
            "improvement": validation["improvement"],
            "comparison": validation.get("comparison"),
            "shadow": validation.get("shadow"),
            "alpha": validation.get("alpha"),
            "min_effect": validation.get("min_effect"),
            "threshold": validation["threshold"],
        },
        "dataset_version": validation["dataset_version"],
        "code_version": candidate["code_version"],
        "training": {
            "params": candidate["params"],
            "seed": candidate["seed"],
            "keras_backend": candidate.get("keras_backend"),
            "rows_train": candidate["rows_train"],
            "training_seconds": candidate["training_seconds"],
            "trained_at": candidate["trained_at"],
        },
        "candidate_id": candidate_id,
        "input": candidate["input"],
        "request": candidate["request"],
        "classes": candidate.get("classes"),
        "class_names": candidate.get("class_names"),
        "output": candidate["output"],
    }
    result = ModelRegistry(storage, layout.use_case).release(
        artifact,
        candidate["artifact"],
        metadata,
        beaten_champion=validation["champion_version"],
        run_id=run_id,
    )
    record_outcome(storage, layout, candidate, {"version": result.version})
    return result, metadata
