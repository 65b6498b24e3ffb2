"""The tabular kind: how its data is read back for training and serving (the data side;
the Dagster side is the component's, `component.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from mlops_assets.core.classes import class_order
from mlops_assets.core.kind import DatasetKind
from mlops_assets.datasets.tabular.config import (
    TABULAR,
    ColumnSpec,
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


def feature_summary(spec: ColumnSpec) -> dict[str, Any]:
    """What a model's preprocessing needs of a feature column."""
    return {
        "name": spec.name,
        "type": spec.type,
        "nullable": spec.nullable,
        "categories": spec.categories,
    }


class TabularDataset(DatasetKind, TabularData):
    """Files (CSV, Parquet) dropped in a landing zone: numeric feature columns and an
    integer label, each with its allowed range (the row contract clean enforces)."""

    kind: ClassVar[str] = "tabular"
    contract_kind: ClassVar[str] = TABULAR

    def load_split(
        self, storage: ObjectStorage, layout: Layout, version: str, split: str
    ) -> SplitData:
        import pandas as pd

        from mlops_assets.core.split_data import SplitData
        from mlops_assets.datasets.tabular.clean_outputs import label_dtype
        from mlops_assets.datasets.tabular.split import read_split_file, split_files

        columns, label = self.features.columns, self.label.column
        manifest = storage.read_json(layout.dataset(version, "manifest.json"))
        typed = self.typed
        y_dtype = {"int64": "int64", "float64": "float64"}.get(label_dtype(self), object)

        def load(key: str):
            frame = read_split_file(storage, key, split, [*columns, label])
            if typed:  # the values as they landed: the model's pipeline preprocesses them
                x = frame[columns].astype(object).to_numpy(copy=True)
                x[pd.isna(x)] = None
                return x, frame[label].to_numpy(dtype=y_dtype)
            return frame[columns].to_numpy(dtype="float32"), frame[label].to_numpy(dtype="int64")

        return SplitData(
            name=split,
            classes=self.classes(manifest),
            item_shape=[len(columns)],
            rows=int(manifest["rows"][split]),
            _load=load,
            _shards=split_files(storage, layout, version, split),
            columns=[feature_summary(c) for c in self.feature_specs] if typed else None,
            task="regression" if self.continuous_label else "classification",
            _values=lambda key, names: read_split_file(storage, key, split, names),
        )

    def classes(self, manifest: dict[str, Any]) -> list[Any]:
        """The label's classes, in a fixed order the model stores: the declared range or
        categories, else every class the version holds (none for a regression target)."""
        spec = self.label_spec
        if spec.type == "number":
            return []
        if spec.type in ("integer", "boolean") and spec.min is not None and spec.max is not None:
            return list(range(int(spec.min), int(spec.max) + 1))
        if spec.categories is not None:
            return list(spec.categories)
        seen = {k for counts in manifest["class_balance"].values() for k in counts}
        names = sorted(seen, key=class_order)
        return [int(float(n)) for n in names] if spec.type != "category" else names

    def request_contract(self, train: SplitData | None = None) -> dict[str, Any]:
        from mlops_assets.datasets.tabular.contract import tabular_contract

        return tabular_contract(self, train)

    def task_problem(self, task: str) -> str:
        label = self.label_spec
        if task == "regression" and label.type not in ("number", "integer"):
            return f"task: regression needs a numeric label; {label.name!r} is " + (
                "an integer class label (declare `columns:` with its type: number)"
                if not self.typed
                else f"of type {label.type}"
            )
        if task == "classification" and label.type == "number":
            return (
                f"task: classification needs class labels; {label.name!r} is of type number "
                "(a float target: task: regression, or type integer or category)"
            )
        return ""

    @staticmethod
    def to_model_input(contract: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
        from mlops_assets.datasets.tabular.contract import rows_to_model_input

        return rows_to_model_input(contract, arrays)
