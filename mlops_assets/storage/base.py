"""The storage interface every asset, sensor and the registry use.

One small interface, two implementations (a local folder, S3), the same keys
on both, so a pipeline tested on the local default behaves the same on S3.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import dagster as dg

from mlops_assets.storage.keys import safe_key

if TYPE_CHECKING:
    import pandas as pd


class FileChangedError(RuntimeError):
    """An object changed while it was being read or copied: try again once it settles."""


class ObjectTooLargeError(ValueError):
    """An object holds more bytes than its reader takes."""


def bounded(data: bytes, limit: int | None, uri: str) -> bytes:
    """`data` (read up to `limit` + 1 bytes), refused when it holds more than `limit`."""
    if limit is not None and len(data) > limit:
        raise ObjectTooLargeError(f"{uri} holds more than {limit} bytes: refused")
    return data


@dataclass(frozen=True)
class ObjectInfo:
    """A stored object as a listing sees it."""

    key: str
    size: int
    version: str
    """Changes whenever the content may have changed (S3 ETag, or mtime and size)."""
    modified_ns: int


class ObjectStorage(dg.ConfigurableResource):
    """Key/value object storage rooted at a folder or an S3 prefix."""

    concurrent_reads: ClassVar[int] = 1
    """How many reads at once pay off: threads hide a remote store's request latency; on a
    local disk they only fight over the GIL."""

    def read_bytes(self, key: str, limit: int | None = None) -> bytes:
        """The object's bytes; with `limit`, at most that many are read (more: refused)."""
        raise NotImplementedError

    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        """Write atomically; with `if_absent`, only when nothing is there (returns False then)."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """The object and a token that changes with its content; None when absent."""
        raise NotImplementedError

    def replace_if(self, key: str, data: bytes, token: str | None) -> bool:
        """Compare-and-swap: write only if the object still has `token` (None: is absent).

        Returns False, writing nothing, when someone else wrote first.
        """
        raise NotImplementedError

    def swap(self, key: str, data: bytes, token: str | None) -> str | None:
        """`replace_if` that returns the token of what it wrote (None when it lost), so a
        writer that swaps again needs no read in between."""
        if not self.replace_if(key, data, token):
            return None
        found = self.read_versioned(key)
        return found[1] if found else None

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object under `prefix` (recursively), keys relative to the storage root."""
        raise NotImplementedError

    def list_modified_since(self, prefix: str, since_ns: int) -> list[ObjectInfo]:
        """Objects under `prefix` modified at or after `since_ns` (ns since the epoch)."""
        return [info for info in self.list(prefix) if info.modified_ns >= since_ns]

    def folders(self, prefix: str) -> list[str]:
        """The names of the folders directly under `prefix`, sorted: a zone partitioned by
        environment is walked one folder at a time instead of listed whole. The default
        derives them from a full listing; backends override it with a cheaper one."""
        head = safe_key(prefix) + "/"
        return sorted(
            {
                rest.split("/", 1)[0]
                for rest in (info.key[len(head) :] for info in self.list(prefix))
                if "/" in rest
            }
        )

    def list_after(
        self, prefix: str, start_after: str = "", limit: int | None = None
    ) -> list[ObjectInfo]:
        """Objects under `prefix` whose key sorts after `start_after` (a key under `prefix`,
        or "" for all), in key order, the first `limit` of them: for zones whose names only
        grow, the cost of what is new. The default filters a full listing; backends
        override it with a cheaper one."""
        found = sorted(
            (info for info in self.list(prefix) if info.key > start_after), key=lambda i: i.key
        )
        return found[:limit] if limit is not None else found

    def info(self, key: str) -> ObjectInfo | None:
        """What a listing would say of one object; None when it is absent."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Remove an object; absent is not an error."""
        raise NotImplementedError

    def remove_empty(self, prefix: str) -> None:
        """Remove the folders left empty under `prefix` (one nobody else writes into): a
        store without folders has nothing to do."""

    def delete_many(self, keys: list[str]) -> None:
        """Remove objects (absent ones are not an error); backends that can, in one request
        per thousand keys."""
        for key in keys:
            self.delete(key)

    def uri(self, key: str) -> str:
        raise NotImplementedError

    def portable_uri(self, key: str) -> str:
        """Where a stored object is, in a form that stays true when it is read from elsewhere
        (the registry's metadata, a values file): `uri` unless the backend says otherwise."""
        return self.uri(key)

    def local_file(self, key: str, *, one_request: bool = False) -> AbstractContextManager[Path]:
        """A local file holding the object, for readers that stream it in pieces (pyarrow):
        the file itself on a local root; elsewhere a temporary download, removed after
        (`one_request`: one streamed GET, not ranged parts in parallel)."""
        raise NotImplementedError

    def put_file(self, key: str, path: Path) -> None:
        """Store a local file's bytes at `key`, atomically (in parts where the backend can)."""
        raise NotImplementedError

    def copy(self, source: str, target: str, version: str = "") -> None:
        """Copy an object (server-side where the backend can); with `version`, only while
        the source is still at that version (else FileChangedError)."""
        raise NotImplementedError

    def sha256(self, key: str, version: str = "") -> str:
        """The object's SHA-256, read as a stream; with `version`, of that version only."""
        raise NotImplementedError

    def read_json(self, key: str, default: Any = None) -> Any:
        if default is not None and not self.exists(key):
            return default
        return json.loads(self.read_bytes(key))

    def write_json(self, key: str, value: Any, *, if_absent: bool = False) -> bool:
        data = json.dumps(value, indent=2, sort_keys=True, default=str).encode()
        return self.write_bytes(key, data, if_absent=if_absent)

    def update_json(self, key: str, change: Callable[[Any], Any], default: Any) -> Any:
        """Compare-and-swap of a shared JSON object: `change(current)` is applied to what is
        stored now and written only if nobody wrote in between (else read again, retry), so
        two writers never lose each other's update. Returns what was stored."""
        while True:
            found = self.read_versioned(key)
            current = json.loads(found[0]) if found else default
            wanted = change(current)
            if found and wanted == current:
                return current
            data = json.dumps(wanted, indent=2, sort_keys=True, default=str).encode()
            if self.replace_if(key, data, found[1] if found else None):
                return wanted

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(BytesIO(self.read_bytes(key)), columns=columns)

    def write_parquet(self, key: str, frame: pd.DataFrame) -> None:
        buffer = BytesIO()
        frame.to_parquet(buffer, index=False)
        self.write_bytes(key, buffer.getvalue())
