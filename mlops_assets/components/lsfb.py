"""`type: mlops_assets.components.lsfb.LsfbUseCase`: a use case on LSFB-ISOL pose clips, and
the Dagster side of the LSFB kind (its DataOps assets and the source sensor)."""

from __future__ import annotations

from typing import Any, ClassVar

import dagster as dg

from mlops_assets.components.use_case import UseCase
from mlops_assets.core.spec import UseCaseSpec
from mlops_assets.datasets.lsfb.assets import build_lsfb_dataops_assets
from mlops_assets.datasets.lsfb.dataset import LsfbDataset
from mlops_assets.datasets.lsfb.sensor import build_source_sensor


class LsfbUseCase(UseCase):
    """LSFB-ISOL fetched from its source (or a mirror) with `lsfb_dataset.Downloader`,
    checked clip by clip, split by the corpus' signer-independent folds."""

    dataset: LsfbDataset = LsfbDataset()
    default_adapter: ClassVar[str] = "keras_sequence"

    def dataops_assets(self, spec: UseCaseSpec) -> list[dg.AssetsDefinition]:
        return build_lsfb_dataops_assets(spec, self.dataset)

    def trigger_sensor(self, spec: UseCaseSpec, job: Any) -> dg.SensorDefinition:
        """Polls the source's instances.csv: a new release of the corpus starts DataOps."""
        return build_source_sensor(
            spec.name, self.dataset, job, spec.sensor_interval_seconds, spec.running
        )
