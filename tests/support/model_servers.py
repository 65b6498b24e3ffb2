"""Models to serve in the server tests: a real digits SVC, and a test adapter that counts
and can be held or made to fail (to show batching, isolation and health under load)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from mlops_assets.serving.loader import LoadedModel

FEATURES = 64
POISON = 16.0
"""A row whose first pixel is this makes the test adapter's predict fail."""


def digits_contract() -> dict:
    from mlops_assets.datasets.tabular.dataset import TabularDataset

    return TabularDataset().request_contract()


def metadata(adapter: str) -> dict:
    return {
        "adapter": adapter,
        "request": digits_contract(),
        "input": {"name": "input-0", "datatype": "FP32", "shape": [-1, FEATURES]},
        "output": {"name": "output-0", "datatype": "INT64", "shape": [-1]},
    }


def digits_svc() -> tuple[LoadedModel, np.ndarray, np.ndarray]:
    """The shipped adapter fitted on scikit-learn's digits; returns the model, raw rows
    (0..16, as they land) and the model's own predictions of them."""
    from sklearn.datasets import load_digits

    from mlops_assets.core.split_data import SplitData
    from mlops_assets.models import load_adapter

    x, y = load_digits(return_X_y=True)
    scaled = (x / 16).astype("float32")
    train = SplitData("train", list(range(10)), [FEATURES], len(y), lambda _: (scaled, y), ["t"])
    adapter = load_adapter("sklearn_svc")
    model = adapter.fit(train, train, {"C": 10.0, "gamma": "scale", "kernel": "rbf"}, 0)
    loaded = LoadedModel("digits", "1", metadata("sklearn_svc"), adapter, model)
    return loaded, x[:200], np.asarray(adapter.predict(model, scaled[:200]))


@dataclass
class CountingAdapter:
    """Predicts the class `round(sum of the row's scaled pixels) % 10`; records every call's
    row count; `hold` blocks predict until released; a POISON row raises."""

    batchable = True
    calls: list[int] = field(default_factory=list)
    hold: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)
    seconds: float = 0.0

    def predict(self, model, x: np.ndarray) -> np.ndarray:
        self.calls.append(len(x))
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(timeout=30)
        if self.seconds:
            time.sleep(self.seconds)
        if (np.asarray(x)[:, 0] * 16 == POISON).any():
            raise ValueError("poisoned row")
        return expected(np.asarray(x) * 16)


def expected(raw: np.ndarray) -> np.ndarray:
    return (np.rint(np.asarray(raw, dtype="float64").sum(axis=1) / 16) % 10).astype("int64")


def counting_model(adapter: CountingAdapter) -> LoadedModel:
    return LoadedModel("digits", "1", metadata("sklearn_svc"), adapter, None)


def row(seed: int) -> list[float]:
    """A distinct valid row (0..15, never POISON in the first pixel)."""
    rng = np.random.default_rng(seed)
    return [float(v) for v in rng.integers(0, 16, FEATURES)]


def infer_body(rows: list[list[float]], **extra) -> dict:
    return {
        "inputs": [
            {"name": "rows", "datatype": "FP32", "shape": [len(rows), FEATURES], "data": rows}
        ],
        **extra,
    }


def ask(url: str, rows: np.ndarray) -> tuple[str, list[int]]:
    """POST `rows` (as they land) to the digits model at `url`: the request id and the
    predictions."""
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{url}/v2/models/digits/infer",
        data=json.dumps(infer_body(np.asarray(rows).tolist())).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    return answer["id"], answer["outputs"][0]["data"]
