"""`type: mlops_assets.kinds.lsfb.LsfbUseCase`: a use case on LSFB-ISOL pose clips."""

from __future__ import annotations

from mlops_assets.components.use_case import UseCase
from mlops_assets.kinds.lsfb.dataset import LsfbDataset


class LsfbUseCase(UseCase):
    """LSFB-ISOL fetched from its source (or a mirror) with `lsfb_dataset.Downloader`,
    checked clip by clip, split by the corpus' signer-independent folds."""

    dataset: LsfbDataset = LsfbDataset()
