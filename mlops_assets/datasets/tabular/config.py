"""The tabular kind's configuration models: the leaf every stage imports (the `dataset:`
block as data, the landing, split and observe blocks), so that no stage imports the kind
(`dataset.py`) or the component above it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import dagster as dg
from pydantic import Field, model_validator

from mlops_assets.core.config import ScheduleConfig

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


class TabularData(dg.Model, dg.Resolvable):
    """The `dataset:` block of a tabular use case as data: files (CSV, Parquet) dropped in a
    landing zone, numeric feature columns and an integer label, each with its allowed range
    (the row contract clean enforces). The stages take it; `TabularDataset` adds the kind."""

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


@dataclass(frozen=True)
class TabularBlocks:
    """What the tabular DataOps builders are told besides the use case's spec: the blocks
    only this kind has."""

    dataset: TabularData
    landing: str
    """The landing zone's key prefix."""
    observe: ObserveConfig
    split: SplitConfig
    reobserve_cron: str
