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

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(x, y) per shard, in a stable order."""
        for shard in self._shards:
            yield self._load(shard)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        parts = list(self.chunks())
        if not parts:
            return np.zeros((0, *self.item_shape), "float32"), np.zeros(0, "int64")
        return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])
