"""Object keys: validation and the storage layout (docs/concepts/storage-layout.md).

Every key that reaches a storage backend went through `safe_key`, so a
landing file called `../../etc/passwd` (or an S3 key holding `..`) can never
be read or written outside the storage root.
"""

from __future__ import annotations

import hashlib
import re

from mlops_assets.errors import MlopsError

_BAD_CHARS = re.compile(r"[\x00-\x1f\\]")


class UnsafeKeyError(MlopsError, ValueError):
    """A key (or file name) would escape its storage root or is malformed."""


def name_bytes(name: str) -> bytes:
    """A name's bytes as the file system gave them: a local file name that is not valid
    UTF-8 reaches Python with surrogate escapes, which plain `encode()` refuses."""
    return name.encode("utf-8", "surrogateescape")


def safe_key(*parts: str) -> str:
    """Join key parts with `/`, refusing anything that could escape the root."""
    raw = "/".join(parts)
    segments: list[str] = []
    for part in parts:
        if not part:
            continue
        if part.startswith("/"):
            raise UnsafeKeyError(f"absolute path refused as storage key: {raw!r}")
        segments.extend(part.rstrip("/").split("/"))
    if not segments:
        raise UnsafeKeyError("empty storage key")
    for segment in segments:
        if segment in ("", ".", "..") or _BAD_CHARS.search(segment):
            raise UnsafeKeyError(
                f"storage key {raw!r} has an empty, '.', '..', control-character "
                "or backslash segment"
            )
        try:
            segment.encode("utf-8")
        except UnicodeEncodeError:
            raise UnsafeKeyError(
                f"storage key {raw!r} is not valid UTF-8 (S3 keys must be; rename the file)"
            ) from None
    return "/".join(segments)


def relative_name(key: str, prefix: str) -> str:
    """The part of `key` under `prefix`, refused when it would leave the prefix."""
    prefix = prefix.strip("/") + "/"
    if not key.startswith(prefix):
        raise UnsafeKeyError(f"{key!r} is not under {prefix!r}")
    name = key[len(prefix) :]
    if name.startswith("/"):
        raise UnsafeKeyError(f"absolute path refused: {key!r}")
    safe_key(name)
    return name


MAX_RECORD_AGE_HOURS = 2
"""The inference log's contract between the servers that write it and the monitor that
reads it: a record is written at most this long after the start of the hour folder it is
written to (`inference/<uc>/<env>/<date>/<hour>/`, the hour of the write); the server drops
older ones at the flush, and the monitor refuses a file holding one."""


class Layout:
    """Storage keys of one use case, as docs/concepts/storage-layout.md lists them."""

    def __init__(self, use_case: str) -> None:
        self.use_case = safe_key(use_case)

    def raw(self, batch_id: str, name: str = "") -> str:
        return safe_key("raw", self.use_case, batch_id, name)

    @property
    def raw_catalog(self) -> str:
        """The catalog as one JSON list: read only to migrate a root from before segments."""
        return safe_key("raw", self.use_case, "_catalog.json")

    def catalog_segment(self, name: str = "") -> str:
        return safe_key("raw", self.use_case, "_catalog", name)

    @property
    def catalog_head(self) -> str:
        """A hint of the catalog's last segment, so finding it lists only what follows."""
        return safe_key("raw", self.use_case, "_catalog_head.json")

    def stage_cursor(self, stage: str) -> str:
        """The last catalog segment a DataOps stage processed whole (and its running state)."""
        return safe_key("staged", self.use_case, "_cursors", f"{stage}.json")

    def row_marker(self, content_hash: str = "") -> str:
        """Where a release before the row index kept the first clean row with this content,
        one small object per distinct row: read only to migrate such a root."""
        if not content_hash:
            return safe_key("staged", self.use_case, "_rows")
        return safe_key("staged", self.use_case, "_rows", content_hash[:2], f"{content_hash}.json")

    def row_index(self, name: str = "") -> str:
        """The duplicate index: `head.json` naming its parts (`parts/<sha>.parquet`)."""
        return safe_key("staged", self.use_case, "_row_index", name)

    def clean_work(self, run_id: str, slice_name: str = "", name: str = "") -> str:
        """Where a clean run's slices leave their outputs and claims until its commit step
        publishes them (`clean_slices.py`); removed by that commit."""
        return safe_key("staged", self.use_case, "_clean_work", run_id, slice_name, name)

    @property
    def landing_index(self) -> str:
        """The landing index as one JSON object: read only to migrate an older root."""
        return safe_key("raw", self.use_case, "_landing_index.json")

    def landing_marker(self, name: str) -> str:
        """Where acquire records a landing file's ingested version: one small object per
        file, at a key derived from its name (so any name, however long, has one)."""
        digest = hashlib.sha256(name_bytes(name)).hexdigest()[:32]
        return safe_key("raw", self.use_case, "_landing", digest[:2], f"{digest}.json")

    @property
    def landing_cursor(self) -> str:
        return safe_key("raw", self.use_case, "_landing_cursor.json")

    def quarantine(self, batch_id: str, name: str = "") -> str:
        return safe_key("quarantine", self.use_case, batch_id, name)

    def staged(self, stage: str, batch_id: str, ext: str) -> str:
        return safe_key("staged", self.use_case, stage, f"{batch_id}.{ext}")

    def dataset(self, version: str, name: str = "") -> str:
        return safe_key("datasets", self.use_case, version, name)

    @property
    def dataset_latest(self) -> str:
        return safe_key("datasets", self.use_case, "latest.json")

    def candidate(self, candidate_id: str, name: str = "") -> str:
        return safe_key("candidates", self.use_case, candidate_id, name)

    def trained(self, fingerprint: str) -> str:
        """What became of the candidate trained with these inputs (rejected, or a version)."""
        return safe_key("candidates", self.use_case, "_trained", f"{fingerprint}.json")

    def model(self, version: int | str = "", name: str = "") -> str:
        return safe_key("models", self.use_case, str(version), name)

    @property
    def champion_alias(self) -> str:
        return safe_key("models", self.use_case, "aliases", "champion.json")

    @property
    def feedback_landing(self) -> str:
        """Where feedback files (request_id, label) land."""
        return safe_key("feedback", self.use_case)

    def inference(self, environment: str = "") -> str:
        """The model servers' inference log (serving/inference_log.py writes it)."""
        return safe_key("inference", self.use_case, environment)

    def monitor(self, *parts: str) -> str:
        """The monitor's derived state: hour summaries, references, the feedback index."""
        return safe_key("monitor", self.use_case, *parts)

    def history_entry(self, name: str = "") -> str:
        return safe_key("models", self.use_case, "history", name)
