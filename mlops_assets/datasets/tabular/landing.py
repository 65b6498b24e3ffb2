"""New files in a landing zone since a cursor, found the way the use case declares.

- `listing`: every file is listed and the cursor keeps the newest modification time
  seen and the files seen at exactly that time, so files landing within the same clock
  tick (S3 times have one-second resolution) are neither missed nor launched twice.
  Any naming works, a file rewritten in place is seen again; the listing grows with
  the zone.
- `lexical`: names increase (`batch-000123.csv`, `2026/11/28/...`); the cursor is the
  last key seen and the listing starts after it (S3 `StartAfter`, a pruned sorted scan
  on disk), so it costs what is new. A file written under a name that sorts before the
  cursor, or rewritten in place, is not seen.

Whichever finds a file, its own marker (landing_index) says whether acquire ingested it
at this version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from mlops_assets.datasets.tabular.landing_index import read_markers
from mlops_assets.storage import Layout, ObjectInfo, ObjectStorage

Discovery = Literal["listing", "lexical", "notifications"]


@dataclass(frozen=True)
class LandingTick:
    files: list[ObjectInfo]
    cursor: str

    @property
    def run_key(self) -> str:
        """The same set of files (names and versions) always gives the same key."""
        ids = sorted(f"{f.key}@{f.version}" for f in self.files)
        return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]


def is_ignored(name: str) -> bool:
    """Hidden files and markers (`.x`, `_SUCCESS`) are not data. `..` is not hidden: a
    name holding it is refused (and quarantined) by acquire, never silently skipped."""
    return any(p.startswith((".", "_")) and p not in (".", "..") for p in name.split("/"))


def landing_name(key: str, landing: str) -> str:
    """A key's name under the landing zone (the key itself if it is not under it)."""
    prefix = landing.strip("/") + "/"
    return key[len(prefix) :] if key.startswith(prefix) else key


def changed_since(
    storage: ObjectStorage, landing: str, cursor: str | None, discovery: Discovery = "listing"
) -> tuple[list[ObjectInfo], str]:
    """Files (not hidden ones) changed since `cursor`, and the cursor after them. A cursor
    of another mode (the setting changed) counts as none: everything is looked at once."""
    state = json.loads(cursor) if cursor else {}
    if discovery == "lexical":
        after = state.get("after", "") if isinstance(state.get("after"), str) else ""
        found = storage.list_after(landing, after)
        files = [i for i in found if not is_ignored(landing_name(i.key, landing))]
        newest = found[-1].key if found else after
        return files, json.dumps({"after": newest})
    since = int(state.get("modified_ns", 0))
    seen = set(state.get("seen", [])) if "modified_ns" in state else set()
    changed = [
        info
        for info in storage.list_modified_since(landing, since)
        if not is_ignored(landing_name(info.key, landing))
        and not (info.modified_ns == since and f"{info.key}@{info.version}" in seen)
    ]
    if not changed:
        return [], cursor or json.dumps({"modified_ns": since, "seen": sorted(seen)})
    newest = max(f.modified_ns for f in changed)
    at_newest = {f"{f.key}@{f.version}" for f in changed if f.modified_ns == newest}
    if newest == since:
        at_newest |= seen
    return changed, json.dumps({"modified_ns": newest, "seen": sorted(at_newest)})


def not_ingested(
    storage: ObjectStorage, layout: Layout, landing: str, files: list[ObjectInfo]
) -> list[ObjectInfo]:
    """The files whose marker does not record their current version: one small read each.
    Read-only (the sensor's principal writes nothing to storage): a root from before markers
    is read through its old index until acquire migrates it."""
    names = [landing_name(f.key, landing) for f in files]
    markers = read_markers(storage, layout, names)
    if len(markers) < len(names) and storage.exists(layout.landing_index):
        markers = {**storage.read_json(layout.landing_index, default={}), **markers}
    return [
        f
        for f, name in zip(files, names, strict=True)
        if markers.get(name, {}).get("version") != f.version
    ]


def new_landing_files(
    storage: ObjectStorage,
    layout: Layout,
    landing: str,
    cursor: str | None,
    discovery: Discovery = "listing",
) -> LandingTick:
    """Files changed since `cursor` that acquire has not ingested at their current version,
    so a sensor turned on over an already-ingested landing zone launches nothing."""
    changed, after = changed_since(storage, landing, cursor, discovery)
    return LandingTick(files=not_ingested(storage, layout, landing, changed), cursor=after)
