"""Which landing files acquire has ingested, and at which version: one marker per file.

"Was this file, at this version, ingested?" is one small read of its own marker
(`raw/<use_case>/_landing/<xx>/<sha256 of the name>.json`), never a load of an
index of every file that ever landed, so a tick and an acquire cost what is new.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from mlops_assets.storage import Layout, ObjectStorage

T = TypeVar("T")
R = TypeVar("R")


def each(storage: ObjectStorage, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`work` over `items`, in order, as many at once as the backend gains from."""
    items = list(items)
    if storage.concurrent_reads <= 1 or len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(min(storage.concurrent_reads, len(items))) as pool:
        return list(pool.map(work, items))


def read_markers(
    storage: ObjectStorage, layout: Layout, names: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """The markers of `names` that exist: name -> {version, sha256, batch_id} or a refusal."""
    names = list(names)

    def read(name: str) -> dict[str, Any] | None:
        found = storage.read_versioned(layout.landing_marker(name))
        return _loads(found[0]) if found else None

    return {n: m for n, m in zip(names, each(storage, read, names), strict=True) if m}


def write_markers(
    storage: ObjectStorage, layout: Layout, entries: dict[str, dict], if_absent: bool = False
) -> None:
    """Each entry as its file's marker; with `if_absent`, a marker already there is kept."""
    each(
        storage,
        lambda item: storage.write_json(
            layout.landing_marker(item[0]), {"name": item[0], **item[1]}, if_absent=if_absent
        ),
        entries.items(),
    )


def migrate_index(storage: ObjectStorage, layout: Layout) -> int:
    """A root from before markers keeps its landing index as one JSON object: each entry
    becomes its file's marker (a marker already there is newer and kept), then the object
    is removed. Idempotent, so a migration cut short is redone on next use."""
    if not storage.exists(layout.landing_index):
        return 0
    index: dict[str, dict] = storage.read_json(layout.landing_index, default={})
    write_markers(storage, layout, index, if_absent=True)
    storage.delete(layout.landing_index)
    return len(index)


def _loads(data: bytes) -> dict[str, Any] | None:

    try:
        value = json.loads(data)
    except ValueError:
        return None  # a torn or foreign marker: the file is treated as not ingested
    return value if isinstance(value, dict) else None
