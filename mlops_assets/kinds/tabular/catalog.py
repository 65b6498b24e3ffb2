"""The batch catalog: every ingested batch, in ingest order.

`raw/<use_case>/_catalog.json` is derived state: each batch's own
`raw/<use_case>/<batch_id>/_batch.json` is written first and is the truth, so
a process killed mid-acquire is repaired by the next run, never duplicated.
"""

from __future__ import annotations

from typing import Any

from mlops_assets.storage import Layout, ObjectStorage

Batch = dict[str, Any]


def load_catalog(storage: ObjectStorage, layout: Layout) -> list[Batch]:
    return storage.read_json(layout.raw_catalog, default=[])


def save_catalog(storage: ObjectStorage, layout: Layout, catalog: list[Batch]) -> None:
    storage.write_json(layout.raw_catalog, catalog)


def staged_ids(storage: ObjectStorage, layout: Layout, stage: str) -> set[str]:
    """Batch ids that already have an output of `stage` (one listing, not one call per batch)."""
    prefix = f"staged/{layout.use_case}/{stage}"
    return {info.key.rsplit("/", 1)[-1].split(".", 1)[0] for info in storage.list(prefix)}


def pending(storage: ObjectStorage, layout: Layout, stage: str) -> list[Batch]:
    """Catalog batches, in ingest order, that `stage` has not processed yet."""
    done = staged_ids(storage, layout, stage)
    return [b for b in load_catalog(storage, layout) if b["batch_id"] not in done]
