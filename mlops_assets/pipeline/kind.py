"""The interface a dataset kind implements: everything that differs between tabular
files in a landing zone, LSFB-ISOL pose clips, or a kind a plug-in adds.

A kind is a Pydantic model (the `dataset:` block of a use case's `defs.yaml`) with these
methods. The MLOps half only ever calls them through the use case's `dataset` object, so
`mlops/` never imports a kind; the kind registry (`mlops_assets.kinds`) is the one place
that maps a kind's name to its code. See docs/architecture.md, "Adding a kind".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import dagster as dg
    import numpy as np
    import pandas as pd

    from mlops_assets.components.use_case import UseCase
    from mlops_assets.pipeline.split_data import SplitData
    from mlops_assets.storage import Layout, ObjectStorage


class DatasetKind(ABC):
    """A kind of data: how it is acquired, prepared, split, and sent to a model."""

    kind: ClassVar[str]
    """The kind's name in the registry (and in the Kubeflow pipeline's arguments)."""
    contract_kind: ClassVar[str]
    """The `kind` of the request contract it writes into a model's metadata; the model
    server finds the kind's `to_model_input` by it."""

    # --- the Dagster side: the DataOps half of a use case
    @abstractmethod
    def build_dataops(self, use_case: UseCase) -> list[dg.AssetsDefinition]:
        """The five assets `<name>/acquire..split`, with their checks."""

    @abstractmethod
    def build_trigger_sensor(
        self, use_case: UseCase, job: Any, interval_seconds: int, running: bool
    ) -> dg.SensorDefinition:
        """The sensor that starts the DataOps job when new data arrives."""

    def extra_definitions(self, use_case: UseCase, running: bool) -> tuple[list[Any], list[Any]]:
        """Jobs and schedules of this kind beyond the use case's own (none by default);
        `running` says whether what starts runs by itself may start so."""
        return [], []

    # --- the production side: what the monitor needs of a kind
    def drift_threshold(self, use_case: UseCase) -> float:
        """PSI at which the monitor counts an input feature as drifted."""
        return 0.2

    def production_batch(
        self, use_case: UseCase, labelled: pd.DataFrame
    ) -> tuple[str, bytes, int] | None:
        """Labelled production requests (the inference log's columns, `inputs` in the
        model's input space, and `label`) as a landing file of this kind: (landing prefix,
        content, rows). None (the default): the kind cannot take them, and retraining
        runs DataOps on its source's newest data."""
        return None

    # --- the data side: what training, validation and the model server need
    @abstractmethod
    def load_split(
        self, storage: ObjectStorage, layout: Layout, version: str, split: str
    ) -> SplitData:
        """One split (train, val, test) of a dataset version the split step wrote."""

    @abstractmethod
    def request_contract(self) -> dict[str, Any]:
        """What the model server accepts (written into the model's metadata): the inputs
        as the data lands, and the parameters of the transform to the model's input."""

    @staticmethod
    @abstractmethod
    def to_model_input(contract: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
        """The model's input from a request's (shape-checked) arrays, by the stored
        contract: the same functions the transform step applies."""
