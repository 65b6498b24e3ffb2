"""Any scikit-learn-compatible estimator, named by its import path in the YAML
(`training.estimator`), in one saved pipeline with the preprocessing its table needs.

The preprocessing is built from the dataset's columns: numbers imputed (median) and, for an
estimator that is not tree-based, standardised; categories imputed and one-hot encoded
(an unseen one encodes as all zeros; the server refuses it first unless the YAML says
`unseen_categories: encode`). So the served model takes rows as they land, strings and
missing values included. Stored with skops; `trusted_types` decides what it may hold.
"""

from __future__ import annotations

import importlib
from typing import Any

from mlops_assets.errors import MlopsError
from mlops_assets.models.trusted_types import allowlist_digest, class_path, trusted_types

TREE_MODULES = ("sklearn.ensemble", "sklearn.tree", "xgboost", "lightgbm")
"""Estimators from these need no scaling: a split on a feature does not care for its units."""
QUADRATIC = frozenset(
    {
        "sklearn.svm.SVC",
        "sklearn.svm.NuSVC",
        "sklearn.svm.SVR",
        "sklearn.svm.NuSVR",
        "sklearn.kernel_ridge.KernelRidge",
        "sklearn.gaussian_process.GaussianProcessClassifier",
        "sklearn.gaussian_process.GaussianProcessRegressor",
    }
)
"""Estimators whose fit time (and memory) grows with the square of the rows or worse."""
QUADRATIC_ABOVE_ROWS = 50_000
ARGMAX_PREDICT = frozenset(
    f"sklearn.{path}"
    for path in (
        "ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "ensemble._forest.RandomForestClassifier",
        "ensemble._forest.ExtraTreesClassifier",
        "tree._classes.DecisionTreeClassifier",
        "linear_model._logistic.LogisticRegression",
    )
)
"""Classifiers whose predict is the class of highest probability (scikit-learn's code)."""
MISSING = "__missing__"
"""The category a missing text value becomes (its own one-hot column)."""


class EstimatorError(MlopsError, ValueError):
    """`training.estimator` names nothing importable, or not an estimator."""


def import_estimator(path: str) -> type:
    """The class at `package.module.Class` (or `package.module:Class`); the path comes from
    the YAML or the values file, never from stored data."""
    module_name, sep, name = path.partition(":")
    if not sep:
        module_name, _, name = path.rpartition(".")
    if not module_name or not name:
        raise EstimatorError(f"training.estimator {path!r} is not an import path (package.Class)")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise EstimatorError(f"training.estimator {path!r} cannot be imported: {error}") from None
    if not isinstance(cls, type) or not hasattr(cls, "fit") or not hasattr(cls, "get_params"):
        raise EstimatorError(
            f"training.estimator {path!r} is not a scikit-learn-compatible estimator class "
            "(fit, predict, get_params)"
        )
    return cls


def needs_scaling(cls: type) -> bool:
    return not cls.__module__.startswith(TREE_MODULES)


def preprocessing(columns: list[dict[str, Any]], scale: bool) -> Any:
    """The ColumnTransformer for these feature columns (by position: x is an object array
    in their order)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numbers = [i for i, c in enumerate(columns) if c["type"] not in ("category", "string")]
    texts = [i for i, c in enumerate(columns) if c["type"] in ("category", "string")]
    parts = []
    if numbers:
        steps = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
        if scale:
            steps.append(("scale", StandardScaler()))
        parts.append(("numbers", Pipeline(steps), numbers))
    if texts:
        declared = [columns[i]["categories"] for i in texts]
        categories: Any = "auto"
        if all(d is not None for d in declared):
            categories = [[*d, MISSING] for d in declared]
        encode = OneHotEncoder(
            categories=categories, handle_unknown="ignore", sparse_output=False, dtype="float64"
        )
        steps = [
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING)),
            ("onehot", encode),
        ]
        parts.append(("categories", Pipeline(steps), texts))
    return ColumnTransformer(parts, sparse_threshold=0.0)


class SklearnEstimator:
    """`estimator` (an import path) is set from the trusted configuration before use."""

    artifact_name = "model.skops"
    batchable = True
    inline_rows = 8
    default_params: dict[str, Any] = {}
    estimator: str = "sklearn.ensemble.HistGradientBoostingClassifier"
    preprocessing: str = "auto"

    def estimator_class(self) -> type:
        return import_estimator(self.estimator)

    @property
    def quadratic_above_rows(self) -> int | None:
        """Where train warns that this estimator's fit will take long (None: it scales)."""
        return QUADRATIC_ABOVE_ROWS if self.estimator.replace(":", ".") in QUADRATIC else None

    def build(self, columns: list[dict[str, Any]] | None, params: dict[str, Any], seed: int):
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        cls = self.estimator_class()
        params = dict(params)
        if "random_state" in cls().get_params() and "random_state" not in params:
            params["random_state"] = seed
        steps: list[tuple[str, Any]] = []
        if self.preprocessing != "none":
            if columns is not None:
                steps.append(("prep", preprocessing(columns, needs_scaling(cls))))
            elif needs_scaling(cls):
                steps.append(("scale", StandardScaler()))
        return Pipeline([*steps, ("model", cls(**params))])

    def fit(self, train, val, params: dict[str, Any], seed: int):
        return self.build(train.columns, params, seed).fit(*train.arrays())

    def predict(self, model, x):
        return model.predict(x)

    def predict_proba(self, model, x):
        """Class probabilities in `model.classes_` order, where the estimator has them."""
        return model.predict_proba(x) if self.proba_classes(model) else None

    def proba_classes(self, model) -> list[Any]:
        """The classes `predict_proba`'s columns are, in order; [] where it has none."""
        final = model[-1] if hasattr(model, "steps") else model
        if not hasattr(final, "predict_proba"):
            return []
        return list(getattr(model, "classes_", []))

    def predict_and_proba(self, model, x) -> tuple[Any, Any]:
        """Both from one pass where the estimator's predict is the argmax of its
        probabilities (trees, boosting, linear models): the test split is scored once."""
        import numpy as np

        proba = self.predict_proba(model, x)
        final = model[-1] if hasattr(model, "steps") else model
        if proba is None or class_path(type(final)) not in ARGMAX_PREDICT:
            return self.predict(model, x), proba
        return np.asarray(model.classes_)[proba.argmax(axis=1)], proba

    def dumps(self, model) -> bytes:
        import skops.io as sio

        return sio.dumps(model)

    def trust_digest(self) -> str:
        """The hash of what `loads` trusts with this estimator (pinned in the values file)."""
        return allowlist_digest((class_path(self.estimator_class()),))

    def loads(self, data: bytes):
        import skops.io as sio

        trusted = trusted_types(data, (class_path(self.estimator_class()),))
        return sio.loads(data, trusted=trusted)
