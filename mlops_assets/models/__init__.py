"""Model adapters: how a use case's model is fitted, stored safely and loaded."""

from mlops_assets.models.base import ModelAdapter, load_adapter

__all__ = ["ModelAdapter", "load_adapter"]
