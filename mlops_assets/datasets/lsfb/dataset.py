"""The LSFB-ISOL kind: how its data is read back for training and serving (the data side;
the Dagster side is the component's, `component.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from mlops_assets.core.kind import DatasetKind
from mlops_assets.datasets.lsfb.config import (
    LANDMARK_COUNTS,
    LANDMARK_SETS,
    LSFB_ISOL_SOURCE,
    LSFB_POSE,
    LsfbData,
)
from mlops_assets.storage import Layout, ObjectStorage

if TYPE_CHECKING:
    import numpy as np

    from mlops_assets.core.split_data import SplitData

__all__ = [  # the constants, where they were before config.py
    "LANDMARK_COUNTS",
    "LANDMARK_SETS",
    "LSFB_ISOL_SOURCE",
    "LSFB_POSE",
    "LsfbDataset",
]


class LsfbDataset(DatasetKind, LsfbData):
    """LSFB-ISOL: where it is fetched from, what of it, and how clips become tensors."""

    kind: ClassVar[str] = "lsfb_isol"
    contract_kind: ClassVar[str] = LSFB_POSE

    def load_split(
        self, storage: ObjectStorage, layout: Layout, version: str, split: str
    ) -> SplitData:
        from mlops_assets.datasets.lsfb.shards import lsfb_split

        return lsfb_split(storage, layout, version, split)

    def request_contract(self, train: SplitData | None = None) -> dict[str, Any]:
        from mlops_assets.datasets.lsfb.contract import lsfb_contract

        return lsfb_contract(self)

    @staticmethod
    def to_model_input(contract: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
        from mlops_assets.datasets.lsfb.contract import clip_to_model_input

        return clip_to_model_input(contract, arrays)
