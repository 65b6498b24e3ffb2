"""LightGBM (and, by the same bundle, XGBoost: `xgboost_booster.py`), stored without
pickle: the booster in its library's own format, the preprocessing and the class list by
skops, in one artifact.

A LightGBM estimator inside a skops pipeline would be stored as a pickled blob; here the
booster is written by `Booster.model_to_string` and read by `Booster(model_str=...)`, which
parse a documented text format and run no stored code. The artifact is an uncompressed tar
of three members (`booster.txt`, `preprocessing.skops`, `manifest.json` with each other
member's sha256), read in memory: no member is ever written to disk, and one whose bytes do
not match the manifest is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any

from mlops_assets.core.config import LIGHTGBM_ESTIMATORS as ESTIMATORS
from mlops_assets.models.sklearn_estimator import EstimatorError, SklearnEstimator, preprocessing
from mlops_assets.models.trusted_types import (
    UntrustedArtifactError,
    allowlist_digest,
    trusted_types,
)

MEMBERS = ("booster.txt", "preprocessing.skops")


@dataclass
class LightGBMModel:
    """The fitted parts: `prep` turns rows into the booster's features; `classes` is the
    label of each booster class (empty for regression)."""

    prep: Any
    booster: Any
    classes: list[Any]
    library: str = "lightgbm"
    """Whose booster: `lightgbm` predicts from an array, `xgboost` from a DMatrix."""

    @property
    def classes_(self) -> list[Any]:
        """The booster's class order, as scikit-learn names it (for aligning probabilities)."""
        return self.classes

    def proba(self, x: Any) -> Any:
        import numpy as np

        features = self.prep.transform(x).astype("float64")
        if self.library == "xgboost":
            import xgboost

            raw = self.booster.predict(xgboost.DMatrix(features))
        else:
            raw = self.booster.predict(features)
        if not self.classes:
            return raw
        if raw.ndim == 1:  # binary: the probability of the second class
            raw = np.column_stack([1.0 - raw, raw])
        return raw


class LightGBMBooster(SklearnEstimator):
    """`estimator` is `lightgbm.LGBMClassifier` or `lightgbm.LGBMRegressor` (set by the
    task); `params` are the estimator's."""

    artifact_name = "model.lgbm.tar"
    estimator = ESTIMATORS["classification"]
    library = "lightgbm"
    estimators = ESTIMATORS
    booster_member = "booster.txt"
    settings: dict[str, Any] = {"verbose": -1, "n_jobs": 1}

    def estimator_class(self) -> type:
        if self.estimator not in self.estimators.values():
            raise EstimatorError(
                f"the {self.library} adapter trains {' or '.join(self.estimators.values())}, "
                f"not {self.estimator!r}"
            )
        return super().estimator_class()

    def booster_of(self, fitted: Any) -> Any:
        return fitted.booster_

    def booster_bytes(self, booster: Any) -> bytes:
        """LightGBM's own text model."""
        return booster.model_to_string().encode()

    def read_booster(self, data: bytes) -> Any:
        import lightgbm

        return lightgbm.Booster(model_str=data.decode())

    def fit(self, train, val, params: dict[str, Any], seed: int) -> LightGBMModel:
        import numpy as np
        from sklearn.compose import ColumnTransformer

        x, y = train.arrays()
        columns = train.columns or [
            {"name": f"f{i}", "type": "number", "categories": None} for i in range(x.shape[1])
        ]
        prep: Any = preprocessing(columns, scale=False)
        if self.preprocessing == "none":
            prep = ColumnTransformer([("all", "passthrough", list(range(x.shape[1])))])
        features = prep.fit_transform(x).astype("float64")
        cls = self.estimator_class()
        settings = {"random_state": seed, **self.settings, **params}
        classes: list[Any] = []
        target = y
        if self.estimator == self.estimators["classification"]:
            classes = sorted(set(y.tolist()))
            index = {c: i for i, c in enumerate(classes)}
            target = np.array([index[v] for v in y.tolist()], dtype="int64")
        fitted = cls(**settings).fit(features, target)
        return LightGBMModel(prep, self.booster_of(fitted), classes, self.library)

    def predict(self, model: LightGBMModel, x):
        import numpy as np

        out = model.proba(x)
        if not model.classes:
            return out
        return np.asarray(model.classes, dtype=object)[out.argmax(axis=1)]

    def predict_proba(self, model: LightGBMModel, x):
        return model.proba(x) if model.classes else None

    def proba_classes(self, model: LightGBMModel) -> list[Any]:
        return list(model.classes)

    def predict_and_proba(self, model: LightGBMModel, x):
        """The booster's class is the argmax of its probabilities: one pass for both."""
        import numpy as np

        if not model.classes:
            return model.proba(x), None
        proba = model.proba(x)
        return np.asarray(model.classes, dtype=object)[proba.argmax(axis=1)], proba

    def dumps(self, model: LightGBMModel) -> bytes:
        import skops.io as sio

        files = {
            self.booster_member: self.booster_bytes(model.booster),
            "preprocessing.skops": sio.dumps({"prep": model.prep, "classes": model.classes}),
        }
        manifest = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
        files["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return out.getvalue()

    def trust_digest(self) -> str:
        """The allowlist of the skops member (scikit-learn only) and the booster's format."""
        return allowlist_digest((f"{self.library}.Booster({self.booster_member})",))

    def loads(self, data: bytes) -> LightGBMModel:
        import skops.io as sio

        expected = (self.booster_member, "preprocessing.skops")
        files = members(data, expected)
        manifest = json.loads(files["manifest.json"])
        for name in expected:
            if hashlib.sha256(files[name]).hexdigest() != manifest.get(name):
                raise UntrustedArtifactError(f"artifact member {name} does not match its sha256")
        stored = files["preprocessing.skops"]
        parts = sio.loads(stored, trusted=trusted_types(stored))
        booster = self.read_booster(files[self.booster_member])
        return LightGBMModel(parts["prep"], booster, list(parts["classes"]), self.library)


def members(data: bytes, expected: tuple[str, ...] = MEMBERS) -> dict[str, bytes]:
    """The tar's regular members by name, in memory; anything else is refused."""
    found: dict[str, bytes] = {}
    names = (*expected, "manifest.json")
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar.getmembers():
                if not info.isfile() or info.name not in names:
                    raise UntrustedArtifactError(
                        f"artifact holds an unexpected member {info.name!r}"
                    )
                handle = tar.extractfile(info)
                assert handle is not None
                found[info.name] = handle.read()
    except tarfile.TarError as error:
        raise UntrustedArtifactError(f"artifact is not a booster bundle: {error}") from None
    missing = set(names) - found.keys()
    if missing:
        raise UntrustedArtifactError(f"artifact lacks {', '.join(sorted(missing))}")
    return found
