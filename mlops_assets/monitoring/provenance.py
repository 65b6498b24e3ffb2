"""What a log file may claim: only what its key and git vouch for.

The storage grants each model server write access to `inference/<uc>/<its environment>/`
only, so the key is the one thing about a log file its writer could not choose freely. A
file is believed when every row agrees with its key (the environment is the folder's, every
record's time lies between MAX_RECORD_AGE_HOURS before the folder's hour and that hour's
end) and names a model version that git deployed to that environment (the registry's own
records are no evidence: whoever can write the bucket can forge them). Otherwise the whole
file is refused with its reason. The file's bytes are bounded too: its size on storage, the
sizes its footer declares (a pre-filter only: the writer wrote them) and the bytes it
decodes to, counted batch by batch, each against one budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from io import BytesIO
from typing import TYPE_CHECKING

from mlops_assets.errors import MlopsError
from mlops_assets.gitops.repository import GitOpsRepo
from mlops_assets.storage import ObjectInfo, ObjectStorage
from mlops_assets.storage.keys import MAX_RECORD_AGE_HOURS

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_MAX_FILE_MB = 256
"""The decoded bytes one log or labelled file may cost the monitor (monitor.max_file_mb)."""
BATCH_ROWS = 4096


class RefusedFile(MlopsError, ValueError):
    """A log file the monitor does not believe or cannot afford; the reason names the key."""


@dataclass(frozen=True)
class DeployedVersions:
    """The versions git deployed, per environment, and where that was read."""

    by_environment: Mapping[str, frozenset[str]] = field(default_factory=dict)
    source: str = ""

    def of(self, environment: str) -> frozenset[str]:
        return self.by_environment.get(environment, frozenset())


def read_deployed(repo: GitOpsRepo, use_case: str) -> DeployedVersions:
    """From the GitOps repository, read with the reader's credential (`repo.read_only`)."""
    return DeployedVersions(repo.deployed_versions(use_case), repo._where())


def folder_of(key: str) -> tuple[str, str] | None:
    """(environment, "YYYY-MM-DDTHH") of `inference/<uc>/<env>/<date>/<HH>/<file>.parquet`."""
    parts = key.split("/")
    if len(parts) != 6 or not key.endswith(".parquet"):
        return None
    return parts[2], f"{parts[3]}T{parts[4]}"


def provenance_problem(frame: pd.DataFrame, key: str, deployed: DeployedVersions) -> str | None:
    """Why the rows of the log file at `key` are not believed, or None."""
    import pandas as pd

    where = folder_of(key)
    if where is None:
        return f"{key} is not inference/<use case>/<environment>/<date>/<hour>/<file>.parquet"
    environment, hour = where
    claimed = sorted({str(v) for v in frame["environment"]} - {environment})
    if claimed:
        return (
            f"rows say environment {claimed[0]!r}, but the file was written under "
            f"{environment}/ (a writer of {environment}'s logs speaks for {environment} only)"
        )
    start = pd.Timestamp(datetime.strptime(hour, "%Y-%m-%dT%H"), tz="UTC")
    lowest = start - timedelta(hours=MAX_RECORD_AGE_HOURS)
    end = start + timedelta(hours=1)
    times = pd.to_datetime(frame["time"], utc=True, errors="coerce")
    if times.isna().any():
        return "a record has no valid time"
    if len(times) and (times.min() < lowest or times.max() >= end):
        outside = times.min() if times.min() < lowest else times.max()
        return (
            f"a record's time {outside.isoformat()} is outside the folder's hour {hour} "
            f"(records may be at most {MAX_RECORD_AGE_HOURS} h older than the hour of the "
            "write, and never later)"
        )
    known = deployed.of(environment)
    unknown = sorted({str(v) for v in frame["model_version"]} - known, key=_number)
    if unknown:
        listed = ", ".join(f"v{v}" for v in sorted(known, key=_number)) or "none"
        return (
            f"model version {unknown[0]!r} was never deployed to {environment} by git "
            f"({deployed.source or 'the GitOps repository'} names {listed})"
        )
    return None


def _number(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)


def read_bounded(
    storage: ObjectStorage,
    info: ObjectInfo,
    budget_bytes: int,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """The Parquet file at `info` as a frame, read batch by batch; RefusedFile as soon as its
    stored size, its footer's declared size or what it has decoded so far passes
    `budget_bytes` (a file compressed to a few kilobytes can decode to gigabytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if info.size > budget_bytes:
        raise RefusedFile(
            f"{info.key}: {info.size} bytes stored, over the {budget_bytes}-byte budget"
        )
    data = storage.read_bytes(info.key)
    if len(data) > budget_bytes:  # the listing's size is the storage's; this is what came
        raise RefusedFile(f"{info.key}: {len(data)} bytes, over the {budget_bytes}-byte budget")
    try:
        parquet = pq.ParquetFile(BytesIO(data))
        meta = parquet.metadata
        declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if declared > budget_bytes:
            raise RefusedFile(
                f"{info.key}: its footer declares {declared} decoded bytes, over the "
                f"{budget_bytes}-byte budget"
            )
        names = None if columns is None else [c for c in columns if c in parquet.schema_arrow.names]
        batches, decoded = [], 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=names):
            decoded += batch.nbytes
            if decoded > budget_bytes:
                raise RefusedFile(
                    f"{info.key}: decodes to more than the {budget_bytes}-byte budget "
                    f"(stopped after {decoded} bytes)"
                )
            batches.append(batch)
        schema = (
            parquet.schema_arrow
            if names is None
            else pa.schema([parquet.schema_arrow.field(n) for n in names])
        )
        table = pa.Table.from_batches(batches, schema=schema)
    except RefusedFile:
        raise
    except Exception as error:
        raise RefusedFile(f"{info.key}: not a readable Parquet file ({error})") from error
    return table.to_pandas()
