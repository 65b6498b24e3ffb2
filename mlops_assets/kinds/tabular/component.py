"""`type: mlops_assets.kinds.tabular.TabularUseCase`: a use case on tabular files."""

from __future__ import annotations

from mlops_assets.components.use_case import UseCase
from mlops_assets.kinds.tabular.dataset import (
    ObserveConfig,
    SplitConfig,
    TabularDataset,
    TabularScheduleConfig,
)


class TabularUseCase(UseCase):
    """Files dropped in a landing zone (CSV, Parquet), checked row by row against the
    contract, split by a stable hash of each row; drift observed per feature."""

    dataset: TabularDataset = TabularDataset()
    split: SplitConfig = SplitConfig()
    observe: ObserveConfig = ObserveConfig()
    schedules: TabularScheduleConfig = TabularScheduleConfig()

    @property
    def landing(self) -> str:
        return (self.dataset.landing_config.prefix or f"landing/{self.name}").strip("/")
