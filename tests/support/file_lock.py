"""One process at a time for test set-up that writes a shared folder.

The suite runs in several pytest-xdist workers; installing the CRD packages or unpacking
Prometheus into a shared folder must not interleave.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock` (created if absent) for the block."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
