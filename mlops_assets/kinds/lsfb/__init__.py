"""The LSFB-ISOL kind: download, clip checks, shards and the DataOps stages of the
sign-language use case."""

from mlops_assets.kinds.lsfb.component import LsfbUseCase
from mlops_assets.kinds.lsfb.dataset import LsfbDataset

__all__ = ["LsfbDataset", "LsfbUseCase"]
