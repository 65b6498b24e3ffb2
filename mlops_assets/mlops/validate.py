"""validate: candidate and champion on the same test split, and the gate decision."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import numpy as np

from mlops_assets.core.config import GateConfig, ModelConfig
from mlops_assets.core.kind import DatasetKind
from mlops_assets.core.production import ProductionSamples
from mlops_assets.mlops.evaluate import (
    GateDecision,
    evaluate,
    gate,
    incomparable_decision,
    predict_all,
)
from mlops_assets.mlops.significance import compare
from mlops_assets.mlops.train import CANDIDATE, configured_adapter, current_dataset, record_outcome
from mlops_assets.models import (
    AdapterMismatchError,
    UnknownAdapterError,
    adapter_name,
    check_stored_adapter,
)
from mlops_assets.models.trusted_types import allowed
from mlops_assets.registry import ArtifactIntegrityError, ModelRegistry
from mlops_assets.storage import Layout, ObjectStorage

VALIDATION = "validation.json"


def load_candidate(
    storage: ObjectStorage,
    layout: Layout,
    candidate_id: str,
    adapter: str,
    estimator: str | None = None,
) -> tuple[dict[str, Any], bytes]:
    """The candidate's record and verified bytes; `adapter` and `estimator` (from the YAML)
    must be the ones the record names, since the record is stored data and never chooses
    code itself."""
    candidate = storage.read_json(layout.candidate(candidate_id, CANDIDATE))
    where = storage.uri(layout.candidate(candidate_id, CANDIDATE))
    check_stored_adapter(candidate.get("adapter"), adapter, where)
    if estimator is not None and (candidate.get("estimator") or "") != (estimator or ""):
        raise AdapterMismatchError(
            f"{where} names the estimator {candidate.get('estimator')!r}, but the use case "
            f"names {estimator!r}: refusing to load it"
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


def _as_model(model: ModelConfig | str) -> ModelConfig:
    return model if isinstance(model, ModelConfig) else ModelConfig(adapter=model)


def same_schema(champion_request: dict[str, Any], request: dict[str, Any]) -> str:
    """'' when the champion takes this test split's rows, else why not: the columns (names,
    types) of a table, or the example shape of the kind's contract."""

    def shape(contract: dict[str, Any]) -> Any:
        if "columns" in contract:
            return [(c["name"], c["type"]) for c in contract["columns"]]
        return [(i["name"], i.get("shape")) for i in contract.get("inputs", [])]

    theirs, ours = shape(champion_request), shape(request)
    if theirs == ours:
        return ""
    return f"it takes {_short(theirs)}, this test split holds {_short(ours)}"


def _short(columns: list) -> str:
    text = ", ".join(f"{name} ({kind})" for name, kind in columns[:6])
    return text + (f" and {len(columns) - 6} more" if len(columns) > 6 else "")


def champion_adapter(meta: dict[str, Any], model: ModelConfig) -> tuple[Any, str]:
    """The code that scores the champion: the use case's own adapter when the champion was
    made by it; else the adapter the champion's metadata names, when it is one this process
    trusts (a built-in or an installed plug-in: stored data picks among trusted code, never
    a module) and its estimator a class of the trusted packages. Returns (adapter, why not)."""
    stored, estimator = meta.get("adapter"), meta.get("estimator") or ""
    try:
        check_stored_adapter(stored, model.adapter, "the champion's metadata")
        if (estimator or "") == (model.estimator or ""):
            return configured_adapter(model), ""
    except AdapterMismatchError:
        pass
    try:
        name = adapter_name(str(stored))
    except UnknownAdapterError:
        return None, f"it was made by the model adapter {stored!r}, which is not installed here"
    if estimator and not allowed(estimator):
        return None, (
            f"its estimator {estimator!r} is outside the trusted packages (only the use case's "
            "own estimator may be)"
        )
    own = ModelConfig(adapter=name, estimator=estimator, preprocessing=model.preprocessing)
    return configured_adapter(own), ""


def _same_family(meta: dict[str, Any], model: ModelConfig) -> bool:
    try:
        same = adapter_name(str(meta.get("adapter"))) == adapter_name(model.adapter)
    except UnknownAdapterError:
        return False
    return same and (meta.get("estimator") or "") == (model.estimator or "")


def run_validate(
    storage: ObjectStorage,
    layout: Layout,
    dataset: DatasetKind,
    config: GateConfig,
    candidate_id: str,
    model: ModelConfig | str,
    environment: str = "dev",
    production_samples: ProductionSamples | None = None,
) -> dict[str, Any]:
    """`model` (the adapter and estimator) comes from the use case's YAML: it scores the
    candidate; the champion, whatever made it, is scored on the same test rows by its own
    trusted adapter. `environment` is where the champion serves: its labelled requests,
    which `production_samples` (the production wing's) reads, are the shadow set; without it
    there is no shadow evaluation, and the report says so."""
    model = _as_model(model)
    candidate, data = load_candidate(storage, layout, candidate_id, model.adapter, model.estimator)
    version = current_dataset(storage, layout)
    test = dataset.load_split(storage, layout, version, "test")
    adapter = configured_adapter(model)
    candidate_model = adapter.loads(data)
    y_test, candidate_predicted, candidate_scores, candidate_proba = predict_all(
        adapter, candidate_model, test
    )
    candidate_metrics = evaluate(
        y_test, candidate_predicted, candidate_scores, test.classes, test.task, candidate_proba
    )

    registry = ModelRegistry(storage, layout.use_case)
    champion = registry.champion()
    champion_version = champion["version"] if champion else None
    champion_metrics = None
    incomparable = ""
    champion_model = champion_scorer = None
    if champion is not None:
        champion_data, meta = registry.artifact(champion_version)  # refuses a tampered artifact
        why = same_schema(meta.get("request", {}), candidate.get("request", {}))
        takes = [int(d) for d in meta.get("input", {}).get("shape", [-1, *test.item_shape])[1:]]
        if not why and takes != list(test.item_shape):
            # the YAML changed what the model is fed (frames, landmarks): same request, but
            # the champion cannot score this test split
            why = (
                f"it takes examples of shape {takes}, this test split gives {list(test.item_shape)}"
            )
        if not why and test.task != (meta.get("task") or "classification"):
            why = f"it is a {meta.get('task') or 'classification'} model, this is {test.task}"
        if not why:
            champion_scorer, why = champion_adapter(meta, model)
        if not why:
            try:
                champion_model = champion_scorer.loads(champion_data)
            except Exception as error:  # refused types, another library's version
                why = f"its artifact cannot be loaded here: {error}"
        if why:
            incomparable = f"champion v{champion_version} is not comparable: {why}"
    comparison = shadow = None
    shadow_report: dict[str, Any] = {}
    if champion is not None and not incomparable:
        _, predicted, scores, champion_proba = predict_all(champion_scorer, champion_model, test)
        champion_out = aligned(predicted, scores, meta.get("class_names"), test.class_names)
        champion_metrics = evaluate(y_test, *champion_out, test.classes, test.task, champion_proba)
        comparison = compare(
            config.metric,
            y_test,
            (candidate_predicted, candidate_scores, candidate_proba),
            (*champion_out, champion_proba),
            test.classes,
            resamples=config.bootstrap_resamples,
            seed=config.seed,
        )
        if config.shadow.enabled and production_samples is None:
            shadow_report = {"not_evaluated": "no production sample source was given"}
        elif config.shadow.enabled and _same_family(meta, model):
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
        elif config.shadow.enabled:
            shadow_report = {
                "not_evaluated": "shadow evaluation scores two models of one family (the "
                "candidate's adapter and estimator)"
            }
    decision = gate(
        candidate_metrics,
        champion_metrics,
        None if incomparable else champion_version,
        config,
        comparison,
        shadow,
    )
    if incomparable:
        decision = incomparable_decision(decision, incomparable, champion_version, config)
    if decision.passed and champion is not None and champion.get("pinned"):
        decision = pinned_decision(decision, champion)
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


def pinned_decision(decision: GateDecision, champion: dict[str, Any]) -> GateDecision:
    """A pass against a pinned champion says what release will do: add the version and
    leave the alias, so the gate's line and release's never contradict each other."""
    version = champion["version"]
    why = champion.get("pin_reason") or "no reason given"
    summary = decision.summary.replace(
        f"the candidate replaces v{version}", f"the candidate beats v{version}"
    ).replace(f"promoted anyway (on_hold: promote) over v{version}", "released (on_hold: promote)")
    return replace(
        decision,
        summary=f"{summary}; champion v{version} is pinned ({why}): the candidate is released, "
        "not promoted, until `mlops-assets registry unpin`",
    )


def _row_text(row: Any) -> str:
    """One row of a table as canonical text: numbers as floats, None as null."""
    return json.dumps(
        [
            v if v is None or isinstance(v, str) else float(v)
            for v in (row.tolist() if hasattr(row, "tolist") else row)
        ]
    )


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
            if np.asarray(rows).dtype == object:  # a table's values as landed: by their text
                return [
                    hashlib.blake2b(_row_text(r).encode(), digest_size=16).digest() for r in rows
                ]
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
