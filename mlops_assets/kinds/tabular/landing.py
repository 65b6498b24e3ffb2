"""New files in a landing zone since a sensor cursor.

The cursor keeps the newest modification time seen and the files seen at
exactly that time, so files landing within the same clock tick (S3 times
have one-second resolution) are neither missed nor launched twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from mlops_assets.kinds.tabular.acquire import is_ignored
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


def new_landing_files(
    storage: ObjectStorage,
    landing: str,
    cursor: str | None,
    ingested: dict[str, dict] | None = None,
) -> LandingTick:
    """Files changed since `cursor` that acquire has not ingested at their current version.

    `ingested` is acquire's landing index (name under the landing zone -> version), so a
    sensor turned on over an already-ingested landing zone launches nothing.
    """
    ingested = ingested or {}
    state = json.loads(cursor) if cursor else {"modified_ns": 0, "seen": []}
    since, seen = int(state["modified_ns"]), set(state["seen"])
    prefix = landing.strip("/") + "/"
    changed = [
        info
        for info in storage.list_modified_since(landing, since)
        if not is_ignored(_name(info.key, prefix))
        and not (info.modified_ns == since and f"{info.key}@{info.version}" in seen)
    ]
    if not changed:
        return LandingTick(files=[], cursor=cursor or json.dumps(state))
    newest = max(f.modified_ns for f in changed)
    at_newest = {f"{f.key}@{f.version}" for f in changed if f.modified_ns == newest}
    if newest == since:
        at_newest |= seen
    files = [
        f for f in changed if ingested.get(_name(f.key, prefix), {}).get("version") != f.version
    ]
    return LandingTick(
        files=files, cursor=json.dumps({"modified_ns": newest, "seen": sorted(at_newest)})
    )


def _name(key: str, prefix: str) -> str:
    return key[len(prefix) :] if key.startswith(prefix) else key
