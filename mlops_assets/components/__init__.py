"""Custom Dagster components of this project."""

from mlops_assets.components.use_case import UseCase

__all__ = ["UseCase"]
