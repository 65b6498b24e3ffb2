"""XGBoost, stored without pickle: the booster as XGBoost's own UBJSON model
(`Booster.save_raw("ubj")`, read back by `Booster.load_model`), beside the preprocessing
and the class list by skops, in the same bundle as LightGBM's (`lightgbm_booster.py`)."""

from __future__ import annotations

from typing import Any

from mlops_assets.core.config import XGBOOST_ESTIMATORS
from mlops_assets.models.lightgbm_booster import LightGBMBooster


class XGBoostBooster(LightGBMBooster):
    """`estimator` is `xgboost.XGBClassifier` or `xgboost.XGBRegressor` (set by the task)."""

    artifact_name = "model.xgb.tar"
    estimator = XGBOOST_ESTIMATORS["classification"]
    library = "xgboost"
    estimators = XGBOOST_ESTIMATORS
    booster_member = "booster.ubj"
    settings: dict[str, Any] = {"n_jobs": 1, "verbosity": 0}

    def booster_of(self, fitted: Any) -> Any:
        return fitted.get_booster()

    def booster_bytes(self, booster: Any) -> bytes:
        return bytes(booster.save_raw(raw_format="ubj"))

    def read_booster(self, data: bytes) -> Any:
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(bytearray(data))
        return booster
