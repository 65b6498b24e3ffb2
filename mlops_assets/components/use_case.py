"""The use-case component: one `defs.yaml` becomes the asset graph of a use case.

A new project is a new YAML file; `dg list defs` and `dg check yaml` work on it.
"""

from __future__ import annotations

import re

import dagster as dg
from pydantic import field_validator

from mlops_assets.components.config import (
    DatasetConfig,
    ObserveConfig,
    SensorConfig,
    SplitConfig,
)


class UseCase(dg.Component, dg.Model, dg.Resolvable):
    """A use case: its data contract, its assets (`<name>/<step>`), checks, sensor and jobs."""

    name: str
    description: str = ""
    dataset: DatasetConfig = DatasetConfig()
    split: SplitConfig = SplitConfig()
    observe: ObserveConfig = ObserveConfig()
    sensor: SensorConfig = SensorConfig()

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError(f"use case name {value!r} must match [a-z][a-z0-9_]*")
        return value

    @property
    def landing(self) -> str:
        return (self.dataset.landing or f"landing/{self.name}").strip("/")

    @property
    def dataops_job_name(self) -> str:
        return f"{self.name}_dataops"

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        from mlops_assets.dataops.assets import build_dataops_assets
        from mlops_assets.dataops.sensor import build_landing_sensor

        assets = build_dataops_assets(self)
        dataops_job = dg.define_asset_job(
            self.dataops_job_name,
            selection=dg.AssetSelection.assets(*assets),
            description=f"DataOps of {self.name}: acquire, observe, clean, transform, split.",
            tags={"mlops/use_case": self.name, "mlops/stage": "dataops"},
        )
        sensor = build_landing_sensor(
            self.name,
            self.landing,
            dataops_job,
            self.sensor.interval_seconds,
            self.sensor.default_status == "running",
        )
        return dg.Definitions(assets=assets, jobs=[dataops_job], sensors=[sensor])
