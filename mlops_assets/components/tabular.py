"""`type: mlops_assets.components.tabular.TabularUseCase`: a use case on tabular files, and the
Dagster side of the tabular kind (its DataOps assets, the landing sensor, re-observation)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from mlops_assets.components.use_case import UseCase
from mlops_assets.core.spec import UseCaseSpec
from mlops_assets.datasets.tabular.assets import build_dataops_assets, reobserve_definitions
from mlops_assets.datasets.tabular.config import (
    ObserveConfig,
    SplitConfig,
    TabularBlocks,
    TabularScheduleConfig,
)
from mlops_assets.datasets.tabular.dataset import TabularDataset
from mlops_assets.datasets.tabular.sensor import build_landing_sensor


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

    @property
    def blocks(self) -> TabularBlocks:
        return TabularBlocks(
            self.dataset, self.landing, self.observe, self.split, self.schedules.reobserve_cron
        )

    def dataops_assets(self, spec: UseCaseSpec) -> list[dg.AssetsDefinition]:
        return build_dataops_assets(spec, self.blocks)

    def trigger_sensor(self, spec: UseCaseSpec, job: Any) -> dg.SensorDefinition:
        return build_landing_sensor(
            spec.name,
            self.landing,
            job,
            spec.sensor_interval_seconds,
            spec.running,
            self.dataset.landing_config,
        )

    def extra_definitions(self, spec: UseCaseSpec) -> tuple[list[Any], list[Any]]:
        """The full re-observation for drift of tabular features, and its schedule."""
        return reobserve_definitions(spec, self.blocks)

    def drift_threshold(self) -> float:
        """Observe's: the monitor judges production inputs as observe judges new batches."""
        return self.observe.drift_threshold

    def production_batch(self, labelled: Any) -> tuple[str, bytes, int]:
        """The labelled requests as raw rows in the landing files' columns: the logged model
        input times `scale` (the inverse of the transform), or a declared table's rows as
        they were sent (a CSV)."""
        from mlops_assets.datasets.tabular.contract import raw_rows  # pandas, at run time

        return self.landing, *raw_rows(self.dataset, labelled)
