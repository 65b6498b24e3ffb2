"""What the gate may ask of production: the interface the production wing implements
(`monitoring/shadow.py`), so that validate (`mlops/`) reads logged, labelled requests
without importing the production side's modules. The component wires the two together
(`UseCaseSpec.production_samples`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from mlops_assets.storage import Layout, ObjectStorage

if TYPE_CHECKING:
    import numpy as np


@dataclass
class ProductionSample:
    x: np.ndarray
    y: np.ndarray
    skipped: dict[str, int] = field(default_factory=dict)
    """Labelled requests left out, by reason."""

    @property
    def rows(self) -> int:
        return len(self.y)


class ProductionSamples(Protocol):
    def __call__(
        self,
        storage: ObjectStorage,
        layout: Layout,
        environment: str,
        window_hours: int,
        item_shape: list[int],
        class_names: list[str] | None,
        now: datetime | None = None,
    ) -> ProductionSample:
        """An environment's labelled requests of the last `window_hours`, in the model's
        input space, with what was left out and why."""
