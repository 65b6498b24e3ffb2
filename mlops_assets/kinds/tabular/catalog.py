"""The batch catalog: every ingested batch, in ingest order, as append-only segments.

Each acquire run that ingests something writes one immutable segment,
`raw/<use_case>/_catalog/<UTC time>-<digest>.json`, listing its batches; nothing
is ever rewritten, so a run's cost does not grow with the history and two runs
never contend. Each batch's own `raw/<use_case>/<batch_id>/_batch.json` is
written first and is the truth, so a run killed before its segment is repaired
by the next run, never duplicated (a batch in two segments is read once).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from mlops_assets.storage import Layout, ObjectStorage

Batch = dict[str, Any]

MIGRATED_SEGMENT = "00000000T000000000000-migrated.json"
"""The whole catalog of a root from before segments; sorts before every later one."""


def segment_names(storage: ObjectStorage, layout: Layout) -> list[str]:
    """The catalog's segments in ingest order: one listing of names, no reads."""
    prefix = layout.catalog_segment()
    names = [info.key[len(prefix) + 1 :] for info in storage.list(prefix)]
    return sorted(n for n in names if n.endswith(".json") and "/" not in n)


def catalog_state(storage: ObjectStorage, layout: Layout) -> str:
    """A short token that changes whenever a batch is cataloged: the Dagster data version
    of acquire, and what split records as the catalog a dataset version was built from;
    "" while nothing is cataloged."""
    names = segment_names(storage, layout)
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16] if names else ""


def load_catalog(storage: ObjectStorage, layout: Layout) -> list[Batch]:
    migrate_catalog(storage, layout)
    seen: set[str] = set()
    batches: list[Batch] = []
    for name in segment_names(storage, layout):
        for batch in storage.read_json(layout.catalog_segment(name), default=[]):
            if batch["batch_id"] not in seen:
                seen.add(batch["batch_id"])
                batches.append(batch)
    return batches


def append_segment(storage: ObjectStorage, layout: Layout, batches: list[Batch]) -> str:
    """Catalog `batches` in a new immutable segment; returns its name."""
    data = json.dumps(batches, sort_keys=True, default=str).encode()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"{stamp}-{hashlib.sha256(data).hexdigest()[:12]}.json"
    storage.write_bytes(layout.catalog_segment(name), data, if_absent=True)
    return name


def migrate_catalog(storage: ObjectStorage, layout: Layout) -> bool:
    """A root from before segments keeps its catalog as one list: it becomes the first
    segment, then the list is removed. Idempotent, so a migration cut short is redone."""
    if not storage.exists(layout.raw_catalog):
        return False
    old = storage.read_json(layout.raw_catalog, default=[])
    data = json.dumps(old, sort_keys=True, default=str).encode()
    if not storage.write_bytes(layout.catalog_segment(MIGRATED_SEGMENT), data, if_absent=True):
        append_segment(storage, layout, old)  # written again since: kept, read once per batch
    storage.delete(layout.raw_catalog)
    return True


def staged_ids(storage: ObjectStorage, layout: Layout, stage: str) -> set[str]:
    """Batch ids that already have an output of `stage` (one listing, not one call per batch)."""
    prefix = f"staged/{layout.use_case}/{stage}"
    return {info.key.rsplit("/", 1)[-1].split(".", 1)[0] for info in storage.list(prefix)}


def pending(storage: ObjectStorage, layout: Layout, stage: str) -> list[Batch]:
    """Catalog batches, in ingest order, that `stage` has not processed yet."""
    done = staged_ids(storage, layout, stage)
    return [b for b in load_catalog(storage, layout) if b["batch_id"] not in done]
