"""acquire: ingest the landing files not ingested before, content-addressed.

Work grows with what is new: a landing file whose listing version (ETag, or
mtime and size) is unchanged since the last run is not even read, and what
is unchanged since acquire's cursor is not even looked at.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath

from mlops_assets.datasets.tabular.catalog import (
    Batch,
    append_segment,
    load_catalog,
    migrate_catalog,
)
from mlops_assets.datasets.tabular.landing import (
    Discovery,
    changed_since,
    landing_name,
)
from mlops_assets.datasets.tabular.landing_index import migrate_index, read_markers, write_markers
from mlops_assets.datasets.tabular.notifications import current
from mlops_assets.errors import MlopsError
from mlops_assets.storage import Layout, ObjectStorage, UnsafeKeyError, relative_name, safe_key
from mlops_assets.storage.base import ObjectInfo
from mlops_assets.storage.keys import name_bytes


@dataclass
class AcquireResult:
    new: list[Batch] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    """(landing name, reason) of the files this run could not ingest, each quarantined."""
    landing_files: int = 0
    """Landing files this run looked at: the ones its discovery found changed."""
    storage: ObjectStorage | None = field(default=None, repr=False)
    layout: Layout | None = field(default=None, repr=False)

    @property
    def catalog(self) -> list[Batch]:
        """Every batch ingested so far (reads the whole catalog: not for the hot path)."""
        assert self.storage is not None and self.layout is not None
        return load_catalog(self.storage, self.layout)


def run_acquire(
    storage: ObjectStorage,
    layout: Layout,
    landing: str,
    run_id: str = "",
    max_file_bytes: int | None = None,
    discovery: Discovery = "listing",
    files: list[str] | None = None,
) -> AcquireResult:
    """Ingest what is new. A file that cannot be ingested for any reason is quarantined
    with the reason and recorded at its version, so it never blocks the files behind it
    and is tried again only when it changes.

    What is looked at is what the discovery finds changed since acquire's own cursor
    (`raw/<uc>/_landing_cursor.json`), and each of those costs a read of its marker: no
    state that grows with the history is read or rewritten. Writes go batch first, then
    the catalog segment, then the markers, then the cursor, so a run killed anywhere is
    completed by the next one and nothing is cataloged twice. With `files` (storage keys,
    as the notifications sensor names them), those are looked at and nothing else."""
    result = AcquireResult(storage=storage, layout=layout)
    migrate_index(storage, layout)
    migrate_catalog(storage, layout)
    if files is not None:
        cursor = after = None
        named = []
        for key in files:
            try:
                relative_name(safe_key(key), landing)
                named.append(key)
            except UnsafeKeyError as error:  # never read; the others go on
                _refuse(storage, layout, result, key, "", f"named in the run config: {error}")
        changed, _ = current(storage, named)
    else:
        stored = storage.read_versioned(layout.landing_cursor)
        state = json.loads(stored[0]) if stored else {}
        cursor = state.get("cursor") if state.get("discovery") == discovery else None
        changed, after = changed_since(storage, landing, cursor, discovery)
    result.landing_files = len(changed)
    markers = read_markers(storage, layout, [landing_name(i.key, landing) for i in changed])
    seen: dict[str, dict] = {}
    in_run: set[str] = set()
    for info in changed:
        try:
            name = relative_name(info.key, landing)
        except UnsafeKeyError as error:
            name = info.key
            if markers.get(name, {}).get("version") != info.version:
                seen[name] = _refuse(storage, layout, result, name, info.version, str(error))
            continue
        marker = markers.get(name)
        if marker and marker.get("version") == info.version:
            continue
        try:
            if max_file_bytes is not None and info.size > max_file_bytes:
                raise OversizeError(
                    f"{info.size} bytes is more than the limit of {max_file_bytes} "
                    "(dataset.max_file_mb)"
                )
            # streamed: a multi-GB file is hashed and copied without being held in memory,
            # both of the version listed (a file rewritten meanwhile is tried next run)
            digest = storage.sha256(info.key, info.version)
            batch_id = digest[:16]
            if batch_id not in in_run:
                in_run.add(batch_id)
                record, created = _ingest(storage, layout, name, info, digest, batch_id, run_id)
                # a batch this name was ingested as before its marker was written (a run
                # killed in between, or one running beside this one) is cataloged again
                if created or (marker is None and record.get("source") == name):
                    result.new.append(record)
        except Exception as error:  # any one file: quarantined, the others go on
            reason = f"{type(error).__name__}: {error}"
            seen[name] = _refuse(storage, layout, result, name, info.version, reason)
            continue
        seen[name] = {"version": info.version, "sha256": digest, "batch_id": batch_id}
    if result.new:
        append_segment(storage, layout, result.new)
    write_markers(storage, layout, seen)
    if after is not None and after != cursor:
        storage.update_json(
            layout.landing_cursor,
            lambda now: _later(now, {"discovery": discovery, "cursor": after}),
            {},
        )
    return result


def _later(stored: dict, ours: dict) -> dict:
    """Two acquires at once: the cursor that has seen more wins (both ingested their files)."""
    if stored.get("discovery") != ours["discovery"] or not stored.get("cursor"):
        return ours
    mine, theirs = json.loads(ours["cursor"]), json.loads(stored["cursor"])
    if ours["discovery"] == "lexical":
        return ours if mine["after"] > theirs["after"] else stored
    return ours if mine["modified_ns"] > theirs["modified_ns"] else stored


class OversizeError(MlopsError, ValueError):
    """A landing file larger than the use case allows."""


def _refuse(
    storage: ObjectStorage,
    layout: Layout,
    result: AcquireResult,
    name: str,
    version: str,
    reason: str,
) -> dict:
    """Record why a landing file was not ingested, under quarantine/<use case>/; the file
    itself stays where it landed (it could not be read, or must not be)."""
    result.refused.append((name, reason))
    ref = "landing-" + hashlib.sha256(name_bytes(name)).hexdigest()[:16]
    storage.write_json(
        layout.quarantine(ref, "reason.json"),
        {
            "source": name,
            "version": version,
            "reason": reason,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    return {"version": version, "refused": reason, "quarantine": ref}


def _ingest(
    storage: ObjectStorage,
    layout: Layout,
    name: str,
    info: ObjectInfo,
    digest: str,
    batch_id: str,
    run_id: str,
) -> tuple[Batch, bool]:
    """The batch's record, and whether this call created it."""
    file_name = PurePosixPath(name).name
    raw_key = layout.raw(batch_id, file_name)
    if not storage.exists(raw_key):  # content-addressed: there already means the same bytes
        storage.copy(info.key, raw_key, info.version)
    record: Batch = {
        "batch_id": batch_id,
        "source": name,
        "file": file_name,
        "raw_key": raw_key,
        "sha256": digest,
        "bytes": info.size,
        "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
    }
    marker = layout.raw(batch_id, "_batch.json")
    if not storage.write_json(marker, record, if_absent=True):
        return storage.read_json(marker), False  # ingested before, by this name or another
    return record, True
