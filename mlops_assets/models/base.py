"""The model adapter interface, and the fixed registry of adapters a model may name.

Which code loads or scores a model is decided by code: the use case's YAML names an
adapter of this registry, the GitOps values file (reviewed in git) names it for the server,
and stored JSON (`metadata.json`, `candidate.json`) is only ever *compared* with it. Whoever
can write to the object storage can therefore not make a process import a module.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from mlops_assets.errors import MlopsError

if TYPE_CHECKING:
    from mlops_assets.core.split_data import SplitData

ENTRY_POINT_GROUP = "mlops_assets.adapters"
"""Installed packages may add adapters here (`name = "package.module:Class"`)."""

BUILTIN_ADAPTERS: dict[str, str] = {
    "sklearn": "mlops_assets.models.sklearn_estimator:SklearnEstimator",
    "lightgbm": "mlops_assets.models.lightgbm_booster:LightGBMBooster",
    "xgboost": "mlops_assets.models.xgboost_booster:XGBoostBooster",
    "function": "mlops_assets.models.training_function:TrainingFunction",
    "sklearn_svc": "mlops_assets.models.sklearn_svc:SklearnSVC",
    "keras_sequence": "mlops_assets.models.keras_sequence:KerasSequenceClassifier",
}


class UnknownAdapterError(MlopsError, ValueError):
    """An adapter name that is not in the registry."""


class AdapterMismatchError(MlopsError, RuntimeError):
    """Stored metadata names another adapter than the trusted source (YAML or values file)."""


class ModelAdapter(Protocol):
    """What the MLOps assets need from a model family.

    `dumps`/`loads` must use a format that never unpickles arbitrary bytes. An adapter
    may also offer `predict_scores(model, x)` (class scores), which enables top-k metrics.
    """

    artifact_name: str
    default_params: dict[str, Any]
    batchable: bool
    """predict is vectorised and row-independent: the model server may coalesce concurrent
    requests into one call (and split the result)."""
    inline_rows: int
    """Optional: up to this many rows predict so fast (well under a millisecond) that the
    model server calls it on its event loop instead of its predict thread."""

    def fit(self, train: SplitData, val: SplitData, params: dict[str, Any], seed: int) -> Any:
        """`train.arrays()` for a model that fits in memory, `train.chunks()` to stream."""
        ...

    def predict(self, model: Any, x: Any) -> Any: ...

    def dumps(self, model: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


@cache
def adapters() -> dict[str, str]:
    """Adapter name -> import path: the built-ins, then those of installed plug-ins (read
    once per process: installing a plug-in takes a restart, as any code change does)."""
    found = dict(BUILTIN_ADAPTERS)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(point.name, point.value)
    return found


def adapter_name(value: str) -> str:
    """The registry name for `value` (a name, or the import path of a registered adapter).

    Import paths are accepted for YAML and metadata written before adapters had names."""
    known = adapters()
    if value in known:
        return value
    for name, path in known.items():
        if path == value:
            return name
    raise UnknownAdapterError(
        f"model adapter {value!r} is not installed here (known: {', '.join(sorted(known))}): "
        f"the package that registers it under the entry-point group {ENTRY_POINT_GROUP!r} "
        "must be a dependency of this project (`uv add --editable ./<its folder>`, or a uv "
        "workspace member), so that `uv sync` and the image keep it"
    )


def load_adapter(name: str) -> ModelAdapter:
    """The adapter registered as `name`; never imports anything outside the registry."""
    module_name, _, class_name = adapters()[adapter_name(name)].partition(":")
    return getattr(importlib.import_module(module_name), class_name)()


def check_stored_adapter(stored: Any, trusted: str, where: str) -> None:
    """Refuse stored metadata that names another adapter than the trusted one."""
    if not isinstance(stored, str):
        raise AdapterMismatchError(f"{where} names no model adapter (expected {trusted!r})")
    expected = adapter_name(trusted)  # not installed: that is what to say, not a mismatch
    try:
        same = adapter_name(stored) == expected
    except UnknownAdapterError:
        same = False
    if not same:
        raise AdapterMismatchError(
            f"{where} names the model adapter {stored!r}, but the trusted configuration "
            f"names {trusted!r}: refusing to load it"
        )
