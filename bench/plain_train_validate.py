"""Train plus validate as a data scientist's plain script: the baseline for
`train_validate.py`. The same scikit-learn calls on the same dataset version:
read the splits, fit scaler and SVC, store with skops, score validation and test.
Prints the seconds it spent as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from time import perf_counter


def main(dataset_dir: str, params_json: str) -> None:
    started = perf_counter()
    import pandas as pd
    import skops.io as sio
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    folder = Path(dataset_dir)
    frames = {s: pd.read_parquet(folder / f"{s}.parquet") for s in ("train", "val", "test")}
    features = [c for c in frames["train"].columns if c.startswith("pixel_")]

    def xy(split):
        return frames[split][features].to_numpy("float32"), frames[split]["label"].to_numpy()

    x_train, y_train = xy("train")
    model = Pipeline(
        [("scale", StandardScaler()), ("svc", SVC(random_state=0, **json.loads(params_json)))]
    )
    model.fit(x_train, y_train)
    x_val, y_val = xy("val")
    accuracy_score(y_val, model.predict(x_val))
    model = sio.loads(sio.dumps(model), trusted=sio.get_untrusted_types(data=sio.dumps(model)))
    x_test, y_test = xy("test")
    predicted = model.predict(x_test)
    accuracy_score(y_test, predicted)
    f1_score(y_test, predicted, average="macro")
    recall_score(y_test, predicted, average=None)
    confusion_matrix(y_test, predicted)
    print(json.dumps({"seconds": perf_counter() - started}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
