"""Migrating a root's per-row markers (`staged/<uc>/_rows/`) into the row index, once.

Releases before the row index kept one small object per distinct clean row. The
migration reads them in listing order, `CHUNK` at a time, each chunk written as a
part and recorded in `_row_index/migration.json` (compare-and-swap), so a
migration cut short resumes after the last chunk it recorded. The parts are then
committed to the index like a clean run's rows; a marker is deleted only once the
index answers its row with the marker's own location (verified, chunk by chunk).
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from mlops_assets.datasets.tabular.landing_index import each
from mlops_assets.datasets.tabular.row_index import (
    Claims,
    Part,
    RowIndex,
    RowIndexError,
    hash_keys,
    is_part,
    merge,
)
from mlops_assets.storage import Layout, ObjectStorage

CHUNK = 20_000
"""Markers read, recorded and deleted per step."""
HEX = re.compile(r"[0-9a-f]{24}")


def _digest(key: str) -> str | None:
    """The content hash a marker's name carries, or None for a name that is not one."""
    name = key.rsplit("/", 1)[-1].removesuffix(".json")
    return name if HEX.fullmatch(name) else None


def migrate_markers(storage: ObjectStorage, layout: Layout, index: RowIndex) -> int:
    """Move the markers under `_rows/` into `index`; returns how many were migrated (0 for a
    root without markers: one listing of one key)."""
    prefix = layout.row_marker()
    state_key = layout.row_index("migration.json")
    found = storage.read_versioned(state_key)
    if found is None and not storage.list_after(prefix, "", limit=1):
        return 0
    if found and json.loads(found[0]).get("phase") == "done":
        return 0  # migrated; what is left under _rows/ could not be read as markers
    state, token = (json.loads(found[0]), found[1]) if found else (_new_state(), None)
    if not all(is_part(layout, key, "migration") for key in state.get("parts", [])):
        raise RowIndexError(
            f"{storage.uri(state_key)} names a part that is not one of this migration's: "
            "refused (nothing is read or deleted)"
        )
    while state["phase"] == "read":
        infos = storage.list_after(prefix, state["after"], limit=CHUNK)
        wanted = dict(state, phase="commit") if not infos else None
        if infos:
            part = _chunk(storage, [i.key for i in infos])
            key = layout.row_index(f"migration/{len(state['parts']):06d}.parquet")
            storage.write_bytes(key, part.to_bytes())
            wanted = dict(
                state,
                after=infos[-1].key,
                parts=[*state["parts"], key],
                rows=state["rows"] + len(part),
            )
        state, token = _advance(storage, state_key, state, token, wanted)
    if state["phase"] == "commit":
        parts = [Part.from_bytes(storage.read_bytes(k)) for k in state["parts"]]
        _commit(index, merge(parts))
        state, token = _advance(storage, state_key, state, token, dict(state, phase="delete"))
    left = state.get("left", 0)
    while state["phase"] == "delete":
        infos = storage.list_after(prefix, state["deleted_after"], limit=CHUNK)
        if not infos:
            break
        keys = [i.key for i in infos]
        if late := _unindexed(storage, index, keys):  # written after the read pass
            _commit(index, _chunk(storage, late))
            late = _unindexed(storage, index, late)
        storage.delete_many([k for k in keys if k not in set(late)])
        left += len(late)  # not a marker (no location to keep): left where it is, counted
        wanted = dict(state, deleted_after=keys[-1], left=left)
        state, token = _advance(storage, state_key, state, token, wanted)
    storage.delete_many(state["parts"])
    if left:
        _advance(storage, state_key, state, token, dict(state, phase="done"))
    else:
        storage.delete(state_key)
    return int(state["rows"])


def _new_state() -> dict[str, Any]:
    return {"phase": "read", "after": "", "parts": [], "rows": 0, "deleted_after": ""}


def _advance(storage, key, state, token, wanted) -> tuple[dict, str | None]:
    """Record `wanted` if the state is still what this run read; else take the stored one
    (another migration got further) and go on from there."""
    new = storage.swap(key, json.dumps(wanted, sort_keys=True).encode(), token)
    if new is not None:
        return wanted, new
    found = storage.read_versioned(key)
    return (json.loads(found[0]), found[1]) if found else (_new_state(), None)


def _chunk(storage: ObjectStorage, keys: list[str]) -> Part:
    """The markers at `keys` as one part (a marker that is not one is skipped: no location)."""

    def read(key: str) -> dict | None:
        try:
            value = json.loads(storage.read_bytes(key))
        except (ValueError, FileNotFoundError):
            return None
        return value if isinstance(value, dict) and "batch_id" in value else None

    hashes, ids, files, rows = [], [], [], []
    for key, marker in zip(keys, each(storage, read, keys), strict=True):
        digest = _digest(key)
        if marker is None or digest is None:
            continue
        hashes.append(digest)
        ids.append(str(marker["batch_id"]))
        files.append(str(marker.get("file", "")))
        rows.append(int(marker.get("row", 0)))
    hi, lo = hash_keys(hashes)
    return Part.of(hi, lo, ids, files, np.array(rows, np.int64))


def _commit(index: RowIndex, part: Part) -> None:
    """Add the rows of `part` the index does not hold yet (where it holds one elsewhere, the
    index's location stands: it was kept first)."""
    index.refresh()
    new = np.array([where is None for where in index.lookup(part.hi, part.lo)], bool)
    if not new.any():
        return
    claims = Claims()
    for code, (batch_id, file) in enumerate(part.batches):
        at = np.flatnonzero(new & (part.batch == code))
        if at.size:
            claims.add(part.hi[at], part.lo[at], batch_id, file, part.row[at])
    index.commit(claims.part())


def _unindexed(storage: ObjectStorage, index: RowIndex, keys: list[str]) -> list[str]:
    """The marker keys among `keys` whose row the index does not hold."""
    digests = [_digest(k) for k in keys]
    usable = [k for k, d in zip(keys, digests, strict=True) if d]
    hi, lo = hash_keys(d for d in digests if d)
    found = index.lookup(hi, lo)
    bad = [k for k, d in zip(keys, digests, strict=True) if not d]
    return bad + [k for k, where in zip(usable, found, strict=True) if where is None]
