"""acquire: ingest the landing files not ingested before, content-addressed.

Work grows with what is new: a landing file whose listing version (ETag, or
mtime and size) is unchanged since the last run is not even read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath

from mlops_assets.dataops.catalog import Batch, load_catalog, save_catalog
from mlops_assets.storage import Layout, ObjectStorage, UnsafeKeyError, relative_name


@dataclass
class AcquireResult:
    new: list[Batch] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    landing_files: int = 0
    catalog: list[Batch] = field(default_factory=list)


def is_ignored(name: str) -> bool:
    """Hidden files and markers (`.x`, `_SUCCESS`) are not data."""
    return any(part.startswith((".", "_")) for part in PurePosixPath(name).parts)


def run_acquire(
    storage: ObjectStorage, layout: Layout, landing: str, run_id: str = ""
) -> AcquireResult:
    result = AcquireResult()
    index: dict[str, dict] = storage.read_json(layout.landing_index, default={})
    catalog = load_catalog(storage, layout)
    known = {b["batch_id"] for b in catalog}
    for info in storage.list(landing):
        try:
            name = relative_name(info.key, landing)
        except UnsafeKeyError as error:
            result.refused.append((info.key, str(error)))
            continue
        if is_ignored(name):
            continue
        result.landing_files += 1
        seen = index.get(name)
        if seen and seen.get("version") == info.version:
            continue
        try:
            data = storage.read_bytes(info.key)
        except UnsafeKeyError as error:
            result.refused.append((name, str(error)))
            continue
        digest = hashlib.sha256(data).hexdigest()
        batch_id = digest[:16]
        if batch_id not in known:
            record = _ingest(storage, layout, name, data, digest, batch_id, run_id)
            catalog.append(record)
            known.add(batch_id)
            result.new.append(record)
        index[name] = {"version": info.version, "sha256": digest, "batch_id": batch_id}
    if result.new:
        save_catalog(storage, layout, catalog)
    storage.write_json(layout.landing_index, index)
    result.catalog = catalog
    return result


def _ingest(
    storage: ObjectStorage,
    layout: Layout,
    name: str,
    data: bytes,
    digest: str,
    batch_id: str,
    run_id: str,
) -> Batch:
    file_name = PurePosixPath(name).name
    raw_key = layout.raw(batch_id, file_name)
    storage.write_bytes(raw_key, data, if_absent=True)
    record: Batch = {
        "batch_id": batch_id,
        "source": name,
        "file": file_name,
        "raw_key": raw_key,
        "sha256": digest,
        "bytes": len(data),
        "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
    }
    marker = layout.raw(batch_id, "_batch.json")
    if not storage.write_json(marker, record, if_absent=True):
        record = storage.read_json(marker)  # ingested by a run that died before the catalog
    return record
