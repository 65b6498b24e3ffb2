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
    _values: Any = None
    """Optional: (shard, column names) -> those columns of the shard as stored, for what
    needs a few columns and not the model's input (the categories training saw)."""

    def distinct(self, names: list[str]) -> dict[str, set[Any]]:
        """The distinct non-missing values of these columns over the split."""
        found: dict[str, set[Any]] = {name: set() for name in names}
        if not names:
            return found
        if self._values is None:  # no column reader: through the model's input
            index = {c["name"]: i for i, c in enumerate(self.columns or [])}
            for x, _ in self.chunks():
                for name in names:
                    found[name].update(v for v in x[:, index[name]] if v is not None)
            return found
        for shard in self._shards:
            frame = self._values(shard, names)
            for name in names:
                found[name].update(frame[name].dropna().unique().tolist())
        return found

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
