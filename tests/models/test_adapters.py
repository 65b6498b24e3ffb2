"""The model adapter registry: what a missing plug-in says."""

from __future__ import annotations

import pytest

from mlops_assets.models.base import (
    AdapterMismatchError,
    UnknownAdapterError,
    check_stored_adapter,
)


def test_a_model_of_an_adapter_that_is_not_installed_says_so_and_how_to_keep_it():
    """A model released with a plug-in's adapter, served where the plug-in is missing (a
    `uv sync` removed it, the image never had it): it said "names 'sklearn_gbc', but the
    trusted configuration names 'sklearn_gbc'"."""
    with pytest.raises(UnknownAdapterError) as missing:
        check_stored_adapter("sklearn_gbc", "sklearn_gbc", "digits v3's metadata")
    message = str(missing.value)
    assert "model adapter 'sklearn_gbc' is not installed here (known: " in message
    assert "'mlops_assets.adapters'" in message and "uv add --editable" in message


def test_another_installed_adapter_than_the_trusted_one_is_still_a_mismatch():
    with pytest.raises(AdapterMismatchError, match="names the model adapter 'keras_sequence'"):
        check_stored_adapter("keras_sequence", "sklearn_svc", "digits v3's metadata")


def test_an_estimator_known_to_be_quadratic_warns_on_a_large_training_split():
    from mlops_assets.core.config import ModelConfig
    from mlops_assets.mlops.train import configured_adapter, scaling_warning

    def warning(estimator: str, rows: int) -> str:
        model = ModelConfig(estimator=estimator).resolved("classification")
        return scaling_warning(configured_adapter(model), model.estimator, rows)

    said = warning("sklearn.svm.SVC", 140_000)
    assert "140,000 training rows for sklearn.svm.SVC" in said and "square of the rows" in said
    assert warning("sklearn.svm.SVC", 10_000) == ""  # small: nothing to say
    assert warning("sklearn.ensemble.HistGradientBoostingClassifier", 1_000_000) == ""


def test_predict_and_proba_in_one_pass_predicts_what_predict_does():
    """Validate scores the test split once for both classes and probabilities where the
    estimator's predict is the argmax of its probabilities; the classes must not change."""
    import numpy as np
    from sklearn.datasets import load_iris

    from mlops_assets.models import load_adapter
    from mlops_assets.models.sklearn_estimator import ARGMAX_PREDICT

    x, y = load_iris(return_X_y=True)
    names = np.asarray(["setosa", "versicolor", "virginica"], dtype=object)[y]
    for estimator in [*sorted(ARGMAX_PREDICT), "sklearn.svm.SVC"]:
        adapter = load_adapter("sklearn")
        adapter.estimator = estimator
        model = adapter.build(None, {"probability": True} if "SVC" in estimator else {}, 0)
        model.fit(x, names)
        predicted, proba = adapter.predict_and_proba(model, x)
        assert (predicted == model.predict(x)).all(), estimator
        assert proba.shape == (len(x), 3)
