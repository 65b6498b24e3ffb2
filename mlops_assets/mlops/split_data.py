"""A dataset version's train/val/test split, as the model adapters see it.

Tabular splits are small and come whole (`arrays`); sharded splits (LSFB) are
read one shard at a time (`chunks`), so training and evaluation stay within a
bounded memory on the full dataset. Every split offers both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_assets.storage import Layout, ObjectStorage

if TYPE_CHECKING:
    from mlops_assets.components.config import DatasetConfig


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


def load_split(
    storage: ObjectStorage, layout: Layout, version: str, split: str, dataset: DatasetConfig
) -> SplitData:
    if dataset.kind == "lsfb_isol":
        from mlops_assets.lsfb.shards import lsfb_split

        return lsfb_split(storage, layout, version, split)
    key = layout.dataset(version, f"{split}.parquet")
    columns = dataset.features.columns

    def load(shard: str) -> tuple[np.ndarray, np.ndarray]:
        frame = storage.read_parquet(shard)
        return (
            frame[columns].to_numpy(dtype="float32"),
            frame[dataset.label.column].to_numpy(dtype="int64"),
        )

    x, y = load(key)
    return SplitData(
        name=split,
        classes=list(range(dataset.label.min, dataset.label.max + 1)),
        item_shape=[len(columns)],
        rows=len(y),
        _load=lambda _: (x, y),
        _shards=[key],
    )


def predict_split(
    adapter: Any, model: Any, split: SplitData
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The true labels, the predicted classes and, where the adapter gives them, class
    scores (for top-k metrics), in one pass over the split's shards."""
    labels, predicted, scores = [], [], []
    has_scores = hasattr(adapter, "predict_scores")
    for x, y in split.chunks():
        labels.append(y)
        if has_scores:
            s = adapter.predict_scores(model, x)
            scores.append(s)
            predicted.append(np.argmax(s, axis=1))
        else:
            predicted.append(np.asarray(adapter.predict(model, x)))
    if not predicted:
        return np.zeros(0, "int64"), np.zeros(0, "int64"), None
    return (
        np.concatenate(labels),
        np.concatenate(predicted),
        np.concatenate(scores) if has_scores else None,
    )
