"""Shards: a few hundred clips per `.npz` object, so no stage holds a whole split in memory.

`.npz` is read with `allow_pickle=False`: a shard holds arrays, never objects.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

import numpy as np

from mlops_assets.core.split_data import SplitData
from mlops_assets.storage import Layout, ObjectStorage, safe_key

DATASET_MANIFEST = "_dataset.json"


def dumps(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def loads(data: bytes, name: str) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except Exception as error:
        raise ValueError(f"{name}: not a readable shard ({error})") from None


def stage_key(layout: Layout, stage: str, run: str, name: str) -> str:
    return safe_key("staged", layout.use_case, stage, run, name)


class ShardWriter:
    """Buffers rows and writes a shard every `size` rows; remembers keys and hashes."""

    def __init__(self, storage: ObjectStorage, prefix: str, size: int) -> None:
        self.storage, self.prefix, self.size = storage, prefix, size
        self.buffer: dict[str, list] = {}
        self.pending = 0
        self.shards: list[dict] = []

    def add(self, **row) -> None:
        for k, v in row.items():
            self.buffer.setdefault(k, []).append(v)
        self.pending += 1
        if self.pending >= self.size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        arrays = {
            k: np.stack(v) if isinstance(v[0], np.ndarray) else np.asarray(v)
            for k, v in self.buffer.items()
        }
        self.write(arrays, self.pending)
        self.buffer, self.pending = {}, 0

    def write(self, arrays: dict[str, np.ndarray], rows: int) -> None:
        data = dumps(arrays)
        key = f"{self.prefix}/shard-{len(self.shards):05d}.npz"
        self.storage.write_bytes(key, data)
        self.shards.append({"key": key, "rows": rows, "sha256": hashlib.sha256(data).hexdigest()})


def read_shards(storage: ObjectStorage, shards: list[dict]) -> Iterator[dict[str, np.ndarray]]:
    for shard in shards:
        yield loads(storage.read_bytes(shard["key"]), shard["key"])


def lsfb_split(storage: ObjectStorage, layout: Layout, version: str, split: str) -> SplitData:
    manifest = storage.read_json(layout.dataset(version, DATASET_MANIFEST))
    part = manifest["splits"][split]

    def load(key: str) -> tuple[np.ndarray, np.ndarray]:
        arrays = loads(storage.read_bytes(key), key)
        return arrays["x"], arrays["label"].astype("int64")

    return SplitData(
        name=split,
        classes=list(range(len(manifest["labels"]))),
        item_shape=manifest["item_shape"],
        rows=part["rows"],
        _load=load,
        _shards=[s["key"] for s in part["shards"]],
        class_names=manifest["labels"],
    )
