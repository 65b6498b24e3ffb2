"""A dataset version's train/val/test split, as the model adapters see it.

Tabular splits are small and come whole (`arrays`); sharded splits (LSFB) are
read one shard at a time (`chunks`), so training and evaluation stay within a
bounded memory on the full dataset. Every split offers both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class SplitData:
    """One split of one dataset version."""

    name: str
    classes: list[int]
    item_shape: list[int]
    """The shape of one example, as the model server takes it (rows excluded)."""
    rows: int
    _load: Any
    _shards: list[str]
    class_names: list[str] | None = None
    """What each class index means, where the data says (LSFB sign glosses)."""
    columns: list[dict[str, Any]] | None = None
    """A table declared column by column: each feature's name, type, nullable and known
    categories, in the order of x's columns (x is then an object array of the values as
    they landed, which the model's own pipeline preprocesses); None: x is numeric."""
    task: str = "classification"
    """classification (y holds class labels: `classes`) or regression (y is a float target)."""

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(x, y) per shard, in a stable order."""
        for shard in self._shards:
            yield self._load(shard)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        parts = list(self.chunks())
        if not parts:
            dtype = object if self.columns is not None else "float32"
            return np.zeros((0, *self.item_shape), dtype), np.zeros(0, "int64")
        return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])
