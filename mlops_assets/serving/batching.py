"""Adaptive micro-batching: concurrent requests for the model share one `predict` call.

When the model is idle a request is predicted at once (no added latency at concurrency 1);
requests that arrive while a call runs queue up and go together in the next one, up to
`max_rows` rows (a request is never split). Predict runs on one dedicated thread: the
models are CPU-bound and vectorised, so one call over many rows beats many calls over a
few, and the event loop stays free for health probes. Each caller gets exactly its own
rows back. When a coalesced call fails, it is bisected (at most `max_bisect_calls` more
calls) until the requests that fail on their own are found: only they fail, with a message
that names no one else's data, and the others are answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np

from mlops_assets.errors import MlopsError

log = logging.getLogger(__name__)


class PredictError(MlopsError, RuntimeError):
    """The model failed on a call this request was part of."""


@dataclass
class _Waiting:
    x: np.ndarray
    future: asyncio.Future
    queued_at: float


class Batcher:
    """Coalesces `submit(x)` calls into `predict(concatenated x)` calls."""

    def __init__(
        self,
        predict: Callable[[np.ndarray], Any],
        *,
        max_rows: int = 256,
        max_wait_seconds: float = 0.0,
        enabled: bool = True,
        inline_rows: int = 0,
        on_batch: Callable[[int, int, float], None] | None = None,
        on_wait: Callable[[float], None] | None = None,
        max_bisect_calls: int = 16,
    ) -> None:
        """`on_batch(requests, rows, seconds)` after each predict call, `on_wait(seconds)`
        with each request's time in the queue (the server's metrics). A call of at most
        `inline_rows` rows runs on the event loop itself, where the model says predict is
        that cheap (the hop to the predict thread costs about as much as an SVC row)."""
        self._predict = predict
        self._max_rows = max_rows
        self._max_wait = max_wait_seconds
        self._enabled = enabled
        self._inline_rows = inline_rows
        self._max_bisect = max_bisect_calls
        self._on_batch = on_batch or (lambda requests, rows, seconds: None)
        self._on_wait = on_wait or (lambda seconds: None)
        self._queue: deque[_Waiting] = deque()
        self._worker: asyncio.Task | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self.calls = 0
        """How many predict calls were made (for tests and the benchmark)."""

    async def submit(self, x: np.ndarray) -> np.ndarray:
        """The predictions of `x`'s rows, in order."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append(_Waiting(x, future, perf_counter()))
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        return await future

    def _take(self) -> list[_Waiting]:
        batch = [self._queue.popleft()]
        rows = len(batch[0].x)
        while self._enabled and self._queue and rows + len(self._queue[0].x) <= self._max_rows:
            rows += len(self._queue[0].x)
            batch.append(self._queue.popleft())
        return batch

    async def _drain(self) -> None:
        while self._queue:
            if self._enabled and self._max_wait:
                rows = sum(len(w.x) for w in self._queue)
                if rows < self._max_rows:
                    await asyncio.sleep(self._max_wait)
            batch = [w for w in self._take() if not w.future.done()]  # a caller may be gone
            if not batch:
                continue
            started = perf_counter()
            for waiting in batch:
                self._on_wait(started - waiting.queued_at)
            failed = await self._answer(batch, [self._max_bisect])
            if failed:
                log.error("predict failed on %d of %d coalesced requests", len(failed), len(batch))
            self._on_batch(len(batch), sum(len(w.x) for w in batch), perf_counter() - started)

    async def _predict_rows(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        if len(x) <= self._inline_rows:  # the thread hop would cost more
            predicted = np.asarray(self._predict(x))
        else:
            loop = asyncio.get_running_loop()
            predicted = np.asarray(await loop.run_in_executor(self._thread, self._predict, x))
        if len(predicted) != len(x):
            raise ValueError(f"{len(predicted)} predictions for {len(x)} rows")
        return predicted

    async def _answer(self, batch: list[_Waiting], budget: list[int]) -> list[_Waiting]:
        """Predict `batch` in one call and hand each caller its rows; on failure, halve it
        while `budget` (calls left, shared by the whole bisection) lasts. The callers that
        failed, each told only that it failed (the operator's log has the rest)."""
        x = batch[0].x if len(batch) == 1 else np.concatenate([w.x for w in batch])
        try:
            predicted = await self._predict_rows(x)
        except Exception:
            if len(batch) > 1 and budget[0] >= 2:
                budget[0] -= 2
                half = len(batch) // 2
                return await self._answer(batch[:half], budget) + await self._answer(
                    batch[half:], budget
                )
            log.exception("predict failed on a call of %d requests", len(batch))
            failure = PredictError("internal server error")
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(failure)
            return batch
        offset = 0
        for waiting in batch:
            rows = len(waiting.x)
            if not waiting.future.done():
                waiting.future.set_result(predicted[offset : offset + rows])
            offset += rows
        return []

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
