"""The tabular kind: how its data is read back for training and serving (the data side;
the Dagster side is the component's, `component.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from mlops_assets.core.kind import DatasetKind
from mlops_assets.datasets.tabular.config import (
    TABULAR,
    FeaturesConfig,
    LabelConfig,
    LandingConfig,
    ObserveConfig,
    SplitConfig,
    TabularData,
    TabularScheduleConfig,
)
from mlops_assets.storage import Layout, ObjectStorage

if TYPE_CHECKING:
    import numpy as np

    from mlops_assets.core.split_data import SplitData

__all__ = [  # the configuration models, where they were before config.py
    "FeaturesConfig",
    "LabelConfig",
    "LandingConfig",
    "ObserveConfig",
    "SplitConfig",
    "TabularDataset",
    "TabularScheduleConfig",
]


class TabularDataset(DatasetKind, TabularData):
    """Files (CSV, Parquet) dropped in a landing zone: numeric feature columns and an
    integer label, each with its allowed range (the row contract clean enforces)."""

    kind: ClassVar[str] = "tabular"
    contract_kind: ClassVar[str] = TABULAR

    def load_split(
        self, storage: ObjectStorage, layout: Layout, version: str, split: str
    ) -> SplitData:
        from mlops_assets.core.split_data import SplitData
        from mlops_assets.datasets.tabular.split import read_split_file, split_files

        columns, label = self.features.columns, self.label.column
        manifest = storage.read_json(layout.dataset(version, "manifest.json"))

        def load(key: str):
            frame = read_split_file(storage, key, split, [*columns, label])
            return frame[columns].to_numpy(dtype="float32"), frame[label].to_numpy(dtype="int64")

        return SplitData(
            name=split,
            classes=list(range(self.label.min, self.label.max + 1)),
            item_shape=[len(columns)],
            rows=int(manifest["rows"][split]),
            _load=load,
            _shards=split_files(storage, layout, version, split),
        )

    def request_contract(self) -> dict[str, Any]:
        from mlops_assets.datasets.tabular.contract import tabular_contract

        return tabular_contract(self)

    @staticmethod
    def to_model_input(contract: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
        from mlops_assets.datasets.tabular.contract import rows_to_model_input

        return rows_to_model_input(contract, arrays)
