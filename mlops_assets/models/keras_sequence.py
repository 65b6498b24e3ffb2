"""A Keras (TensorFlow backend) sequence classifier over fixed-length landmark frames.

Masked frames (zero padding) are skipped by a bidirectional GRU. Training reads
the split shard by shard through `tf.data`, stops early on the validation loss
and keeps the best weights. On a GPU it trains in mixed precision; on CPU in
float32. The artifact is the native `.keras` format, loaded with `safe_mode`.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np


def _keras():
    # TensorFlow reads these at import. Without an NVIDIA device its CUDA probe logs an
    # error ("failed call to cuInit") that means nothing here: keep only fatal messages then.
    gpu = os.path.exists("/dev/nvidiactl")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if gpu else "3")  # env: read by TF
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # env: Keras picks its backend so
    import keras
    import tensorflow as tf

    return keras, tf


class KerasSequenceClassifier:
    artifact_name = "model.keras"
    batchable = True  # fixed-length clips: a batch is one array
    default_params: dict[str, Any] = {
        "units": 64,
        "dense": 128,
        "dropout": 0.2,
        "learning_rate": 0.002,
        "batch_size": 64,
        "epochs": 40,
        "patience": 5,
        "shuffle_buffer": 4096,
    }

    def build(self, item_shape: list[int], classes: int, params: dict[str, Any]):
        keras, _ = _keras()
        inputs = keras.Input(shape=tuple(item_shape), name="frames")
        x = keras.layers.Masking(mask_value=0.0)(inputs)
        x = keras.layers.Dense(int(params["dense"]), activation="relu")(x)
        x = keras.layers.Bidirectional(keras.layers.GRU(int(params["units"])))(x)
        x = keras.layers.Dropout(float(params["dropout"]))(x)
        outputs = keras.layers.Dense(classes, activation="softmax", dtype="float32")(x)
        return keras.Model(inputs, outputs, name="lsfb_bigru")

    def _dataset(self, split, params: dict[str, Any], seed: int, shuffle: bool):
        _, tf = _keras()
        spec = (
            tf.TensorSpec((None, *split.item_shape), tf.float32),
            tf.TensorSpec((None,), tf.int64),
        )
        data = tf.data.Dataset.from_generator(split.chunks, output_signature=spec).unbatch()
        if shuffle:
            data = data.shuffle(int(params["shuffle_buffer"]), seed=seed)
        batches = -(-split.rows // int(params["batch_size"]))
        return (
            data.batch(int(params["batch_size"]))
            .apply(tf.data.experimental.assert_cardinality(batches))  # epochs have a known end
            .prefetch(tf.data.AUTOTUNE)
        )

    def fit(self, train, val, params: dict[str, Any], seed: int):
        keras, tf = _keras()
        keras.utils.set_random_seed(seed)
        gpu = bool(tf.config.list_physical_devices("GPU"))
        previous = keras.mixed_precision.global_policy().name
        keras.mixed_precision.set_global_policy("mixed_float16" if gpu else "float32")
        try:
            model = self.build(train.item_shape, len(train.classes), params)
        finally:
            keras.mixed_precision.set_global_policy(previous)
        model.compile(
            optimizer=keras.optimizers.Adam(float(params["learning_rate"])),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        callbacks = []
        validation = None
        if val.rows:
            validation = self._dataset(val, params, seed, shuffle=False)
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss",
                    patience=int(params["patience"]),
                    restore_best_weights=True,
                )
            )
        model.fit(
            self._dataset(train, params, seed, shuffle=True),
            validation_data=validation,
            epochs=int(params["epochs"]),
            callbacks=callbacks,
            shuffle=False,  # tf.data shuffles
            verbose=0,
        )
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
        keras, _ = _keras()
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, self.artifact_name)
            with open(path, "wb") as f:
                f.write(data)
            # safe_mode refuses lambda layers and other code hidden in the archive
            return keras.saving.load_model(path, safe_mode=True, compile=False)
