"""The LSFB-ISOL kind: download, clip checks, shards and the DataOps stages of the
sign-language use case.

Its component type (the Dagster side) is `mlops_assets.components.lsfb.LsfbUseCase`.
"""

from mlops_assets.datasets.lsfb.dataset import LsfbDataset

__all__ = ["LsfbDataset"]
