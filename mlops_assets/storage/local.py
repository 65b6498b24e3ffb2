"""Storage in a local folder: the embedded default (`.mlops/`)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from mlops_assets.storage.base import FileChangedError, ObjectInfo, ObjectStorage, bounded
from mlops_assets.storage.keys import UnsafeKeyError, name_bytes, safe_key


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)  # at import, before any thread of ours writes a file
    os.umask(current)
    return current


UMASK = _umask()


class LocalStorage(ObjectStorage):
    """Objects as files under `root`; writes are atomic renames."""

    root: str
    portable_prefix: str = ""
    """Where `root` lies under the root a reader resolves keys against: a branch
    deployment's `branches/<name>` (its values files are read beside production's)."""

    def _root(self) -> Path:
        return Path(self.root).resolve()

    def _path(self, key: str) -> Path:
        root = self._root()
        path = root / safe_key(key)
        # Resolving follows symlinks, so a link planted in the landing zone that
        # points outside the root is refused here, before anything is read.
        if not path.resolve().is_relative_to(root):
            raise UnsafeKeyError(f"{key!r} resolves outside the storage root {root}")
        return path

    def read_bytes(self, key: str, limit: int | None = None) -> bytes:
        path = self._path(key)
        try:
            # O_NONBLOCK: a named pipe planted in a landing folder must not hang the reader
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise FileNotFoundError(f"no object {key!r} in {self.uri('')}") from None
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UnsafeKeyError(f"{key!r} is not a regular file")
            return bounded(handle.read(-1 if limit is None else limit + 1), limit, self.uri(key))

    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A short temporary name: the object's own name may already be near NAME_MAX.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            os.fchmod(fd, 0o666 & ~UMASK)  # mkstemp makes 0600; others may share the folder
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if if_absent:
                try:
                    os.link(tmp, path)  # atomic create-if-absent
                except FileExistsError:
                    return False
            else:
                os.replace(tmp, path)
            return True
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @contextmanager
    def local_file(self, key: str, *, one_request: bool = False) -> Iterator[Path]:
        path = self._path(key)
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            raise FileNotFoundError(f"no object {key!r} in {self.uri('')}") from None
        if not stat.S_ISREG(mode):  # a named pipe would block the reader
            raise UnsafeKeyError(f"{key!r} is not a regular file")
        yield path

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
        try:
            os.fchmod(fd, 0o666 & ~UMASK)
            with os.fdopen(fd, "wb") as out, open(path, "rb") as source:
                shutil.copyfileobj(source, out, 8 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def copy(self, source: str, target: str, version: str = "") -> None:
        with self.local_file(source) as path:
            self.put_file(target, path)
        if self._changed(source, version):
            self.delete(target)
            raise FileChangedError(f"{source} changed while it was copied")

    def sha256(self, key: str, version: str = "") -> str:
        with self.local_file(key) as path, open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        if self._changed(key, version):
            raise FileChangedError(f"{key} changed while it was read")
        return digest

    def _changed(self, key: str, version: str) -> bool:
        """Whether the object is no longer at `version` (mtime and size; '' checks nothing)."""
        return bool(version) and (now := self.info(key)) is not None and now.version != version

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        try:
            data = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        return data, hashlib.sha256(data).hexdigest()

    def replace_if(self, key: str, data: bytes, token: str | None) -> bool:
        if token is None:
            return self.write_bytes(key, data, if_absent=True)
        path = self._path(key)
        # An exclusive lock beside the object serialises compare-and-swaps across
        # processes; the swap itself is an atomic rename.
        lock_name = f".{hashlib.sha256(name_bytes(path.name)).hexdigest()[:16]}.lock"
        with open(path.with_name(lock_name), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read_versioned(key)
            if current is None or current[1] != token:
                return False
            return self.write_bytes(key, data)

    def swap(self, key: str, data: bytes, token: str | None) -> str | None:
        return hashlib.sha256(data).hexdigest() if self.replace_if(key, data, token) else None

    def list(self, prefix: str) -> list[ObjectInfo]:
        root = self._root()
        base = root / safe_key(prefix)
        found: list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") and name.endswith((".tmp", ".lock")):
                    continue  # an atomic write in progress, or a compare-and-swap lock
                full = Path(dirpath) / name
                found.append(_info(full.relative_to(root).as_posix(), full.lstat()))
        return found

    def folders(self, prefix: str) -> list[str]:
        """One directory read."""
        try:
            entries = os.scandir(self._root() / safe_key(prefix))
        except (FileNotFoundError, NotADirectoryError):
            return []
        with entries:
            return sorted(
                e.name for e in entries if e.is_dir(follow_symlinks=False) and e.name[0] != "."
            )

    def list_after(
        self, prefix: str, start_after: str = "", limit: int | None = None
    ) -> list[ObjectInfo]:
        """A sorted scan that descends only into folders that can hold a key after
        `start_after`, and stats only what it returns: a date-partitioned zone
        (`2026/11/28/...`) costs its newest folders, a flat one a directory read."""
        root = self._root()
        found: list[ObjectInfo] = []
        self._scan_after(root, root / safe_key(prefix), start_after, found)
        found.sort(key=lambda info: info.key)
        return found[:limit] if limit is not None else found

    def _scan_after(self, root: Path, folder: Path, after: str, found: list[ObjectInfo]) -> None:
        """`after` is "" (everything here) or a key under `folder`."""
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return
        base = folder.relative_to(root).as_posix()
        head = "" if base == "." else base + "/"
        rel = after[len(head) :] if after else ""
        if rel:  # string tests only: what cannot sort after the cursor is never stat'ed
            names = [n for n in names if n + "/" > rel or rel.startswith(n + "/")]
        for name in names:
            if name.startswith(".") and name.endswith((".tmp", ".lock")):
                continue  # an atomic write in progress, or a compare-and-swap lock
            full = folder / name
            info = full.lstat()
            if stat.S_ISDIR(info.st_mode):
                if not name.startswith("."):
                    inner = after if rel.startswith(name + "/") else ""
                    self._scan_after(root, full, inner, found)
            elif name > rel:
                found.append(_info(head + name, info))

    def info(self, key: str) -> ObjectInfo | None:
        try:
            found = self._path(key).lstat()
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(found.st_mode):
            return None
        return _info(safe_key(key), found)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def remove_empty(self, prefix: str) -> None:
        top = self._path(prefix)
        for folder, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):  # deepest first
            with suppress(OSError):
                os.rmdir(folder)  # only if empty

    def portable_uri(self, key: str) -> str:
        """The key itself: a clone moved elsewhere (or another user's) resolves it against
        its own MLOPS_STORAGE_ROOT, where an absolute path would point at the old place."""
        key = safe_key(key)
        return f"{self.portable_prefix}/{key}" if self.portable_prefix else key

    def uri(self, key: str) -> str:
        return (self._root() / key).as_posix() if key else self._root().as_posix()


def _info(key: str, found: os.stat_result) -> ObjectInfo:
    """A file as a listing sees it: its version changes with its mtime or size."""
    return ObjectInfo(
        key=key,
        size=found.st_size,
        version=f"{found.st_mtime_ns}-{found.st_size}",
        modified_ns=found.st_mtime_ns,
    )
