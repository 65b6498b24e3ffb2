"""The use-case component: one `defs.yaml` becomes the asset graph of a use case.

A new project is a new YAML file; `dg list defs` and `dg check yaml` work on it.
"""

from __future__ import annotations

import re

import dagster as dg
from pydantic import field_validator

from mlops_assets.components.config import (
    DatasetConfig,
    DeployConfig,
    GateConfig,
    ModelConfig,
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
    training: ModelConfig = ModelConfig()
    gate: GateConfig = GateConfig()
    deploy: DeployConfig = DeployConfig()

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

    @property
    def mlops_job_name(self) -> str:
        return f"{self.name}_mlops"

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        from mlops_assets.dataops.assets import build_dataops_assets, step_key
        from mlops_assets.dataops.sensor import build_landing_sensor
        from mlops_assets.mlops.assets import build_mlops_assets
        from mlops_assets.mlops.sensor import build_new_dataset_sensor

        assets = build_dataops_assets(self)
        split_key = step_key(self.name, "split")
        mlops_assets = build_mlops_assets(self, split_key)
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
        mlops_job = dg.define_asset_job(
            self.mlops_job_name,
            selection=dg.AssetSelection.assets(*mlops_assets),
            description=f"MLOps of {self.name}: train, validate (the gate), release, deploy.",
            tags={"mlops/use_case": self.name, "mlops/stage": "mlops"},
        )
        dataset_sensor = build_new_dataset_sensor(
            self.name, split_key, mlops_job, self.sensor.default_status == "running"
        )
        return dg.Definitions(
            assets=[*assets, *mlops_assets],
            jobs=[dataops_job, mlops_job],
            sensors=[sensor, dataset_sensor],
        )
