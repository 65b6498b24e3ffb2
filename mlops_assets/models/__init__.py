"""Model adapters: how a use case's model is fitted, stored safely and loaded."""

from mlops_assets.models.base import (
    AdapterMismatchError,
    ModelAdapter,
    UnknownAdapterError,
    adapter_name,
    adapters,
    check_stored_adapter,
    load_adapter,
)

__all__ = [
    "AdapterMismatchError",
    "ModelAdapter",
    "UnknownAdapterError",
    "adapter_name",
    "adapters",
    "check_stored_adapter",
    "load_adapter",
]
