"""Your own training code for the penguins: a soft-voting ensemble of gradient boosting
and a logistic regression, after the preprocessing the schema gives.

The protocol (mlops_assets/models/training_function.py): `fit(data, params, seed)` gets a
`TrainingData` (rows as landed, labels, the columns) and returns a fitted
scikit-learn-compatible model. It is stored with skops, so it is built from scikit-learn
parts; imports sit inside the function, which runs only where training runs.
"""

from __future__ import annotations

from typing import Any


def fit(data: Any, params: dict[str, Any], seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    vote = VotingClassifier(
        [
            (
                "boosting",
                HistGradientBoostingClassifier(
                    max_iter=params.get("max_iter", 100), random_state=seed
                ),
            ),
            ("linear", LogisticRegression(C=params.get("C", 1.0), max_iter=1000)),
        ],
        voting="soft",
    )
    model = Pipeline([("prep", data.preprocessing(scale=True)), ("vote", vote)])
    return model.fit(data.x, data.y)
