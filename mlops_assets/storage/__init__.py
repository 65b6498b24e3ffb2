"""Storage: one interface, a local-folder and an S3 implementation."""

from mlops_assets.storage.base import ObjectInfo, ObjectStorage
from mlops_assets.storage.keys import Layout, UnsafeKeyError, relative_name, safe_key

__all__ = ["Layout", "ObjectInfo", "ObjectStorage", "UnsafeKeyError", "relative_name", "safe_key"]
