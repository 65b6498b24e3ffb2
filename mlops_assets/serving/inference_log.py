"""The inference log: what the deployed model was asked and what it answered, written by
the model server to the object storage as Parquet, for the monitor and for feedback.

Records are buffered in memory and flushed by a background task when the buffer holds
`flush_rows` records or its oldest is `flush_seconds` old, to
`inference/<use case>/<environment>/<date>/<hour>/<server id>-<sequence>.parquet`, where
date and hour are those of the write (not of the records, which may have waited out a
storage outage): the monitor finds new files by listing the last hours only. Logging
never blocks or fails a request: the buffer is bounded, and when it is full the oldest
records are dropped and counted; when the storage is down the flush is retried with
backoff and the records stay buffered (within the bound). Each file is written whole
(the storage writes atomically: a rename locally, one PUT on S3), so a killed server loses
at most its buffer, never leaves half a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
import warnings
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from time import monotonic, time
from typing import Any, Literal

import numpy as np

from mlops_assets.settings import overridden
from mlops_assets.storage import ObjectStorage
from mlops_assets.storage.keys import MAX_RECORD_AGE_HOURS

log = logging.getLogger(__name__)
InputMode = Literal["full", "summary", "none"]
CHUNK_OVERHEAD_BYTES = 256
"""What a buffered record costs besides its arrays and ids (the object, its fields)."""


@dataclass(frozen=True)
class LogSettings:
    enabled: bool = False
    sample: float = 1.0
    """The share of answered requests that is recorded (0..1)."""
    inputs: InputMode = "full"
    """full: every value of the model's input; summary: per-row mean, std, min, max (for
    large tensors such as LSFB clips); none: no inputs."""
    flush_rows: int = 1000
    flush_seconds: float = 10.0
    max_buffer_rows: int = 100_000
    max_buffer_mb: float = 64.0
    """The buffer's bound in bytes too: a storage outage never holds more than this."""


def _predictions(values: np.ndarray) -> Any:
    """The prediction column in the label's type: class ids (int64), targets (float64) or
    class names (text)."""
    import pyarrow as pa

    if values.dtype == object or values.dtype.kind in "US":
        return pa.array([str(v) for v in values], pa.string())
    if values.dtype.kind == "f":
        return pa.array(values.astype("float64"))
    return pa.array(values.astype("int64"))


def inference_prefix(use_case: str, environment: str) -> str:
    return f"inference/{use_case}/{environment}"


@dataclass(frozen=True)
class Chunk:
    """One answered request, as it was handed over: its rows stay one array until a flush
    turns many chunks into columns (the request path does no per-row work)."""

    request_id: str
    """The server's id of the request (unique: what feedback joins on)."""
    time: float
    model_version: str
    predicted: np.ndarray
    latency_ms: float
    inputs: np.ndarray | None
    """[rows, values] in `full` mode, [rows, 4] (mean, std, min, max) in `summary` mode."""
    error: bool = False
    """The model failed on it (the caller got a 500): the monitor's error rate."""
    client_id: str = ""
    """The caller's own OIP `id` (validated: at most 128 printable ASCII), kept as data."""

    @property
    def rows(self) -> int:
        return len(self.predicted)

    @property
    def nbytes(self) -> int:
        arrays = _array_bytes(self.predicted) + (
            0 if self.inputs is None else _array_bytes(self.inputs)
        )
        return arrays + len(self.request_id) + len(self.client_id) + CHUNK_OVERHEAD_BYTES


def _array_bytes(values: np.ndarray) -> int:
    """What an array holds in bytes: an array of text (a table's rows as JSON, class names)
    counts its characters, not its pointers."""
    if values.dtype != object:
        return int(values.nbytes)
    return int(values.nbytes) + sum(len(str(v)) for v in values.ravel())


@dataclass
class InferenceLog:
    storage: ObjectStorage
    use_case: str
    environment: str
    settings: LogSettings
    server_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    buffer: deque[Chunk] = field(default_factory=deque)
    buffered: int = 0
    """Rows in the buffer."""
    buffered_bytes: int = 0
    dropped: int = 0
    written: int = 0
    files: int = 0
    on_drop: Any = None
    """Called with the number of records dropped (the server's Prometheus counter)."""
    _sequence: int = 0
    _oldest: float | None = None
    _wake: asyncio.Event | None = None
    _task: asyncio.Task | None = None

    @property
    def prefix(self) -> str:
        return inference_prefix(self.use_case, self.environment)

    def wants(self) -> bool:
        """Whether this request is recorded (the sampled share)."""
        if not self.settings.enabled:
            return False
        return self.settings.sample >= 1 or random.random() < self.settings.sample

    def record(
        self,
        request_id: str,
        version: str,
        x: np.ndarray,
        predicted: np.ndarray | None,
        ms: float,
        *,
        error: bool = False,
        client_id: str = "",
    ) -> None:
        """Add a request's rows (`predicted` None and `error` for a request the model failed
        on); never raises, never waits."""
        try:
            inputs = None
            if self.settings.inputs != "none" and np.asarray(x).dtype == object:
                # a table's rows as they were sent (text, numbers, nulls): one JSON list each
                if self.settings.inputs == "full":
                    inputs = np.array([json.dumps(row.tolist()) for row in x], dtype=object)
            elif self.settings.inputs != "none":
                rows = np.asarray(x).reshape(len(x), -1)
                inputs = rows if self.settings.inputs == "full" else row_summary(rows)
            predicted = (
                np.full(len(x), -1, "int64") if predicted is None else np.asarray(predicted).ravel()
            )
            chunk = Chunk(request_id, time(), version, predicted, ms, inputs, error, client_id)
            self._append(chunk)
        except Exception:  # a logging failure must not reach the caller
            log.exception("inference log: a record could not be made")
            return
        if self._wake is not None and self.buffered >= self.settings.flush_rows:
            self._wake.set()

    def _append(self, chunk: Chunk) -> None:
        if not self.buffer:
            self._oldest = monotonic()
        self.buffer.append(chunk)
        self.buffered += chunk.rows
        self.buffered_bytes += chunk.nbytes
        self._bound()

    def _bound(self) -> None:
        """Drop the oldest requests while the buffer holds more rows or bytes than allowed."""
        excess = 0
        limit = self.settings.max_buffer_mb * 1024 * 1024
        while self.buffer and (
            self.buffered > self.settings.max_buffer_rows or self.buffered_bytes > limit
        ):
            oldest = self.buffer.popleft()
            self.buffered -= oldest.rows
            self.buffered_bytes -= oldest.nbytes
            excess += oldest.rows
        if excess:
            self._dropped(excess)

    def _dropped(self, count: int) -> None:
        if self.dropped == 0 or self.dropped // 10_000 != (self.dropped + count) // 10_000:
            log.warning("inference log: buffer full, dropping the oldest records")
        self.dropped += count
        if self.on_drop is not None:
            self.on_drop(count)

    # -- writing ----------------------------------------------------------------------------

    def key(self, when: datetime, sequence: int) -> str:
        return (
            f"{inference_prefix(self.use_case, self.environment)}/{when:%Y-%m-%d}/{when:%H}/"
            f"{self.server_id}-{sequence:06d}.parquet"
        )

    def flush(self) -> int:
        """Write what is buffered as one file (blocking; the task calls it on a thread).
        Raises when the storage fails, with the records back in the buffer (the oldest
        dropped and counted where the bound is reached meanwhile)."""
        chunks = []
        while self.buffer:  # popleft is atomic: the event loop may append meanwhile
            chunk = self.buffer.popleft()
            self.buffered -= chunk.rows
            self.buffered_bytes -= chunk.nbytes
            chunks.append(chunk)
        when = datetime.now(UTC)  # the write's hour: where the monitor looks for it
        # the hour folder's start, less the age the monitor allows: older records are dropped
        oldest = when.replace(minute=0, second=0, microsecond=0).timestamp()
        oldest -= MAX_RECORD_AGE_HOURS * 3600
        stale = sum(c.rows for c in chunks if c.time < oldest)
        if stale:
            chunks = [c for c in chunks if c.time >= oldest]
            self._dropped(stale)
        if not chunks:
            self._oldest = monotonic() if self.buffer else None
            return 0
        rows = sum(c.rows for c in chunks)
        try:
            self.storage.write_bytes(self.key(when, self._sequence), self._parquet(chunks))
        except Exception:
            self.buffer.extendleft(reversed(chunks))
            self.buffered += rows
            self.buffered_bytes += sum(c.nbytes for c in chunks)
            self._bound()
            raise
        self._sequence += 1
        self._oldest = monotonic() if self.buffer else None
        self.written += rows
        self.files += 1
        return rows

    def _parquet(self, chunks: list[Chunk]) -> bytes:
        """The chunks as columns, built with array operations (this runs on a thread, and
        what holds the GIL here holds up the event loop)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        counts = np.fromiter((c.rows for c in chunks), dtype="int64", count=len(chunks))
        total = int(counts.sum())
        starts = np.repeat(np.cumsum(counts) - counts, counts)

        def per_row(values, dtype) -> pa.Array:
            return pa.array(np.repeat(np.asarray(values, dtype=object), counts), dtype)

        times = np.repeat(
            (np.fromiter((c.time for c in chunks), "float64", len(chunks)) * 1e6).astype("int64"),
            counts,
        )
        columns: dict[str, Any] = {
            "request_id": per_row([c.request_id for c in chunks], pa.string()),
            "client_id": per_row([c.client_id for c in chunks], pa.string()),
            "time": pa.array(times, pa.timestamp("us", tz="UTC")),
            "model_name": pa.array([self.use_case] * total, pa.string()),
            "model_version": per_row([c.model_version for c in chunks], pa.string()),
            "environment": pa.array([self.environment] * total, pa.string()),
            "row": pa.array((np.arange(total) - starts).astype("int32")),
            "prediction": _predictions(np.concatenate([c.predicted for c in chunks])),
            "latency_ms": pa.array(
                np.repeat(np.fromiter((c.latency_ms for c in chunks), "float32"), counts)
            ),
            "error": pa.array(np.repeat(np.fromiter((c.error for c in chunks), bool), counts)),
        }
        rows_as_text = [c for c in chunks if c.inputs is not None and c.inputs.dtype == object]
        if self.settings.inputs == "full" and rows_as_text:
            columns["inputs_json"] = pa.array(
                np.concatenate([c.inputs for c in chunks]).tolist(), pa.string()
            )
        elif self.settings.inputs == "full":
            values = np.concatenate([c.inputs for c in chunks]).astype("float32", copy=False)
            width = values.shape[1]
            offsets = pa.array(np.arange(0, total * width + 1, width, dtype="int32"))
            columns["inputs"] = pa.ListArray.from_arrays(offsets, pa.array(values.ravel()))
        elif self.settings.inputs == "summary":
            stats = np.concatenate([c.inputs for c in chunks]).astype("float32", copy=False)
            for i, name in enumerate(("input_mean", "input_std", "input_min", "input_max")):
                columns[name] = pa.array(stats[:, i], from_pandas=True)
        buffer = BytesIO()
        pq.write_table(pa.table(columns), buffer)
        return buffer.getvalue()

    async def run(self) -> None:
        """Flush by size or age until cancelled; retry a failed flush with backoff."""
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        backoff = 0.5
        while True:
            age = monotonic() - self._oldest if self._oldest is not None else 0.0
            wait = max(0.05, self.settings.flush_seconds - age)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()
            due = self._oldest is not None and (
                self.buffered >= self.settings.flush_rows
                or monotonic() - self._oldest >= self.settings.flush_seconds
            )
            if not due:
                continue
            try:
                await loop.run_in_executor(None, self.flush)
                backoff = 0.5
            except Exception as error:
                log.warning(
                    "inference log: writing to the storage failed (%s); retrying in %.1f s",
                    type(error).__name__,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    def start(self) -> None:
        if self.settings.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def close(self) -> None:
        """Stop the task and write what is left (SIGTERM: before the process exits)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.buffer:
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.flush)
            except Exception:
                log.exception(
                    "inference log: the last flush failed; %d records lost", self.buffered
                )


def row_summary(rows: np.ndarray) -> np.ndarray:
    """Per row: mean, std, min, max over the values that are not NaN (NaN for none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN row is NaN, not a warning
        values = np.asarray(rows, dtype="float64")
        return np.stack(
            [
                np.nanmean(values, 1),
                np.nanstd(values, 1),
                np.nanmin(values, 1),
                np.nanmax(values, 1),
            ],
            axis=1,
        )


def log_settings_of(config, environ=None) -> LogSettings:
    """The use case's `inference_log:` block with the environment's overrides
    (MLOPS_INFERENCE_LOG_<NAME>), checked as the YAML's are."""
    checked = overridden(config, "MLOPS_INFERENCE_LOG_", "inference_log", environ)
    return LogSettings(**checked.model_dump())
