"""Train plus validate as a data scientist's plain script: the baseline for
`train_validate.py`. The same scikit-learn calls on the same dataset version:
read the splits, fit scaler and SVC, store with skops, score validation and test.
Prints the seconds it spent as JSON.
"""

from __future__ import annotations

import json
import sys
from time import perf_counter


def main(files_json: str, params_json: str) -> None:
    """`files_json`: each split's Parquet files (a part holds a batch's three splits, its
    `split` column says which), as the dataset version's manifests list them."""
    started = perf_counter()
    import pandas as pd
    import skops.io as sio
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    def read(split: str, path: str) -> pd.DataFrame:
        frame = pd.read_parquet(path)
        return frame[frame["split"] == split] if "split" in frame else frame

    files = json.loads(files_json)
    frames = {
        s: pd.concat([read(s, path) for path in files[s]], ignore_index=True)
        for s in ("train", "val", "test")
    }
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
