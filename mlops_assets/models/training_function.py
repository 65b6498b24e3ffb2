"""Your own training code: `training.function: package.module:fit` in the use case's YAML.

The protocol: `fit(data: TrainingData, params: dict, seed: int) -> model`, where `model` is
fitted and scikit-learn-compatible (`predict`; `predict_proba` and `classes_` for the
probability metrics). The model is stored with skops under the same rule as any pipeline
(`trusted_types.py`): classes of the trusted packages only, so build it from scikit-learn,
LightGBM or XGBoost parts; a class of your own is an estimator the YAML names instead
(`training.estimator`). The function runs where training runs; the server never imports it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops_assets.models.sklearn_estimator import EstimatorError, SklearnEstimator, preprocessing
from mlops_assets.models.trusted_types import allowlist_digest, trusted_types


@dataclass(frozen=True)
class TrainingData:
    """What `fit` is given: the training and validation rows as the dataset's columns hold
    them (an object array for a table declared column by column, with None for missing;
    float32 for the numeric shorthand), the labels, and the schema."""

    x: Any
    y: Any
    x_val: Any
    y_val: Any
    columns: list[dict[str, Any]] | None
    """Each feature column's name, type and categories, in the order of x's columns."""
    task: str
    classes: list[Any]

    def preprocessing(self, scale: bool = True) -> Any:
        """The ColumnTransformer the sklearn adapter would build from the schema (median
        imputation, `scale`: standardised numbers, one-hot categories), to put first in
        your pipeline."""
        if self.columns is None:
            from sklearn.preprocessing import StandardScaler

            return StandardScaler() if scale else "passthrough"
        return preprocessing(self.columns, scale)


def import_function(path: str) -> Callable[..., Any]:
    """The callable at `package.module:name` (the YAML is code; stored data never names it)."""
    module_name, sep, name = path.partition(":")
    if not sep:
        module_name, _, name = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise EstimatorError(f"training.function {path!r} cannot be imported: {error}") from None
    if not callable(found):
        raise EstimatorError(f"training.function {path!r} is not callable")
    return found


class TrainingFunction(SklearnEstimator):
    """`estimator` holds the function's path (set from the trusted configuration): what
    made the model, recorded and pinned; `loads` never imports it."""

    estimator = ""

    @property
    def quadratic_above_rows(self) -> int | None:
        return None  # the function's own business

    def fit(self, train, val, params: dict[str, Any], seed: int):
        fit = import_function(self.estimator)
        x, y = train.arrays()
        x_val, y_val = val.arrays() if val is not None and val.rows else (None, None)
        data = TrainingData(x, y, x_val, y_val, train.columns, train.task, list(train.classes))
        model = fit(data, dict(params), seed)
        if not hasattr(model, "predict"):
            raise EstimatorError(
                f"training.function {self.estimator!r} returned {type(model).__name__}, "
                "not a fitted model with predict"
            )
        return model

    def trust_digest(self) -> str:
        return allowlist_digest(())

    def loads(self, data: bytes):
        import skops.io as sio

        return sio.loads(data, trusted=trusted_types(data))
