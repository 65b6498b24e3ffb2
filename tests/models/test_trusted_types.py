"""What a stored model may hold is decided by code: the estimator the YAML names and a fixed
list of package prefixes. An artifact holding anything else is refused on load, naming the
type, and the module it names is never imported."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from mlops_assets.models import load_adapter
from mlops_assets.models.trusted_types import UntrustedArtifactError, allowed
from tests.support.processes import clean_env

EVIL_MODULE = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")
from sklearn.base import BaseEstimator, ClassifierMixin


class Evil(ClassifierMixin, BaseEstimator):
    def fit(self, x, y):
        self.classes_ = sorted(set(y))
        return self

    def predict(self, x):
        return [self.classes_[0]] * len(x)
"""

WRITE = """
import sys
import numpy as np
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from evil_estimators import Evil

x, y = np.random.default_rng(0).normal(size=(20, 3)), np.array([0, 1] * 10)
model = Pipeline([("scale", StandardScaler()), ("model", Evil())]).fit(x, y)
open(sys.argv[1], "wb").write(sio.dumps(model))
"""

LOAD = """
import json, sys
from mlops_assets.models import load_adapter
from mlops_assets.models.trusted_types import UntrustedArtifactError

adapter = load_adapter("sklearn")
adapter.estimator = "sklearn.ensemble.HistGradientBoostingClassifier"
try:
    adapter.loads(open(sys.argv[1], "rb").read())
    error = ""
except UntrustedArtifactError as refused:
    error = str(refused)
print(json.dumps({"error": error, "imported": "evil_estimators" in sys.modules}))
"""


def test_an_artifact_holding_a_class_outside_the_allowlist_is_refused_unimported(tmp_path):
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "evil-module-imported"
    (evil / "evil_estimators.py").write_text(EVIL_MODULE.format(marker=str(marker)))
    env = {**clean_env(), "PYTHONPATH": os.pathsep.join([str(evil), os.getcwd()])}
    artifact = tmp_path / "model.skops"
    subprocess.run([sys.executable, "-c", WRITE, str(artifact)], env=env, check=True, timeout=120)
    marker.unlink()  # written by the process that made the artifact
    # the loading process could import the module (it is on its path): only the rule stops it
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(artifact)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert "outside the trusted list: evil_estimators.Evil" in found["error"]
    assert found["imported"] is False and not marker.exists()


def test_a_function_is_refused_even_under_a_trusted_package():
    import skops.io as sio
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.tree import DecisionTreeClassifier

    x, y = np.arange(12.0).reshape(6, 2), np.array([0, 1] * 3)
    adapter = load_adapter("sklearn")
    adapter.estimator = "sklearn.tree.DecisionTreeClassifier"
    from sklearn.utils.validation import check_array

    # a function elsewhere, and one of scikit-learn's own (numpy's ufuncs skops trusts itself)
    for func, name in ((copy.copy, "copy.copy"), (check_array, "validation.check_array")):
        model = Pipeline([("f", FunctionTransformer(func)), ("m", DecisionTreeClassifier())])
        with pytest.raises(UntrustedArtifactError, match=name):
            adapter.loads(sio.dumps(model.fit(x, y)))
    # by name: a class under a trusted prefix passes, a function there does not
    assert allowed("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor")
    assert not allowed("sklearn.utils._testing.assert_run_python_script_without_output")
    assert not allowed("builtins.eval")


def booster_bundle(library: str):
    from sklearn.datasets import load_breast_cancer

    class Split:
        columns, task = None, "classification"

        def __init__(self, x, y):
            self.x, self.y = x, y

        def arrays(self):
            return self.x, self.y

    data = load_breast_cancer()
    x = data.data.astype(object)
    y = np.asarray(data.target_names[data.target], dtype=object)
    adapter = load_adapter(library)
    model = adapter.fit(Split(x, y), None, {"n_estimators": 20}, 0)
    return adapter, model, adapter.dumps(model), x


def rewritten(data: bytes, change) -> bytes:
    """The tar with `change(name, bytes)` applied to each member (None drops it)."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(data)) as old,
        tarfile.open(fileobj=out, mode="w") as new,
    ):
        members = [(m.name, old.extractfile(m).read()) for m in old.getmembers()]
        for name, body in [*members, ("extra.txt", b"")]:
            body = change(name, body)
            if body is None:
                continue
            info = tarfile.TarInfo(name)
            info.size = len(body)
            new.addfile(info, io.BytesIO(body))
    return out.getvalue()


@pytest.mark.parametrize(
    ("library", "member", "starts"),
    [("lightgbm", "booster.txt", b"tree\nversion="), ("xgboost", "booster.ubj", b"{")],
)
def test_a_booster_artifact_is_its_own_format_and_a_changed_member_is_refused(
    library, member, starts
):
    """LightGBM's text model, XGBoost's UBJSON (an object: `{`), never a pickle."""
    adapter, model, data, x = booster_bundle(library)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = sorted(tar.getnames())
        booster = tar.extractfile(member).read()
    assert names == sorted([member, "manifest.json", "preprocessing.skops"])
    assert booster.startswith(starts) and not booster.startswith(b"\x80")
    loaded = adapter.loads(data)
    assert (adapter.predict(loaded, x) == adapter.predict(model, x)).all()
    assert loaded.classes_ == ["benign", "malignant"]

    def edit_booster(name, body):
        if name == "extra.txt":
            return None
        return body[:-1] + bytes([body[-1] ^ 1]) if name == member else body

    with pytest.raises(UntrustedArtifactError, match=f"{member} does not match its sha256"):
        adapter.loads(rewritten(data, edit_booster))
    with pytest.raises(UntrustedArtifactError, match="unexpected member 'extra.txt'"):
        adapter.loads(rewritten(data, lambda name, body: body))
