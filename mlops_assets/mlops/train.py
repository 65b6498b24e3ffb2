"""train: fit a candidate on the training split of the current dataset version.

The candidate lives under `candidates/<use_case>/<candidate_id>/` until release;
the registry never sees a model that has not passed the gate.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_assets.core.config import ModelConfig
from mlops_assets.core.kind import DatasetKind
from mlops_assets.errors import MlopsError
from mlops_assets.mlops.code_version import code_version
from mlops_assets.mlops.evaluate import predict_split
from mlops_assets.models import load_adapter
from mlops_assets.storage import Layout, ObjectStorage

if TYPE_CHECKING:
    from mlops_assets.core.split_data import SplitData

CANDIDATE = "candidate.json"


class NoDatasetError(MlopsError, RuntimeError):
    """Nothing to train on yet."""


def current_dataset(storage: ObjectStorage, layout: Layout) -> str:
    latest = storage.read_json(layout.dataset_latest, default={})
    if not latest:
        raise NoDatasetError(
            f"no dataset version for {layout.use_case} yet: "
            f"materialize {layout.use_case}/split first"
        )
    return latest["dataset_version"]


def input_contract(train: SplitData) -> dict[str, Any]:
    """What the model itself takes: the transformed examples, with their shape."""
    return {"name": "input-0", "datatype": "FP32", "shape": [-1, *train.item_shape]}


def fingerprint(
    dataset_version: str,
    params: dict[str, Any],
    seed: int,
    code: str,
    adapter: str,
    estimator: str | None = None,
) -> str:
    """The same data, parameters, seed, code, adapter and estimator train the same model."""
    inputs = {"dataset": dataset_version, "params": params, "seed": seed, "code": code}
    inputs["adapter"] = adapter
    if estimator:  # only where there is one: earlier fingerprints stay what they were
        inputs["estimator"] = estimator
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def candidate_fingerprint(candidate: dict[str, Any]) -> str:
    return fingerprint(
        candidate["dataset_version"],
        candidate["params"],
        candidate["seed"],
        candidate["code_version"],
        candidate["adapter"],
        candidate.get("estimator"),
    )


def trained_before(
    storage: ObjectStorage, layout: Layout, model: ModelConfig, override: dict[str, Any] | None
) -> dict[str, Any] | None:
    """What became of an earlier candidate with exactly the inputs this training would
    have (released as a version, or rejected by the gate), or None."""
    key = fingerprint(
        current_dataset(storage, layout),
        resolved_params(model, override),
        model.seed,
        code_version(),
        model.adapter,
        model.estimator or None,
    )
    return storage.read_json(layout.trained(key), default={}) or None


def record_outcome(
    storage: ObjectStorage, layout: Layout, candidate: dict[str, Any], outcome: dict[str, Any]
) -> None:
    """Remember what became of this candidate, so the same inputs are not trained again."""
    storage.write_json(
        layout.trained(candidate_fingerprint(candidate)),
        {"candidate_id": candidate["candidate_id"], **outcome},
    )


def resolved_params(model: ModelConfig, override: dict[str, Any] | None = None) -> dict[str, Any]:
    adapter = load_adapter(model.adapter)
    return {**adapter.default_params, **model.params, **(override or {})}


def configured_adapter(model: ModelConfig) -> Any:
    """The adapter the trusted configuration names, told what else it says (the estimator
    class, the preprocessing, the Keras backend)."""
    adapter = load_adapter(model.adapter)
    if hasattr(adapter, "keras_backend"):
        adapter.keras_backend = model.keras_backend
    if hasattr(adapter, "estimator") and model.estimator:
        adapter.estimator = model.estimator
    if hasattr(adapter, "preprocessing"):
        adapter.preprocessing = model.preprocessing
    return adapter


def output_contract(train: SplitData) -> dict[str, Any]:
    """What the server answers: class ids as INT64 (digits, LSFB), class names as BYTES,
    a regression target as FP64."""
    if train.task == "regression":
        datatype = "FP64"
    elif train.classes and not all(isinstance(c, int) for c in train.classes):
        datatype = "BYTES"
    else:
        datatype = "INT64"
    return {"name": "output-0", "datatype": datatype, "shape": [-1]}


def val_score(train: SplitData, y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The validation split's headline figure, for the record: accuracy, or RMSE."""
    if train.task == "regression":
        diff = np.asarray(predicted, dtype="float64") - np.asarray(y, dtype="float64")
        return {"val_rmse": float(np.sqrt(np.mean(diff**2)))}
    return {"val_accuracy": float(np.mean(np.asarray(predicted) == np.asarray(y)))}


def scaling_warning(adapter: Any, adapter_name: str, rows: int) -> str:
    """What to tell a user whose training split is large for a quadratic model ('' else)."""
    limit = getattr(adapter, "quadratic_above_rows", None)
    if limit is None or rows <= limit:
        return ""
    return (
        f"{rows:,} training rows for {adapter_name}, whose fit time grows with the square of "
        f"the rows (above {limit:,} it takes minutes to hours: 140,000 rows took 11 minutes on "
        "2 cores): sample the training split, or train a model that scales with the rows"
    )


def run_train(
    storage: ObjectStorage,
    layout: Layout,
    dataset: DatasetKind,
    model: ModelConfig,
    candidate_id: str,
    override: dict[str, Any] | None = None,
    warn: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit the adapter on the current version's train split and store the candidate;
    `warn` hears, before the fit, what the user should know about its cost."""
    adapter = configured_adapter(model)
    version = current_dataset(storage, layout)
    params = resolved_params(model, override)
    train = dataset.load_split(storage, layout, version, "train")
    val = dataset.load_split(storage, layout, version, "val")
    warning = scaling_warning(adapter, model.estimator or model.adapter, train.rows)
    if warning and warn is not None:
        warn(warning)
    started = perf_counter()
    fitted = adapter.fit(train, val, params, model.seed)
    seconds = perf_counter() - started
    artifact = adapter.dumps(fitted)
    storage.write_bytes(layout.candidate(candidate_id, adapter.artifact_name), artifact)
    scores: dict[str, float | None] = {"val_accuracy": None}
    if val.rows:
        y_val, predicted, _ = predict_split(adapter, fitted, val)
        scores = val_score(train, y_val, predicted)
    candidate = {
        "candidate_id": candidate_id,
        "adapter": model.adapter,
        "estimator": model.estimator or None,
        "task": train.task,
        "artifact": adapter.artifact_name,
        "artifact_sha256": hashlib.sha256(artifact).hexdigest(),
        "dataset_version": version,
        "params": params,
        "seed": model.seed,
        # which framework trained it (the artifact loads on any): for the record
        "keras_backend": getattr(adapter, "keras_backend", None),
        "rows_train": train.rows,
        "rows_val": val.rows,
        "training_seconds": seconds,
        "warning": warning,
        **scores,
        "code_version": code_version(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "input": input_contract(train),
        # what the model server accepts (rows as they land) and the transform it applies
        "request": dataset.request_contract(train),
        "output": output_contract(train),
        "classes": train.classes,
        "class_names": train.class_names,
    }
    storage.write_json(layout.candidate(candidate_id, CANDIDATE), candidate)
    return candidate
