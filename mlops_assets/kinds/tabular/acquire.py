"""acquire: ingest the landing files not ingested before, content-addressed.

Work grows with what is new: a landing file whose listing version (ETag, or
mtime and size) is unchanged since the last run is not even read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath

from mlops_assets.errors import MlopsError
from mlops_assets.kinds.tabular.catalog import Batch, load_catalog
from mlops_assets.storage import Layout, ObjectStorage, UnsafeKeyError, relative_name


@dataclass
class AcquireResult:
    new: list[Batch] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    """(landing name, reason) of the files this run could not ingest, each quarantined."""
    landing_files: int = 0
    catalog: list[Batch] = field(default_factory=list)


def is_ignored(name: str) -> bool:
    """Hidden files and markers (`.x`, `_SUCCESS`) are not data."""
    return any(part.startswith((".", "_")) for part in PurePosixPath(name).parts)


def run_acquire(
    storage: ObjectStorage,
    layout: Layout,
    landing: str,
    run_id: str = "",
    max_file_bytes: int | None = None,
) -> AcquireResult:
    """Ingest what is new. A file that cannot be ingested for any reason is quarantined
    with the reason and recorded at its version, so it never blocks the files behind it
    and is tried again only when it changes. The catalog and the landing index are shared
    by concurrent runs and updated by compare-and-swap."""
    result = AcquireResult()
    index: dict[str, dict] = storage.read_json(layout.landing_index, default={})
    known = {b["batch_id"] for b in load_catalog(storage, layout)}
    seen: dict[str, dict] = {}
    for info in storage.list(landing):
        try:
            name = relative_name(info.key, landing)
        except UnsafeKeyError as error:
            name = info.key
            if index.get(name, {}).get("version") != info.version:
                seen[name] = _refuse(storage, layout, result, name, info.version, str(error))
            continue
        if is_ignored(name):
            continue
        result.landing_files += 1
        entry = index.get(name)
        if entry and entry.get("version") == info.version:
            continue
        try:
            if max_file_bytes is not None and info.size > max_file_bytes:
                raise OversizeError(
                    f"{info.size} bytes is more than the limit of {max_file_bytes} "
                    "(dataset.max_file_mb)"
                )
            data = storage.read_bytes(info.key)
            digest = hashlib.sha256(data).hexdigest()
            batch_id = digest[:16]
            if batch_id not in known:
                record = _ingest(storage, layout, name, data, digest, batch_id, run_id)
                known.add(batch_id)
                result.new.append(record)
        except Exception as error:  # any one file: quarantined, the others go on
            reason = f"{type(error).__name__}: {error}"
            seen[name] = _refuse(storage, layout, result, name, info.version, reason)
            continue
        seen[name] = {"version": info.version, "sha256": digest, "batch_id": batch_id}
    if result.new:
        result.catalog = storage.update_json(
            layout.raw_catalog, lambda catalog: _with_batches(catalog, result.new), []
        )
    else:
        result.catalog = load_catalog(storage, layout)
    if seen:
        storage.update_json(layout.landing_index, lambda stored: {**stored, **seen}, {})
    return result


class OversizeError(MlopsError, ValueError):
    """A landing file larger than the use case allows."""


def _with_batches(catalog: list[Batch], new: list[Batch]) -> list[Batch]:
    ids = {b["batch_id"] for b in catalog}
    return catalog + [b for b in new if b["batch_id"] not in ids]


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
    ref = "landing-" + hashlib.sha256(name.encode()).hexdigest()[:16]
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
