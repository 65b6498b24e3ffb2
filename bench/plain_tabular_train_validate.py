"""Train plus validate of a mixed-type table as a data scientist's plain script: the
baseline for `tabular_train_validate.py`. The same estimator and preprocessing on the same
dataset version: read the splits, fit a ColumnTransformer (median imputation, one-hot
categories) and a HistGradientBoostingClassifier, store with skops, score validation and
test. Prints the seconds it spent as JSON.
"""

from __future__ import annotations

import json
import sys
from time import perf_counter


def main(files_json: str, spec_json: str) -> None:
    """`files_json`: each split's Parquet files; `spec_json`: the feature columns with their
    types, the label and the estimator's parameters."""
    started = perf_counter()
    import pandas as pd
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    spec = json.loads(spec_json)
    files = json.loads(files_json)

    def read(split: str, path: str) -> pd.DataFrame:
        frame = pd.read_parquet(path)
        return frame[frame["split"] == split] if "split" in frame else frame

    frames = {
        s: pd.concat([read(s, path) for path in files[s]], ignore_index=True)
        for s in ("train", "val", "test")
    }
    numbers = [c for c, kind in spec["features"].items() if kind != "category"]
    texts = [c for c, kind in spec["features"].items() if kind == "category"]
    prep = ColumnTransformer(
        [
            ("numbers", SimpleImputer(strategy="median"), numbers),
            (
                "categories",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                texts,
            ),
        ]
    )
    model = Pipeline(
        [
            ("prep", prep),
            ("model", HistGradientBoostingClassifier(random_state=0, **spec["params"])),
        ]
    )

    def xy(split):
        frame = frames[split]
        x = frame[[*numbers, *texts]].astype({c: object for c in texts})
        return x, frame[spec["label"]].to_numpy()

    model.fit(*xy("train"))
    x_val, y_val = xy("val")
    balanced_accuracy_score(y_val, model.predict(x_val))
    data = sio.dumps(model)
    model = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    x_test, y_test = xy("test")
    predicted = model.predict(x_test)
    balanced_accuracy_score(y_test, predicted)
    confusion_matrix(y_test, predicted)
    model.predict_proba(x_test)
    print(json.dumps({"seconds": perf_counter() - started}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
