"""The model registry on the project's storage (a folder or S3)."""

from mlops_assets.registry.store import (
    ArtifactIntegrityError,
    ModelRegistry,
    ReleaseResult,
    UnknownVersionError,
)

__all__ = ["ArtifactIntegrityError", "ModelRegistry", "ReleaseResult", "UnknownVersionError"]
