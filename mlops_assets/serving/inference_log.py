"""The inference log: what the deployed model was asked and what it answered, written by
the model server to the object storage as Parquet, for the monitor and for feedback.

Records are buffered in memory and flushed by a background task when the buffer holds
`flush_rows` records or its oldest is `flush_seconds` old, to
`inference/<use case>/<environment>/<date>/<hour>/<server id>-<sequence>.parquet`. Logging
never blocks or fails a request: the buffer is bounded, and when it is full the oldest
records are dropped and counted; when the storage is down the flush is retried with
backoff and the records stay buffered (within the bound). Each file is written whole
(the storage writes atomically: a rename locally, one PUT on S3), so a killed server loses
at most its buffer, never leaves half a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import BytesIO
from time import monotonic
from typing import Any, Literal

import numpy as np

from mlops_assets.storage import ObjectStorage

log = logging.getLogger(__name__)
InputMode = Literal["full", "summary", "none"]


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


def inference_prefix(use_case: str, environment: str) -> str:
    return f"inference/{use_case}/{environment}"


@dataclass
class Record:
    request_id: str
    time: datetime
    model_version: str
    row: int
    prediction: int
    latency_ms: float
    inputs: list[float] | None = None
    summary: tuple[float, float, float, float] | None = None


@dataclass
class InferenceLog:
    storage: ObjectStorage
    use_case: str
    environment: str
    settings: LogSettings
    server_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    buffer: deque[Record] = field(default_factory=deque)
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
        self, request_id: str, version: str, x: np.ndarray, predicted: np.ndarray, ms: float
    ) -> None:
        """Add a request's rows; never raises, never waits."""
        try:
            now = datetime.now(UTC)
            rows = np.asarray(x, dtype="float32").reshape(len(x), -1)
            for i, prediction in enumerate(np.asarray(predicted).ravel()):
                record = Record(request_id, now, version, i, int(prediction), ms)
                if self.settings.inputs == "full":
                    record.inputs = rows[i].tolist()
                elif self.settings.inputs == "summary":
                    values = rows[i][~np.isnan(rows[i])]
                    record.summary = (
                        (
                            float(values.mean()),
                            float(values.std()),
                            float(values.min()),
                            float(values.max()),
                        )
                        if len(values)
                        else (np.nan, np.nan, np.nan, np.nan)
                    )
                self._append(record)
        except Exception:  # a logging failure must not reach the caller
            log.exception("inference log: a record could not be made")
        if self._wake is not None and len(self.buffer) >= self.settings.flush_rows:
            self._wake.set()

    def _append(self, record: Record) -> None:
        if len(self.buffer) >= self.settings.max_buffer_rows:
            self.buffer.popleft()
            self._dropped(1)
        if not self.buffer:
            self._oldest = monotonic()
        self.buffer.append(record)

    def _dropped(self, count: int) -> None:
        if self.dropped == 0 or self.dropped % 10_000 == 0:
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
        records = []
        while self.buffer:  # popleft is atomic: the event loop may append meanwhile
            records.append(self.buffer.popleft())
        if not records:
            return 0
        try:
            key = self.key(records[0].time, self._sequence)
            self.storage.write_bytes(key, self._parquet(records))
        except Exception:
            self.buffer.extendleft(reversed(records))
            excess = len(self.buffer) - self.settings.max_buffer_rows
            for _ in range(max(0, excess)):
                self.buffer.popleft()
            if excess > 0:
                self._dropped(excess)
            raise
        self._sequence += 1
        self._oldest = monotonic() if self.buffer else None
        self.written += len(records)
        self.files += 1
        return len(records)

    def _parquet(self, records: list[Record]) -> bytes:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns: dict[str, Any] = {
            "request_id": [r.request_id for r in records],
            "time": pa.array([r.time for r in records], pa.timestamp("us", tz="UTC")),
            "model_name": [self.use_case] * len(records),
            "model_version": [r.model_version for r in records],
            "environment": [self.environment] * len(records),
            "row": pa.array([r.row for r in records], pa.int32()),
            "prediction": pa.array([r.prediction for r in records], pa.int64()),
            "latency_ms": pa.array([r.latency_ms for r in records], pa.float32()),
        }
        if self.settings.inputs == "full":
            columns["inputs"] = pa.array([r.inputs for r in records], pa.list_(pa.float32()))
        elif self.settings.inputs == "summary":
            for i, name in enumerate(("input_mean", "input_std", "input_min", "input_max")):
                columns[name] = pa.array(
                    [r.summary[i] if r.summary else None for r in records], pa.float32()
                )
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
                len(self.buffer) >= self.settings.flush_rows
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
                    "inference log: the last flush failed; %d records lost", len(self.buffer)
                )


def log_settings_of(config, environ=None) -> LogSettings:
    """The use case's `inference_log:` block with the environment's overrides
    (MLOPS_INFERENCE_LOG_<NAME>), checked as the YAML's are."""
    from mlops_assets.settings import overridden

    checked = overridden(config, "MLOPS_INFERENCE_LOG_", "inference_log", environ)
    return LogSettings(**checked.model_dump())
