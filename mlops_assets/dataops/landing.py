"""New files in a landing zone since a sensor cursor.

The cursor keeps the newest modification time seen and the files seen at
exactly that time, so files landing within the same clock tick (S3 times
have one-second resolution) are neither missed nor launched twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from mlops_assets.dataops.acquire import is_ignored
from mlops_assets.storage import ObjectInfo, ObjectStorage


@dataclass(frozen=True)
class LandingTick:
    files: list[ObjectInfo]
    cursor: str

    @property
    def run_key(self) -> str:
        """The same set of files (names and versions) always gives the same key."""
        ids = sorted(f"{f.key}@{f.version}" for f in self.files)
        return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]


def new_landing_files(storage: ObjectStorage, landing: str, cursor: str | None) -> LandingTick:
    state = json.loads(cursor) if cursor else {"modified_ns": 0, "seen": []}
    since, seen = int(state["modified_ns"]), set(state["seen"])
    prefix = landing.strip("/") + "/"
    files = [
        info
        for info in storage.list_modified_since(landing, since)
        if not is_ignored(info.key[len(prefix) :] if info.key.startswith(prefix) else info.key)
        and not (info.modified_ns == since and f"{info.key}@{info.version}" in seen)
    ]
    if not files:
        return LandingTick(files=[], cursor=cursor or json.dumps(state))
    newest = max(f.modified_ns for f in files)
    at_newest = {f"{f.key}@{f.version}" for f in files if f.modified_ns == newest}
    if newest == since:
        at_newest |= seen
    return LandingTick(
        files=files, cursor=json.dumps({"modified_ns": newest, "seen": sorted(at_newest)})
    )
