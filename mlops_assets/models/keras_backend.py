"""Which Keras backend a process uses: TensorFlow (the default), JAX or PyTorch.

Keras 3 picks its backend once, at import, from `KERAS_BACKEND`; a `.keras` artifact is
the same on every backend. So the backend is a setting of the process (the use case's
`model.keras_backend` for training, the deployment's `KERAS_BACKEND` for the server), set
before Keras is first imported, and only that backend's framework is imported.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Literal

from mlops_assets.errors import MlopsError
from mlops_assets.runtime.native_stderr import native_lines_kept_back
from mlops_assets.settings import env

KerasBackend = Literal["tensorflow", "jax", "torch"]
BACKENDS: tuple[str, ...] = ("tensorflow", "jax", "torch")


class KerasBackendError(MlopsError, RuntimeError):
    """Keras is already imported with another backend in this process."""


def use_backend(name: str | None = None) -> str:
    """Make `name` (or `KERAS_BACKEND`, or tensorflow) this process's Keras backend; an
    error naming both when Keras was imported with another one already."""
    wanted = name or env("KERAS_BACKEND") or "tensorflow"
    if wanted not in BACKENDS:
        raise KerasBackendError(f"unknown Keras backend {wanted!r} (one of {', '.join(BACKENDS)})")
    if "keras" in sys.modules:
        current = sys.modules["keras"].config.backend()
        if current != wanted:
            raise KerasBackendError(
                f"Keras is already running on {current} in this process, and this model "
                f"asks for {wanted}: a process has one Keras backend (run it in its own "
                "process, as each run's step is by default)"
            )
        return wanted
    # TensorFlow reads these at import (Keras imports it on any backend where it is
    # installed, to seed it). Without an NVIDIA device its CUDA probe logs an error ("failed
    # call to cuInit") that means nothing here: keep only fatal messages then.
    gpu = os.path.exists("/dev/nvidiactl")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if gpu else "3")  # env: read by TF
    os.environ["KERAS_BACKEND"] = wanted  # env: Keras reads its backend at import
    return wanted


def keras(name: str | None = None) -> Any:
    use_backend(name)
    with native_lines_kept_back():  # Keras imports TensorFlow where it is installed
        import keras as module

    return module


def accelerators(backend: str) -> list[str]:
    """The accelerators the backend sees (GPUs; empty on CPU), without importing another
    framework."""
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform != "cpu"]
    if backend == "torch":
        import torch

        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    with native_lines_kept_back():
        import tensorflow as tf

    return [d.name for d in tf.config.list_physical_devices("GPU")]
