"""Load the served model: by registry version, or by URI and sha256 (as the Helm chart
passes them). Nothing is loaded whose bytes, or whose metadata's bytes, do not match the
expected sha256, and the adapter is never the one stored metadata names (docs/architecture.md,
"Trust model")."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_assets.errors import MlopsError
from mlops_assets.models import (
    AdapterMismatchError,
    UnknownAdapterError,
    check_stored_adapter,
    load_adapter,
)
from mlops_assets.registry import ModelRegistry
from mlops_assets.resources import build_storage
from mlops_assets.settings import load_settings

METADATA = "metadata.json"


class ModelLoadError(MlopsError, RuntimeError):
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
        bucket, _, key = uri[len("s3://") :].partition("/")
        folder, _, name = key.rpartition("/")
        storage = build_storage(load_settings(), f"s3://{bucket}/{folder}")
        return storage.read_bytes(name), storage.read_bytes(METADATA)
    if not uri.startswith(("file://", "/")):  # a key under the local storage root
        settings = load_settings()
        # a key is relative to production's root, also on a branch deployment (whose keys
        # start with branches/<name>/)
        storage = build_storage(settings, settings.production_storage_root)
        folder = uri.rpartition("/")[0]
        try:
            return storage.read_bytes(uri), storage.read_bytes(f"{folder}/{METADATA}")
        except FileNotFoundError as error:
            raise ModelLoadError(f"cannot read {error}") from None
    path = Path(uri.removeprefix("file://"))
    try:
        return path.read_bytes(), (path.parent / METADATA).read_bytes()
    except FileNotFoundError as error:
        raise ModelLoadError(f"cannot read {error.filename}") from None


def load_deployed(model: dict[str, Any], name: str) -> LoadedModel:
    """The model a values file's `model:` section deploys, with every pin it holds (the
    adapter, both hashes, the estimator, the trusted types, the contract version)."""
    return load_from_uri(
        str(model["uri"]),
        str(model.get("sha256") or ""),
        adapter=str(model.get("adapter") or ""),
        metadata_sha256=str(model.get("metadataSha256") or ""),
        name=name,
        version=str(model.get("version") or ""),
        estimator=str(model.get("estimator") or ""),
        trusted_types=str(model.get("trustedTypes") or ""),
        contract_version=str(model.get("contractVersion") or ""),
    )


def load_from_uri(
    uri: str,
    sha256: str,
    *,
    adapter: str,
    metadata_sha256: str,
    name: str = "",
    version: str = "",
    estimator: str = "",
    trusted_types: str = "",
    contract_version: str = "",
) -> LoadedModel:
    """The model a values file deploys: `adapter` and both hashes come from the values file
    (reviewed in git), so bucket access alone can change neither the code that loads the
    model nor the contract it is served under."""
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
    meta_uri = _beside(uri, METADATA)
    if not adapter:
        raise ModelLoadError(
            f"no model adapter given for {uri} (model.adapter of the values file, or "
            "--adapter): the server never takes it from stored metadata"
        )
    if not metadata_sha256:
        raise ModelLoadError(
            f"no metadata sha256 given for {meta_uri} (model.metadataSha256 of the values "
            "file): refusing to load unverified metadata"
        )
    meta_actual = hashlib.sha256(meta_bytes).hexdigest()
    if meta_actual != metadata_sha256:
        raise ModelLoadError(
            f"{meta_uri} has sha256 {meta_actual}, expected {metadata_sha256}: refusing to serve it"
        )
    metadata = json.loads(meta_bytes)
    pins = Pins(estimator, trusted_types, contract_version)
    return _build(
        metadata,
        data,
        adapter,
        name or metadata["use_case"],
        version or str(metadata["model_version"]),
        where=meta_uri,
        pins=pins,
    )


def load_from_registry(
    storage, use_case: str, version: int | None = None, *, adapter: str, estimator: str = ""
) -> LoadedModel:
    """A registry version, loaded with `adapter` and `estimator` (the use case's YAML names
    them)."""
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
    where = storage.uri(registry.layout.model(version, METADATA))
    pins = Pins(estimator=estimator)
    return _build(metadata, data, adapter, use_case, str(version), where=where, pins=pins)


def _beside(uri: str, name: str) -> str:
    return f"{uri.rpartition('/')[0]}/{name}"


@dataclass(frozen=True)
class Pins:
    """What the values file pins besides the hashes (empty: the release predates them)."""

    estimator: str = ""
    trusted_types: str = ""
    contract_version: str = ""

    def check(self, metadata: dict, adapter: Any, where: str) -> None:
        stored = str(metadata.get("estimator") or "")
        if self.estimator != stored and (self.estimator or stored):
            raise ModelLoadError(
                f"{where} names the estimator {stored or 'none'!r}, the values file "
                f"{self.estimator or 'none'!r}: refusing to serve it"
            )
        if self.estimator and hasattr(adapter, "trust_digest"):
            here = adapter.trust_digest()
            if self.trusted_types and self.trusted_types != here:
                raise ModelLoadError(
                    f"the values file pins the trusted types {self.trusted_types}, this "
                    f"server's code allows {here}: refusing to serve (deploy the image the "
                    "release was made with)"
                )
        served = str(metadata.get("request", {}).get("version", ""))
        if self.contract_version and self.contract_version != served:
            raise ModelLoadError(
                f"{where} has request contract version {served}, the values file pins "
                f"{self.contract_version}: refusing to serve it"
            )


def _build(
    metadata: dict,
    data: bytes,
    adapter_name: str,
    name: str,
    version: str,
    *,
    where: str,
    pins: Pins | None = None,
) -> LoadedModel:
    if "input" not in metadata or "request" not in metadata:
        raise ModelLoadError(
            f"{name} v{version}: metadata has no request contract (released before models "
            "took rows as they land): train and release a new version"
        )
    try:
        check_stored_adapter(metadata.get("adapter"), adapter_name, where)
        adapter = load_adapter(adapter_name)
    except (AdapterMismatchError, UnknownAdapterError) as error:
        raise ModelLoadError(f"{name} v{version}: {error}") from None
    if pins is not None:
        if pins.estimator and hasattr(adapter, "estimator"):
            adapter.estimator = pins.estimator  # the values file's, never the metadata's
        pins.check(metadata, adapter, where)
    elif metadata.get("estimator") and hasattr(adapter, "estimator"):
        raise ModelLoadError(
            f"{name} v{version}: names an estimator; give the one to trust (--estimator, "
            "model.estimator of the values file): never the stored one"
        )
    try:
        model = adapter.loads(data)
    except Exception as error:
        raise ModelLoadError(f"{name} v{version}: artifact cannot be loaded: {error}") from error
    return LoadedModel(name=name, version=version, metadata=metadata, adapter=adapter, model=model)
