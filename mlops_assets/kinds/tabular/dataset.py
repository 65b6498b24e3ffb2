"""The tabular kind's `dataset:` block: a landing zone, the row contract, the transform."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import dagster as dg
from pydantic import Field, model_validator

from mlops_assets.components.config import ScheduleConfig
from mlops_assets.pipeline.kind import DatasetKind

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlops_assets.kinds.tabular.component import TabularUseCase
    from mlops_assets.pipeline.split_data import SplitData
    from mlops_assets.storage import Layout, ObjectStorage

TABULAR = "tabular"
"""The request contract's kind: rows as they land, scaled by a constant."""


class FeaturesConfig(dg.Model, dg.Resolvable):
    """Numeric feature columns with an allowed range: named one by one (`names`), or
    `template.format(i=0..count-1)` for many alike (digits' pixel_0..pixel_63)."""

    names: list[str] = Field(
        default_factory=list, description="the feature columns, in order; overrides template"
    )
    template: str = "pixel_{i}"
    count: int = Field(64, gt=0)
    min: float = 0
    max: float = 16

    @model_validator(mode="after")
    def _distinct(self) -> FeaturesConfig:
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"feature names repeat: {self.names}")
        return self

    @property
    def columns(self) -> list[str]:
        if self.names:
            return list(self.names)
        return [self.template.format(i=i) for i in range(self.count)]


class LandingConfig(dg.Model, dg.Resolvable):
    """Where files land, and how the sensor and acquire find the new ones."""

    prefix: str | None = Field(None, description="key prefix in storage; default landing/<name>")
    discovery: Literal["listing", "lexical", "notifications"] = Field(
        "listing",
        description=(
            "listing: list the zone every tick (any names; grows with the zone); lexical: "
            "names only grow (batch-000123.csv, 2026/11/28/...), list after the last one; "
            "notifications: read S3 event notifications from an SQS queue"
        ),
    )
    queue_url: str = Field(
        "", description="notifications: the SQS queue the bucket sends ObjectCreated events to"
    )
    reconcile_hours: float = Field(
        24.0,
        ge=0,
        description="notifications: list the zone this often to catch what the queue missed; "
        "0 turns it off",
    )


class LabelConfig(dg.Model, dg.Resolvable):
    """An integer class label in `min..max`."""

    column: str = "label"
    min: int = 0
    max: int = 9


class TabularDataset(DatasetKind, dg.Model, dg.Resolvable):
    """Files (CSV, Parquet) dropped in a landing zone: numeric feature columns and an
    integer label, each with its allowed range (the row contract clean enforces)."""

    kind: ClassVar[str] = "tabular"
    contract_kind: ClassVar[str] = TABULAR

    landing: str | LandingConfig | None = Field(
        None,
        description="The landing zone: its key prefix in storage (default landing/<name>), "
        "or a mapping with `prefix` and `discovery`.",
    )
    features: FeaturesConfig = FeaturesConfig()
    label: LabelConfig = LabelConfig()
    scale: float = Field(16.0, gt=0, description="transform divides features by this constant")
    reference_batches: int = Field(
        1, ge=1, description="the first N ingested batches are the drift reference"
    )
    max_file_mb: float = Field(
        512.0,
        gt=0,
        description="a landing file larger than this is quarantined unread, with the reason",
    )

    @property
    def landing_config(self) -> LandingConfig:
        if isinstance(self.landing, LandingConfig):
            return self.landing
        return LandingConfig(prefix=self.landing)

    @property
    def discovery(self) -> str:
        return self.landing_config.discovery

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def columns(self) -> list[str]:
        return [*self.features.columns, self.label.column]

    def build_dataops(self, use_case: TabularUseCase) -> list[dg.AssetsDefinition]:
        from mlops_assets.kinds.tabular.assets import build_dataops_assets

        return build_dataops_assets(use_case)

    def build_trigger_sensor(
        self, use_case: TabularUseCase, job: Any, interval_seconds: int, running: bool
    ) -> dg.SensorDefinition:
        from mlops_assets.kinds.tabular.sensor import build_landing_sensor

        return build_landing_sensor(
            use_case.name, use_case.landing, job, interval_seconds, running, self.landing_config
        )

    def extra_definitions(
        self, use_case: TabularUseCase, running: bool
    ) -> tuple[list[Any], list[Any]]:
        """The full re-observation for drift of tabular features, and its schedule."""
        from mlops_assets.kinds.tabular.assets import reobserve_definitions

        return reobserve_definitions(use_case, running)

    def drift_threshold(self, use_case: TabularUseCase) -> float:
        """Observe's: the monitor judges production inputs as observe judges new batches."""
        return use_case.observe.drift_threshold

    def production_batch(
        self, use_case: TabularUseCase, labelled: pd.DataFrame
    ) -> tuple[str, bytes, int]:
        """The labelled requests as raw rows (the logged model input times `scale`, the
        inverse of the transform) in the landing files' columns."""
        from mlops_assets.kinds.tabular.contract import raw_rows

        return use_case.landing, *raw_rows(self, labelled)

    def load_split(
        self, storage: ObjectStorage, layout: Layout, version: str, split: str
    ) -> SplitData:
        from mlops_assets.kinds.tabular.split import read_split_file, split_files
        from mlops_assets.pipeline.split_data import SplitData

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
        from mlops_assets.kinds.tabular.contract import tabular_contract

        return tabular_contract(self)

    @staticmethod
    def to_model_input(contract: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
        from mlops_assets.kinds.tabular.contract import rows_to_model_input

        return rows_to_model_input(contract, arrays)


class SplitConfig(dg.Model, dg.Resolvable):
    """Fractions of the stable hash split; they must add up to 1."""

    train: float = Field(0.70, gt=0)
    val: float = Field(0.15, ge=0)
    test: float = Field(0.15, gt=0)

    @model_validator(mode="after")
    def _adds_up(self) -> SplitConfig:
        if abs(self.train + self.val + self.test - 1.0) > 1e-9:
            raise ValueError(
                f"split fractions add up to {self.train + self.val + self.test}, not 1"
            )
        return self


class ObserveConfig(dg.Model, dg.Resolvable):
    drift_threshold: float = Field(
        0.2, gt=0, description="PSI above which a feature counts as drifted (0.2 is the usual cut)"
    )
    drift_bins: int = Field(16, ge=2)


class TabularScheduleConfig(ScheduleConfig):
    reobserve_cron: str = Field(
        "0 6 * * *", description="cron of a full re-observation of the data for drift"
    )
