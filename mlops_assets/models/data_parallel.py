"""Training on every accelerator of the pod: data parallel, one model replica per device.

JAX shards each batch over a device mesh (`keras.distribution.DataParallel`); TensorFlow
mirrors the variables (`tf.distribute.MirroredStrategy`). Each replica takes `batch_size`
examples, so the global batch is `batch_size` x replicas, and the learning rate is scaled
by the same factor unless `scale_learning_rate` is false (the linear scaling rule).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlops_assets.errors import MlopsError


class DataParallelError(MlopsError, RuntimeError):
    """Replicas asked for on a backend, or with devices, that cannot give them."""


def replica_devices(keras: Any, replicas: Any) -> list[str]:
    """The devices to replicate over: with `auto`, every accelerator when there are two or
    more (none: one device, no replication); with a number, that many of the backend's
    devices, CPUs included (how tests emulate a multi-device pod)."""
    backend = keras.config.backend()
    if replicas in (None, 1, "1"):
        return []
    if replicas == "auto":
        found = _devices(keras, backend, accelerators_only=True)
        return found if len(found) > 1 else []
    wanted = int(replicas)
    found = _devices(keras, backend, accelerators_only=False)
    if len(found) < wanted:
        raise DataParallelError(
            f"{wanted} replicas asked for, but the {backend} backend sees {len(found)} "
            f"device(s): {', '.join(found) or 'none'}"
        )
    return found[:wanted]


def _devices(keras: Any, backend: str, accelerators_only: bool) -> list[str]:
    if backend == "jax":
        gpus = keras.distribution.list_devices("gpu") if _has_gpu_jax() else []
        return gpus if gpus or accelerators_only else keras.distribution.list_devices("cpu")
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        return (
            gpus
            if gpus or accelerators_only
            else [d.name for d in tf.config.list_logical_devices("CPU")]
        )
    return []  # torch: replication is not offered here (one device)


def _has_gpu_jax() -> bool:
    import jax

    return any(d.platform == "gpu" for d in jax.devices())


@contextmanager
def replicated(keras: Any, devices: list[str]) -> Iterator[int]:
    """Build, compile and fit the model inside this block; yields the number of replicas."""
    if len(devices) < 2:
        yield 1
        return
    backend = keras.config.backend()
    if backend == "jax":
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        try:
            yield len(devices)
        finally:
            keras.distribution.set_distribution(None)
    elif backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(devices=devices)
        with strategy.scope():
            yield strategy.num_replicas_in_sync
    else:
        raise DataParallelError(f"data-parallel training is not offered on {backend}")
