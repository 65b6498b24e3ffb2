"""A Keras sequence classifier over fixed-length landmark frames, on any Keras backend.

Masked frames (zero padding) are skipped by a bidirectional GRU. Training reads
ready batches from the split (`core/batches.py`: numpy, no tf.data), stops
early on the validation loss and keeps the best weights. On a GPU it trains in
mixed precision; on CPU in float32. The backend is the use case's
`model.keras_backend` (TensorFlow by default); the artifact is the native `.keras`
format, the same on every backend, loaded with `safe_mode`.
"""

from __future__ import annotations

import os
import tempfile
from time import perf_counter
from typing import Any

import numpy as np

from mlops_assets.core.batches import Batches
from mlops_assets.models.data_parallel import replica_devices, replicated
from mlops_assets.models.keras_backend import accelerators
from mlops_assets.models.keras_backend import keras as _keras


class KerasSequenceClassifier:
    artifact_name = "model.keras"
    batchable = True  # fixed-length clips: a batch is one array
    keras_backend: str | None = None
    """Set from the use case's `model.keras_backend`; None: `KERAS_BACKEND`, or tensorflow."""
    replicas: int = 1
    """How many replicas the last `fit` trained on."""
    epoch_seconds: list[float] | None = None
    """Wall time of each epoch of the last `fit`, and the share of it spent waiting for input
    (`input_wait_share`): what a GPU benchmark reports."""
    input_wait_share: float | None = None
    params_used: dict[str, Any] | None = None
    """The parameters the last `fit` trained with (`on_accelerator` applied where it was)."""
    default_params: dict[str, Any] = {
        "units": 64,
        "dense": 128,
        "dropout": 0.2,
        "learning_rate": 0.002,
        "batch_size": 64,
        "epochs": 40,
        "patience": 5,
        "shuffle_buffer": 4096,
        "in_memory_mb": 2048,
        "precision": "auto",  # mixed_float16 on an accelerator, else float32; or either
        "replicas": "auto",  # every accelerator when there are several; or a number
        "scale_learning_rate": True,  # by the number of replicas (the global batch grows)
        "on_accelerator": {},  # parameters that replace these on a GPU, e.g. batch_size 1024
    }

    def build(self, item_shape: list[int], classes: int, params: dict[str, Any]):
        keras = _keras(self.keras_backend)
        inputs = keras.Input(shape=tuple(item_shape), name="frames")
        x = keras.layers.Masking(mask_value=0.0)(inputs)
        x = keras.layers.Dense(int(params["dense"]), activation="relu")(x)
        x = keras.layers.Bidirectional(keras.layers.GRU(int(params["units"])))(x)
        x = keras.layers.Dropout(float(params["dropout"]))(x)
        outputs = keras.layers.Dense(classes, activation="softmax", dtype="float32")(x)
        return keras.Model(inputs, outputs, name="lsfb_bigru")

    def batches(
        self, split, params: dict[str, Any], seed: int, shuffle: bool, replicas: int = 1
    ) -> Batches:
        return Batches(
            split,
            batch_size=int(params["batch_size"]) * replicas,
            seed=seed,
            shuffle=shuffle,
            in_memory_mb=float(params.get("in_memory_mb", 2048)),
            shuffle_buffer=int(params["shuffle_buffer"]),
        )

    def fit(self, train, val, params: dict[str, Any], seed: int):
        keras = _keras(self.keras_backend)
        keras.utils.set_random_seed(seed)
        gpu = bool(accelerators(keras.config.backend()))
        if gpu and isinstance(params.get("on_accelerator"), dict):
            params = {**params, **params["on_accelerator"]}  # e.g. a larger batch and rate
        self.params_used = params
        precision = str(params.get("precision", "auto"))
        if precision == "auto":
            precision = "mixed_float16" if gpu else "float32"
        devices = replica_devices(keras, params.get("replicas", "auto"))
        with replicated(keras, devices) as replicas:
            model = self._fit(keras, train, val, params, seed, precision, replicas)
        self.replicas = replicas
        return model

    def _fit(self, keras, train, val, params, seed, precision, replicas):
        previous = keras.mixed_precision.global_policy().name
        keras.mixed_precision.set_global_policy(precision)
        try:
            model = self.build(train.item_shape, len(train.classes), params)
        finally:
            keras.mixed_precision.set_global_policy(previous)
        rate = float(params["learning_rate"])
        if params.get("scale_learning_rate", True):
            rate *= replicas
        model.compile(
            optimizer=keras.optimizers.Adam(rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        callbacks = []
        validation: dict[str, Any] = {}
        if val.rows:
            batches = self.batches(val, params, seed, shuffle=False, replicas=replicas)
            validation = {"validation_data": batches.forever(), "validation_steps": len(batches)}
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss",
                    patience=int(params["patience"]),
                    restore_best_weights=True,
                )
            )
        batches = self.batches(train, params, seed, shuffle=True, replicas=replicas)
        self.epoch_seconds = []
        callbacks.append(_EpochTimes(keras, self.epoch_seconds))
        self.history = model.fit(
            batches.forever(),
            steps_per_epoch=len(batches),
            epochs=int(params["epochs"]),
            callbacks=callbacks,
            shuffle=False,  # the batches are shuffled already
            verbose=0,
            **validation,
        ).history
        self.input_wait_share = batches.waited / max(sum(self.epoch_seconds), 1e-9)
        return model

    def predict_scores(self, model, x) -> np.ndarray:
        x = np.asarray(x, dtype="float32")
        if len(x) <= 256:  # a request: no tf.data machinery around one small batch
            return np.asarray(model(x, training=False), dtype="float32")
        return np.asarray(model.predict(x, batch_size=256, verbose=0), dtype="float32")

    def predict(self, model, x) -> np.ndarray:
        return np.argmax(self.predict_scores(model, x), axis=1).astype("int64")

    def dumps(self, model) -> bytes:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, self.artifact_name)
            model.save(path)
            with open(path, "rb") as f:
                return f.read()

    def loads(self, data: bytes):
        keras = _keras(self.keras_backend)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, self.artifact_name)
            with open(path, "wb") as f:
                f.write(data)
            # safe_mode refuses lambda layers and other code hidden in the archive
            return keras.saving.load_model(path, safe_mode=True, compile=False)


def _EpochTimes(keras: Any, into: list[float]) -> Any:  # noqa: N802 (a class, made late)
    """A callback recording each epoch's wall time (Keras is imported late, on its backend)."""

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.began = perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            into.append(perf_counter() - self.began)

    return EpochTimes()
