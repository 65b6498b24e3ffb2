"""The tabular kind's configuration models: the leaf every stage imports (the `dataset:`
block as data, the landing, split and observe blocks), so that no stage imports the kind
(`dataset.py`) or the component above it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import dagster as dg
from pydantic import Field, field_validator, model_validator

from mlops_assets.core.config import ScheduleConfig, cron

TABULAR = "tabular"
"""The request contract's kind: rows as they land, scaled by a constant."""


FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
"""The landing file types, by suffix."""


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


ColumnType = Literal["number", "integer", "boolean", "category", "string"]
NUMERIC_TYPES = ("number", "integer")


class ColumnSpec(dg.Model, dg.Resolvable):
    """One column of a table as it lands: its role, its type and what values it may hold.
    The row contract (clean), observe's checks, the model's preprocessing and the server's
    request contract are all built from these."""

    name: str = Field(min_length=1)
    role: Literal["feature", "label", "id", "ignore"] = Field(
        "feature",
        description="feature: the model takes it; label: what it predicts (one column); id or "
        "ignore: landed and kept out of the model (an id is checked to be present)",
    )
    type: ColumnType = Field(
        "number",
        description="number (float), integer, boolean (true/false, 1/0), category (a string "
        "or number taken as one of a set), string (a category by another name)",
    )
    nullable: bool = Field(
        False, description="a missing value is allowed (imputed for the model); else quarantined"
    )
    min: float | None = Field(None, description="numbers: the smallest allowed value")
    max: float | None = Field(None, description="numbers: the largest allowed value")
    categories: list[str] | None = Field(
        None,
        description="categories: the allowed values (a row with another is quarantined); "
        "without them the categories seen in training are the known ones",
    )

    @model_validator(mode="after")
    def _fits_the_type(self) -> ColumnSpec:
        numeric = self.type in NUMERIC_TYPES
        if not numeric and (self.min is not None or self.max is not None):
            raise ValueError(f"column {self.name!r}: min/max are for number or integer columns")
        if self.categories is not None and self.type not in ("category", "string"):
            raise ValueError(f"column {self.name!r}: categories are for category columns")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"column {self.name!r}: min {self.min:g} is above max {self.max:g}")
        if self.categories is not None and len(set(self.categories)) != len(self.categories):
            raise ValueError(f"column {self.name!r}: categories repeat")
        return self

    @property
    def categorical(self) -> bool:
        return self.type in ("category", "string")

    @property
    def numeric(self) -> bool:
        return self.type in NUMERIC_TYPES


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
        16384.0,
        gt=0,
        description="a landing file larger than this is quarantined unread, with the reason "
        "(a limit for safety: files are read in chunks, so any size fits in memory)",
    )
    memory_mb: float = Field(
        256.0,
        gt=0,
        description="what a DataOps step holds of one file at once: files are read in chunks "
        "of about this size (a Parquet row group is read whole)",
    )
    slice_mb: float = Field(
        256.0,
        gt=0,
        description="clean takes a backlog of landed files in slices of about this many "
        "megabytes (a file is never cut), one step each: one process under the multiprocess "
        "executor, one pod under the per-step one",
    )
    columns: list[ColumnSpec] | None = Field(
        None,
        description="the table's columns one by one (role, type, nullable, range, categories); "
        "instead of `features`, `label` and `scale`, which describe an all-numeric table",
    )
    missing_values: list[str] = Field(
        default_factory=lambda: ["", "NA", "N/A", "NaN", "nan", "null", "None"],
        description="with `columns`: the texts of a CSV cell that mean missing (blank always does)",
    )
    unseen_categories: Literal["refuse", "encode"] = Field(
        "refuse",
        description="a category the model never saw, at serving: refuse (400 naming column, "
        "row and value) or encode it as unknown (all-zero one-hot)",
    )

    @model_validator(mode="after")
    def _one_table(self) -> TabularData:
        if self.columns is None:
            return self
        names = [c.name for c in self.columns]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"columns repeat: {', '.join(repeated)}")
        labels = [c for c in self.columns if c.role == "label"]
        if len(labels) != 1:
            raise ValueError(
                f"columns: exactly one column has role: label (found {len(labels)}: "
                f"{', '.join(c.name for c in labels) or 'none'})"
            )
        if labels[0].nullable:
            raise ValueError(f"columns: the label {labels[0].name!r} cannot be nullable")
        features = [c for c in self.columns if c.role == "feature"]
        if not features:
            raise ValueError("columns: no column has role: feature")
        # the shorthand's fields follow the schema, so code that names the features and the
        # label reads the same either way
        self.features = FeaturesConfig(names=[c.name for c in features])
        self.label = LabelConfig(column=labels[0].name)
        return self

    @property
    def typed(self) -> bool:
        """Declared column by column (`columns:`): values keep their types to the model,
        whose saved pipeline preprocesses them; else all-numeric rows divided by `scale`."""
        return self.columns is not None

    @property
    def schema(self) -> list[ColumnSpec]:
        """Every landed column: `columns:` as written, or the shorthand's numeric features in
        `features.min..max` and its integer label in `label.min..max`."""
        if self.columns is not None:
            return list(self.columns)
        features = self.features
        return [
            *(
                ColumnSpec(name=name, type="number", min=features.min, max=features.max)
                for name in features.columns
            ),
            ColumnSpec(
                name=self.label.column,
                role="label",
                type="integer",
                min=self.label.min,
                max=self.label.max,
            ),
        ]

    @property
    def feature_specs(self) -> list[ColumnSpec]:
        return [c for c in self.schema if c.role == "feature"]

    @property
    def label_spec(self) -> ColumnSpec:
        return next(c for c in self.schema if c.role == "label")

    @property
    def continuous_label(self) -> bool:
        """A float label: a regression target, with no classes to count."""
        return self.label_spec.type == "number"

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
    def slice_bytes(self) -> int:
        return int(self.slice_mb * 1024 * 1024)

    @property
    def chunk_rows(self) -> int:
        """Rows per chunk: the memory setting over what a row costs while it is checked (its
        text, its typed values and their copies, about 400 bytes a cell)."""
        return max(1_000, int(self.memory_mb * 1024 * 1024 / (400 * len(self.column_names))))

    @property
    def column_names(self) -> list[str]:
        """The columns a landing file holds, in contract order."""
        if self.columns is not None:
            return [c.name for c in self.columns]
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

    @field_validator("reobserve_cron")
    @classmethod
    def _reobserve_cron_is_cron(cls, value: str) -> str:
        return cron(value)


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
