"""The batch catalog: every ingested batch, in ingest order, as append-only segments.

Each acquire run that ingests something writes one immutable segment,
`raw/<use_case>/_catalog/s<sequence>.json`, listing its batches; nothing is ever
rewritten, so a run's cost does not grow with the history. Sequence numbers are
taken with a create-if-absent write, so segment n+1 exists only once segment n
does: a stage's cursor (the last segment it processed whole) is exact, and what
is new for a stage is one listing after its cursor. Each batch's own
`raw/<use_case>/<batch_id>/_batch.json` is written first and is the truth, so a
run killed before its segment is repaired by the next run (a batch in two
segments is processed once: stages skip a batch whose output exists).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from mlops_assets.storage import Layout, ObjectStorage

Batch = dict[str, Any]

MIGRATED_SEGMENT = "00000000T000000000000-migrated.json"
"""The whole catalog of a root from before segments; sorts before every later one."""


def _sequence(name: str) -> int:
    """A segment's sequence number; 0 for the time-stamped names of earlier releases."""
    return int(name[1:13]) if name.startswith("s") and name[1:13].isdigit() else 0


def segments_after(storage: ObjectStorage, layout: Layout, after: str = "") -> list[str]:
    """Segment names after `after` ("" for all), in ingest order: one listing of what
    follows, whatever the history."""
    prefix = layout.catalog_segment()
    start = layout.catalog_segment(after) if after else ""
    names = [info.key[len(prefix) + 1 :] for info in storage.list_after(prefix, start)]
    return [n for n in names if n.endswith(".json") and "/" not in n]


def last_segment(storage: ObjectStorage, layout: Layout) -> str:
    """The catalog's newest segment ("" while nothing is cataloged), found by listing after
    the head hint (`_catalog_head.json`), so its cost is what was appended since."""
    head = storage.read_json(layout.catalog_head, default={}).get("segment", "")
    names = segments_after(storage, layout, head if isinstance(head, str) else "")
    return names[-1] if names else head


def catalog_state(storage: ObjectStorage, layout: Layout) -> str:
    """A token that changes whenever a batch is cataloged (the newest segment's name): the
    Dagster data version of acquire, and what split records as the catalog a dataset
    version holds whole; "" while nothing is cataloged."""
    return last_segment(storage, layout)


def segment_names(storage: ObjectStorage, layout: Layout) -> list[str]:
    """Every segment, in ingest order (lists them all: for the whole catalog only)."""
    return segments_after(storage, layout)


def read_segment(storage: ObjectStorage, layout: Layout, name: str) -> list[Batch]:
    return storage.read_json(layout.catalog_segment(name), default=[])


def load_catalog(storage: ObjectStorage, layout: Layout) -> list[Batch]:
    """Every batch ever ingested, in ingest order (reads the whole catalog: not for a
    stage's run, which reads what follows its cursor)."""
    migrate_catalog(storage, layout)
    seen: set[str] = set()
    batches: list[Batch] = []
    for name in segment_names(storage, layout):
        for batch in read_segment(storage, layout, name):
            if batch["batch_id"] not in seen:
                seen.add(batch["batch_id"])
                batches.append(batch)
    return batches


def append_segment(storage: ObjectStorage, layout: Layout, batches: list[Batch]) -> str:
    """Catalog `batches` in the next segment; returns its name. Two runs at once both
    append: the loser of a sequence number takes the next one."""
    data = json.dumps(batches, sort_keys=True, default=str).encode()
    last = last_segment(storage, layout)
    while True:
        name = f"s{_sequence(last) + 1:012d}.json"
        if storage.write_bytes(layout.catalog_segment(name), data, if_absent=True):
            break
        last = (segments_after(storage, layout, name) or [name])[-1]  # taken: go past it
    storage.update_json(
        layout.catalog_head,
        lambda now: {
            "segment": max(name, now.get("segment", "")) if isinstance(now, dict) else name
        },
        {},
    )
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


def read_cursor(storage: ObjectStorage, layout: Layout, stage: str) -> dict[str, Any]:
    """A stage's cursor: `segment`, the last segment it processed whole ("" for none yet, as
    in a root from before cursors: its first run looks at every batch once), and whatever
    running state the stage keeps beside it."""
    found = storage.read_json(layout.stage_cursor(stage), default={})
    return found if isinstance(found, dict) else {}


def new_segments(
    storage: ObjectStorage, layout: Layout, after: str
) -> Iterator[tuple[str, list[Batch]]]:
    """The segments after `after`, each with its batches, in ingest order."""
    migrate_catalog(storage, layout)
    for name in segments_after(storage, layout, after):
        yield name, read_segment(storage, layout, name)


def advance_cursor(
    storage: ObjectStorage, layout: Layout, stage: str, state: dict[str, Any]
) -> None:
    """Move a stage's cursor to `state` (compare-and-swap): of two runs at once, the one
    that got further wins, and each state is complete from the start, so none is lost."""
    storage.update_json(
        layout.stage_cursor(stage),
        lambda now: state if state["segment"] > (now or {}).get("segment", "") else now,
        {},
    )
