"""The Keras backend is a setting: the LSFB model trained on JAX (its own process, as a run's
step is, where TensorFlow cannot be imported), released, and served by the model server on
its default backend (TensorFlow)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from mlops_assets.models.keras_backend import KerasBackendError, use_backend
from mlops_assets.registry import ModelRegistry
from mlops_assets.settings import load_settings
from mlops_assets.storage import Layout
from tests.support.lsfb import clip_request, shards_of_test_split
from tests.support.processes import REPO, clean_env, model_server

TRAIN_ON_JAX = """
import sys


class NoTensorFlow:  # as on a machine where TensorFlow is not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ModuleNotFoundError(f"No module named {name!r}")


sys.meta_path.insert(0, NoTensorFlow())
import dagster as dg
from tests.support.lsfb import OVERRIDES, lsfb_definitions, merged
from tests.support.mlops_runs import run_mlops

defs = lsfb_definitions(merged(OVERRIDES, {"training": {"keras_backend": "jax"}}))
with dg.instance_for_test() as instance:
    assert defs.resolve_job_def("lsfb_dataops").execute_in_process(instance=instance).success
    assert run_mlops(defs, instance, use_case="lsfb").success
import keras, sys
print(keras.config.backend(), "tensorflow" in sys.modules)
"""


@pytest.mark.slow
def test_a_model_trained_on_jax_is_served_on_the_default_backend(
    dataset,
    source,
    storage,
):
    done = subprocess.run(
        [sys.executable, "-c", TRAIN_ON_JAX],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert done.stdout.strip().splitlines()[-1] == "jax False"  # TensorFlow never imported

    registry = ModelRegistry(storage, "lsfb")
    assert registry.champion()["version"] == 1
    _, metadata = registry.artifact(1)
    assert metadata["training"]["keras_backend"] == "jax"
    assert metadata["metrics"]["top1"] >= 0.9

    import tritonclient.http as httpclient

    layout = Layout("lsfb")
    version = storage.read_json(layout.dataset_latest)["dataset_version"]
    manifest = storage.read_json(layout.dataset(version, "_dataset.json"))
    test = next(iter(shards_of_test_split(storage, layout, manifest)))
    snapshot = storage.read_json("raw/lsfb/_latest.json")["snapshot"]
    clips = storage.read_parquet(f"raw/lsfb/{snapshot}/clips.parquet").set_index("id")
    settings = load_settings()
    env = {**clean_env(), "MLOPS_STORAGE_ROOT": str(settings.local_root)}
    predicted = []
    with model_server(
        settings.local_root.parent, env, "--use-case", "lsfb", "--environment", "dev"
    ) as address:
        client = httpclient.InferenceServerClient(url=address)
        for clip_id in test["id"][:8]:
            answer = client.infer("lsfb", clip_request(storage, clips, clip_id))
            predicted.append(int(answer.as_numpy("output-0")[0]))
    assert np.mean(np.asarray(predicted) == test["label"][:8]) >= 0.75


def test_a_process_keeps_the_backend_keras_was_imported_with():
    code = (
        "from mlops_assets.models.keras_backend import keras, use_backend\n"
        "keras('jax')\n"
        "try:\n"
        "    use_backend('torch')\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert done.stdout.startswith("KerasBackendError Keras is already running on jax"), (
        done.stdout + done.stderr[-2000:]
    )
    with pytest.raises(KerasBackendError, match="unknown Keras backend 'mxnet'"):
        use_backend("mxnet")


MIXED_ROUND_TRIP = """
import json, sys
import numpy as np
from mlops_assets.models.keras_sequence import KerasSequenceClassifier
from mlops_assets.core.split_data import SplitData

rng = np.random.default_rng(0)
y = rng.integers(0, 4, 500)
x = (rng.normal(size=(500, 8, 6)) * 0.3).astype("float32")
x[np.arange(500), :, y] += 1.0
x[:, 6:, :] = 0  # padding, masked

def split(a, b):
    return SplitData(name="s", classes=[0, 1, 2, 3], item_shape=[8, 6], rows=b - a,
                     _load=lambda key: (x[a:b], y[a:b]), _shards=["all"])

adapter = KerasSequenceClassifier()
params = {**adapter.default_params, "epochs": 4, "units": 16, "dense": 32,
          "batch_size": 32, "precision": "mixed_float16"}
model = adapter.fit(split(0, 400), split(400, 450), params, seed=0)
print(json.dumps({"dtype": model.layers[2].compute_dtype,
                  "predicted": adapter.predict(model, x[450:]).tolist(),
                  "labels": y[450:].tolist()}))
sys.stdout.flush()
open(sys.argv[1], "wb").write(adapter.dumps(model))
"""

SERVE_IT = """
import json, sys
import numpy as np
import keras
from mlops_assets.models.keras_sequence import KerasSequenceClassifier

rng = np.random.default_rng(0)
y = rng.integers(0, 4, 500)
x = (rng.normal(size=(500, 8, 6)) * 0.3).astype("float32")
x[np.arange(500), :, y] += 1.0
x[:, 6:, :] = 0
adapter = KerasSequenceClassifier()
model = adapter.loads(open(sys.argv[1], "rb").read())
print(json.dumps({"policy": keras.mixed_precision.global_policy().name,
                  "predicted": adapter.predict(model, x[450:]).tolist()}))
"""


def test_a_mixed_precision_model_predicts_the_same_classes_on_a_float32_server(tmp_path):
    """Trained under mixed_float16 (forced: this machine has no GPU), saved, then loaded in
    another process, as the CPU-only model server does, with the float32 policy."""
    import json

    artifact = str(tmp_path / "model.keras")
    runs = []
    for code in (MIXED_ROUND_TRIP, SERVE_IT):
        done = subprocess.run(
            [sys.executable, "-c", code, artifact],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    trained, served = runs
    assert trained["dtype"] == "float16" and served["policy"] == "float32"
    assert served["predicted"] == trained["predicted"]
    assert np.mean(np.equal(trained["predicted"], trained["labels"])) >= 0.9


DATA_PARALLEL = """
import json, os, sys
backend = sys.argv[1]
if backend == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import numpy as np
from mlops_assets.models.keras_sequence import KerasSequenceClassifier
from mlops_assets.core.split_data import SplitData

rng = np.random.default_rng(0)
y = rng.integers(0, 4, 512)
x = (rng.normal(size=(512, 8, 6)) * 0.3).astype("float32")
x[np.arange(512), :, y] += 1.0
train = SplitData(name="train", classes=[0, 1, 2, 3], item_shape=[8, 6], rows=512,
                  _load=lambda key: (x, y), _shards=["all"])
empty = SplitData(name="val", classes=[0, 1, 2, 3], item_shape=[8, 6], rows=0,
                  _load=None, _shards=[])
runs = {}
for replicas in (1, 2):
    adapter = KerasSequenceClassifier()
    adapter.keras_backend = backend
    # the same global batch (64) and learning rate either way: one replica of 64, or two of 32
    params = {**adapter.default_params, "epochs": 1, "units": 16, "dense": 32, "dropout": 0.0,
              "batch_size": 64 // replicas, "replicas": replicas, "scale_learning_rate": False}
    model = adapter.fit(train, empty, params, seed=0)
    spread = 1
    if backend == "jax":
        spread = len(model.weights[0].value.sharding.device_set)
    runs[replicas] = {"replicas": adapter.replicas, "variables_on": spread,
                      "loss": adapter.history["loss"][-1]}
print(json.dumps(runs))
"""


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_training_is_data_parallel_over_two_emulated_devices(backend):
    """Two CPU devices stand for two GPUs (an XLA flag for JAX, two logical devices for
    TensorFlow): the model trains on two replicas, and its loss after one epoch is that of
    one device on the same global batch, within float tolerance."""
    import json

    env = {**clean_env(), "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = subprocess.run(
        [sys.executable, "-c", DATA_PARALLEL, backend],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = {int(k): v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}
    assert runs[1]["replicas"] == 1 and runs[2]["replicas"] == 2
    if backend == "jax":
        assert runs[2]["variables_on"] == 2  # the weights are replicated on both devices
    assert runs[2]["loss"] == pytest.approx(runs[1]["loss"], rel=0.02)


def test_parameters_for_an_accelerator_apply_only_where_there_is_one(monkeypatch):
    from mlops_assets.core.split_data import SplitData
    from mlops_assets.models import keras_sequence

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4, 3)).astype("float32"), rng.integers(0, 2, 64)
    train = SplitData(
        name="t", classes=[0, 1], item_shape=[4, 3], rows=64, _load=lambda k: (x, y), _shards=["a"]
    )
    empty = SplitData(name="v", classes=[0, 1], item_shape=[4, 3], rows=0, _load=None, _shards=[])
    adapter = keras_sequence.KerasSequenceClassifier()
    params = {
        **adapter.default_params,
        "epochs": 1,
        "units": 4,
        "dense": 4,
        "precision": "float32",
        "on_accelerator": {"batch_size": 32, "learning_rate": 0.01},
    }
    adapter.fit(train, empty, params, seed=0)
    assert adapter.params_used["batch_size"] == 64 and adapter.params_used["learning_rate"] == 0.002
    monkeypatch.setattr(keras_sequence, "accelerators", lambda backend: ["gpu:0"])
    adapter.fit(train, empty, params, seed=0)
    assert adapter.params_used["batch_size"] == 32 and adapter.params_used["learning_rate"] == 0.01
