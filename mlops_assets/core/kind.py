"""The interface a dataset kind implements: everything that differs between tabular
files in a landing zone, LSFB-ISOL pose clips, or a kind a plug-in adds.

A kind is a Pydantic model (the `dataset:` block of a use case's `defs.yaml`) with these
methods: the data side only (reading splits back, the request contract, the model input).
Its Dagster side (DataOps assets, trigger sensor, extra jobs) is the methods of its
component type (`UseCase` subclass), which sits on top. The MLOps half only ever calls a
kind through the spec's `dataset`, so `mlops/` never imports a kind; the kind registry
(`mlops_assets.datasets`) is the one place that maps a kind's name to its code. See
docs/architecture.md, "Adding a kind".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from mlops_assets.storage import Layout, ObjectStorage

if TYPE_CHECKING:
    import numpy as np

    from mlops_assets.core.split_data import SplitData


class DatasetKind(ABC):
    """A kind of data: how it is acquired, prepared, split, and sent to a model."""

    kind: ClassVar[str]
    """The kind's name in the registry (and in the Kubeflow pipeline's arguments)."""
    contract_kind: ClassVar[str]
    """The `kind` of the request contract it writes into a model's metadata; the model
    server finds the kind's `to_model_input` by it."""

    # --- the data side: what training, validation and the model server need
    @abstractmethod
    def load_split(
        self, storage: ObjectStorage, layout: Layout, version: str, split: str
    ) -> SplitData:
        """One split (train, val, test) of a dataset version the split step wrote."""

    @abstractmethod
    def request_contract(self, train: SplitData | None = None) -> dict[str, Any]:
        """What the model server accepts (written into the model's metadata): the inputs
        as the data lands, and the parameters of the transform to the model's input
        (`train`: the split the model was fitted on, for what only it tells, such as the
        categories it saw)."""

    def task_problem(self, task: str) -> str:
        """Why this dataset cannot serve `task` ('' when it can): by default, class labels
        only."""
        if task != "classification":
            return f"the {self.kind} kind has class labels: task {task!r} is not supported"
        return ""

    @staticmethod
    @abstractmethod
    def to_model_input(contract: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
        """The model's input from a request's (shape-checked) arrays, by the stored
        contract: the same functions the transform step applies."""
