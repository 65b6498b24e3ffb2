"""validate: candidate and champion on the same test split, and the gate decision."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import numpy as np

from mlops_assets.core.config import GateConfig
from mlops_assets.core.kind import DatasetKind
from mlops_assets.core.production import ProductionSamples
from mlops_assets.mlops.evaluate import evaluate, gate, predict_split
from mlops_assets.mlops.significance import compare
from mlops_assets.mlops.train import CANDIDATE, current_dataset, record_outcome
from mlops_assets.models import AdapterMismatchError, check_stored_adapter, load_adapter
from mlops_assets.registry import ArtifactIntegrityError, ModelRegistry
from mlops_assets.storage import Layout, ObjectStorage

VALIDATION = "validation.json"


def load_candidate(
    storage: ObjectStorage, layout: Layout, candidate_id: str, adapter: str
) -> tuple[dict[str, Any], bytes]:
    """The candidate's record and verified bytes; `adapter` (from the YAML) must be the one
    the record names, since the record is stored data and never chooses code itself."""
    candidate = storage.read_json(layout.candidate(candidate_id, CANDIDATE))
    check_stored_adapter(
        candidate.get("adapter"), adapter, storage.uri(layout.candidate(candidate_id, CANDIDATE))
    )
    data = storage.read_bytes(layout.candidate(candidate_id, candidate["artifact"]))
    if hashlib.sha256(data).hexdigest() != candidate["artifact_sha256"]:
        raise ArtifactIntegrityError(
            f"candidate {candidate_id}: artifact changed since training (sha256 mismatch)"
        )
    return candidate, data


def aligned(
    predicted: np.ndarray,
    scores: np.ndarray | None,
    model_names: list[str] | None,
    names: list[str] | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """A champion's predictions in the class indices of the current dataset version.

    Class indices follow the data (LSFB: signs by frequency), so a new release of the data
    can renumber them; the champion's own `class_names` say what its indices meant. A class
    the current data does not have becomes -1 (always wrong)."""
    if not model_names or not names or model_names == names:
        return predicted, scores
    index = {name: i for i, name in enumerate(names)}
    mapping = np.asarray([index.get(name, -1) for name in model_names])
    if scores is not None:
        remapped = np.zeros((len(scores), len(names)), dtype=scores.dtype)
        for column, target in enumerate(mapping):
            if target >= 0:
                remapped[:, target] = scores[:, column]
        scores = remapped
    return mapping[predicted], scores


def run_validate(
    storage: ObjectStorage,
    layout: Layout,
    dataset: DatasetKind,
    config: GateConfig,
    candidate_id: str,
    adapter_name: str,
    environment: str = "dev",
    production_samples: ProductionSamples | None = None,
) -> dict[str, Any]:
    """`adapter_name` comes from the use case's YAML: it scores the candidate and the champion.
    `environment` is where the champion serves: its labelled requests, which
    `production_samples` (the production wing's) reads, are the shadow set; without it there
    is no shadow evaluation, and the report says so."""
    candidate, data = load_candidate(storage, layout, candidate_id, adapter_name)
    version = current_dataset(storage, layout)
    test = dataset.load_split(storage, layout, version, "test")
    adapter = load_adapter(adapter_name)
    candidate_model = adapter.loads(data)
    y_test, candidate_predicted, candidate_scores = predict_split(adapter, candidate_model, test)
    candidate_metrics = evaluate(y_test, candidate_predicted, candidate_scores, test.classes)

    registry = ModelRegistry(storage, layout.use_case)
    champion = registry.champion()
    champion_version = champion["version"] if champion else None
    champion_metrics = None
    incomparable = ""
    if champion is not None:
        champion_data, meta = registry.artifact(champion_version)  # refuses a tampered artifact
        takes = [int(d) for d in meta.get("input", {}).get("shape", [-1, *test.item_shape])[1:]]
        try:
            check_stored_adapter(
                meta.get("adapter"), adapter_name, f"champion v{champion_version}'s metadata"
            )
        except AdapterMismatchError:
            # the YAML changed the model family (or someone rewrote the metadata): the
            # configured adapter is the only code that runs, and it cannot read this champion
            incomparable = (
                f"champion v{champion_version} was made by the model adapter "
                f"{meta.get('adapter')!r}, the use case now names {adapter_name!r}: not "
                "comparable, gated on the threshold alone"
            )
        if not incomparable and takes != list(test.item_shape):
            # the YAML changed the data contract (frames, landmarks, features): the champion
            # cannot score this test split, so the candidate is gated on the threshold alone
            incomparable = (
                f"champion v{champion_version} takes examples of shape {takes}, this dataset "
                f"version gives {list(test.item_shape)}: not comparable, gated on the "
                "threshold alone"
            )
    comparison = shadow = None
    shadow_report: dict[str, Any] = {}
    if champion is not None and not incomparable:
        champion_model = adapter.loads(champion_data)
        _, predicted, scores = predict_split(adapter, champion_model, test)
        champion_out = aligned(predicted, scores, meta.get("class_names"), test.class_names)
        champion_metrics = evaluate(y_test, *champion_out, test.classes)
        comparison = compare(
            config.metric,
            y_test,
            (candidate_predicted, candidate_scores),
            champion_out,
            test.classes,
            resamples=config.bootstrap_resamples,
            seed=config.seed,
        )
        if config.shadow.enabled and production_samples is None:
            shadow_report = {"not_evaluated": "no production sample source was given"}
        elif config.shadow.enabled:
            shadow, shadow_report = _shadow(
                production_samples,
                storage,
                layout,
                config,
                environment,
                test,
                adapter,
                (candidate_model, None),
                (champion_model, meta.get("class_names")),
                lambda s, lay, split: dataset.load_split(s, lay, version, split),
            )
    decision = gate(
        candidate_metrics,
        champion_metrics,
        None if incomparable else champion_version,
        config,
        comparison,
        shadow,
    )
    if incomparable:
        decision = replace(
            decision,
            summary=decision.summary.replace("(no champion yet)", f"({incomparable})"),
            champion_version=champion_version,
        )
    validation = {
        "candidate_id": candidate_id,
        "dataset_version": version,
        "passed": decision.passed,
        "decision": decision.decision,
        "summary": decision.summary,
        "metric": config.metric,
        "direction": config.better,
        "threshold": config.threshold,
        "alpha": config.alpha,
        "min_effect": config.min_effect,
        "on_hold": config.on_hold,
        "improvement": decision.improvement,
        "comparison": comparison.as_dict() if comparison else None,
        "shadow": {**shadow_report, **(shadow.as_dict() if shadow else {})} or None,
        "candidate_metrics": candidate_metrics,
        "champion_version": champion_version,
        "champion_metrics": champion_metrics,
    }
    storage.write_json(layout.candidate(candidate_id, VALIDATION), validation)
    if not decision.passed:
        outcome = "held" if decision.decision == "HOLD" else "rejected"
        record_outcome(storage, layout, candidate, {outcome: decision.summary})
    return validation


def _shadow(
    production_samples: ProductionSamples,
    storage,
    layout,
    config,
    environment,
    test,
    adapter,
    candidate,
    champion,
    dataset_split,
):
    """Both models on the environment's most recent labelled requests, as logged; None
    (with the reason in the report) when there are too few."""
    sample = production_samples(
        storage,
        layout,
        environment,
        config.shadow.window_hours,
        list(test.item_shape),
        test.class_names,
    )
    if sample.rows:
        # requests the monitor fed back into training (its retraining batch) are not
        # evidence about the candidate: it has seen them

        def digest(rows: np.ndarray) -> list[bytes]:
            flat = np.ascontiguousarray(np.asarray(rows, dtype="float32").reshape(len(rows), -1))
            return [hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in flat]

        split = dataset_split(storage, layout, "train")
        trained = {h for x, _ in split.chunks() for h in digest(x)}
        fresh = np.array([h not in trained for h in digest(sample.x)], dtype=bool)
        if (~fresh).any():
            sample.skipped["in the candidate's training split"] = int((~fresh).sum())
            sample.x, sample.y = sample.x[fresh], sample.y[fresh]
    report: dict[str, Any] = {
        "environment": environment,
        "labelled_requests": sample.rows,
        "skipped": sample.skipped,
        "window_hours": config.shadow.window_hours,
    }
    if sample.rows < config.shadow.min_labelled:
        report["not_evaluated"] = (
            f"{sample.rows} usable labelled request(s) in {environment} "
            f"({config.shadow.min_labelled} needed)"
        )
        return None, report
    outputs = []
    for model, names in (candidate, champion):
        scores = (
            adapter.predict_scores(model, sample.x) if hasattr(adapter, "predict_scores") else None
        )
        predicted = (
            np.argmax(scores, axis=1) if scores is not None else adapter.predict(model, sample.x)
        )
        outputs.append(aligned(np.asarray(predicted), scores, names, test.class_names))
    report["candidate"] = evaluate(sample.y, *outputs[0], test.classes)[config.metric]
    report["champion"] = evaluate(sample.y, *outputs[1], test.classes)[config.metric]
    comparison = compare(
        config.metric,
        sample.y,
        outputs[0],
        outputs[1],
        test.classes,
        resamples=config.bootstrap_resamples,
        seed=config.seed,
    )
    return comparison, report
