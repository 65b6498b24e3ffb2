"""The model adapter interface, and loading an adapter named in a use case's YAML."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mlops_assets.mlops.splits import SplitData


class ModelAdapter(Protocol):
    """What the MLOps assets need from a model family.

    `dumps`/`loads` must use a format that never unpickles arbitrary bytes. An adapter
    may also offer `predict_scores(model, x)` (class scores), which enables top-k metrics.
    """

    artifact_name: str
    default_params: dict[str, Any]

    def fit(self, train: SplitData, val: SplitData, params: dict[str, Any], seed: int) -> Any:
        """`train.arrays()` for a model that fits in memory, `train.chunks()` to stream."""
        ...

    def predict(self, model: Any, x: Any) -> Any: ...

    def dumps(self, model: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


def load_adapter(path: str) -> ModelAdapter:
    """`package.module:ClassName` -> an adapter instance."""
    module_name, _, class_name = path.partition(":")
    if not class_name:
        raise ValueError(f"model adapter {path!r} must look like 'package.module:ClassName'")
    return getattr(importlib.import_module(module_name), class_name)()
