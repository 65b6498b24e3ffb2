"""Load the served model: by registry version, or by URI and sha256 (as the Helm chart
passes them). Nothing is loaded whose bytes do not match the expected sha256."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlops_assets.models import load_adapter


class ModelLoadError(RuntimeError):
    """The model cannot be served; the message says which file and why."""


@dataclass
class LoadedModel:
    name: str
    version: str
    metadata: dict[str, Any]
    adapter: Any
    model: Any

    @property
    def item_shape(self) -> list[int]:
        """One example's shape: [features] for digits, [frames, features] for LSFB."""
        return [int(d) for d in self.metadata["input"]["shape"][1:]]


def _read_uri(uri: str) -> tuple[bytes, bytes]:
    """The artifact and the metadata.json beside it, from s3://... or a local path."""
    if uri.startswith("s3://"):
        from mlops_assets.resources import build_storage
        from mlops_assets.settings import load_settings

        bucket, _, key = uri[len("s3://") :].partition("/")
        folder, _, name = key.rpartition("/")
        storage = build_storage(replace(load_settings(), storage_root=f"s3://{bucket}/{folder}"))
        return storage.read_bytes(name), storage.read_bytes("metadata.json")
    path = Path(uri.removeprefix("file://"))
    try:
        return path.read_bytes(), (path.parent / "metadata.json").read_bytes()
    except FileNotFoundError as error:
        raise ModelLoadError(f"cannot read {error.filename}") from None


def load_from_uri(uri: str, sha256: str, name: str = "", version: str = "") -> LoadedModel:
    try:
        data, meta_bytes = _read_uri(uri)
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError(f"cannot read {uri}: {error}") from error
    actual = hashlib.sha256(data).hexdigest()
    if not sha256:
        raise ModelLoadError(f"no sha256 given for {uri}: refusing to load an unverified model")
    if actual != sha256:
        raise ModelLoadError(f"{uri} has sha256 {actual}, expected {sha256}: refusing to serve it")
    metadata = json.loads(meta_bytes)
    return _build(
        metadata, data, name or metadata["use_case"], version or str(metadata["model_version"])
    )


def load_from_registry(storage, use_case: str, version: int | None = None) -> LoadedModel:
    from mlops_assets.registry import ModelRegistry

    registry = ModelRegistry(storage, use_case)
    if version is None:
        champion = registry.champion()
        if not champion:
            raise ModelLoadError(f"{use_case} has no champion in the registry")
        version = champion["version"]
    try:
        data, metadata = registry.artifact(version)
    except Exception as error:
        raise ModelLoadError(str(error)) from error
    return _build(metadata, data, use_case, str(version))


def _build(metadata: dict, data: bytes, name: str, version: str) -> LoadedModel:
    if "input" not in metadata:
        raise ModelLoadError(f"{name} v{version}: metadata has no input contract")
    adapter = load_adapter(metadata["adapter"])
    try:
        model = adapter.loads(data)
    except Exception as error:
        raise ModelLoadError(f"{name} v{version}: artifact cannot be loaded: {error}") from error
    return LoadedModel(name=name, version=version, metadata=metadata, adapter=adapter, model=model)
