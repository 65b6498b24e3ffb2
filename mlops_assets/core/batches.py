"""Ready training batches from a split, fast enough to keep an accelerator busy.

A Python generator that yields one example at a time (then unbatched, shuffled and
batched again by tf.data) delivers a few thousand samples a second on a small machine;
an accelerator consumes tens of thousands. So batches are cut from arrays, in numpy:

- a split that fits `in_memory_mb` is read once into one array, and each epoch is a
  seeded permutation of it, gathered batch by batch;
- a larger split is read shard by shard in an order a seeded shuffle decides, by a
  background thread that stays `read_ahead` shards ahead, and shuffled within a window
  of at least `shuffle_buffer` examples (bounded memory, as a tf.data shuffle buffer).

The same seed gives the same batches, epoch by epoch. Only numpy: the loader feeds any
Keras backend and imports none of them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from time import perf_counter

import numpy as np

from mlops_assets.core.split_data import SplitData

Batch = tuple[np.ndarray, np.ndarray]


@dataclass
class Batches:
    split: SplitData
    batch_size: int
    seed: int = 0
    shuffle: bool = True
    in_memory_mb: float = 2048.0
    """A split up to this size is held in memory (its features, float32)."""
    shuffle_buffer: int = 4096
    read_ahead: int = 2
    waited: float = field(default=0.0, init=False)
    """Seconds a consumer of `forever` waited for its next batch: how far the input
    pipeline held training back."""
    _arrays: Batch | None = field(default=None, init=False, repr=False)

    def __len__(self) -> int:
        return -(-self.split.rows // self.batch_size)

    @property
    def in_memory(self) -> bool:
        item = int(np.prod(self.split.item_shape)) * 4
        return self.split.rows * item <= self.in_memory_mb * 2**20

    def epoch(self, number: int = 0) -> Iterator[Batch]:
        """The batches of epoch `number`: the same for the same seed and number."""
        rng = np.random.default_rng([self.seed, number])
        if self.in_memory:
            yield from self._from_memory(rng)
        else:
            yield from self._streamed(rng)

    def forever(self) -> Iterator[Batch]:
        """Epoch after epoch, for `fit(..., steps_per_epoch=len(batches))`."""
        number = 0
        while True:
            batches = self.epoch(number)
            while True:
                began = perf_counter()
                item = next(batches, None)
                self.waited += perf_counter() - began
                if item is None:
                    break
                yield item
            number += 1

    def arrays(self) -> Batch:
        """The whole split as two arrays, read once into a preallocated array (not a list of
        shards then a copy: half the peak memory)."""
        if self._arrays is None:
            x = np.empty((self.split.rows, *self.split.item_shape), dtype="float32")
            y = np.empty(self.split.rows, dtype="int64")
            at = 0
            for xs, ys in self.split.chunks():
                x[at : at + len(xs)] = xs
                y[at : at + len(ys)] = ys
                at += len(xs)
            self._arrays = (x[:at], y[:at])
        return self._arrays

    def _from_memory(self, rng: np.random.Generator) -> Iterator[Batch]:
        x, y = self.arrays()
        order = rng.permutation(len(x)) if self.shuffle else np.arange(len(x))
        for start in range(0, len(order), self.batch_size):
            picked = order[start : start + self.batch_size]
            if self.shuffle:  # a random set, gathered in memory order (faster); the order
                picked = np.sort(picked)  # within a batch changes no gradient
            yield x[picked], y[picked]

    def _streamed(self, rng: np.random.Generator) -> Iterator[Batch]:
        shards = list(self.split._shards)
        if self.shuffle:
            shards = [shards[i] for i in rng.permutation(len(shards))]
        pending_x: list[np.ndarray] = []
        pending_y: list[np.ndarray] = []
        held = 0
        for xs, ys in _read_ahead(self.split, shards, self.read_ahead):
            pending_x.append(xs)
            pending_y.append(ys)
            held += len(xs)
            if held < self.shuffle_buffer + self.batch_size:
                continue
            x, y = np.concatenate(pending_x), np.concatenate(pending_y)
            order = rng.permutation(len(x)) if self.shuffle else np.arange(len(x))
            whole = (len(x) // self.batch_size) * self.batch_size
            yield from self._gathered(x, y, order[:whole])
            rest = np.sort(order[whole:])  # what no batch took waits for the next window
            pending_x, pending_y = [x[rest]], [y[rest]]
            held = len(rest)
        if held:
            x, y = np.concatenate(pending_x), np.concatenate(pending_y)
            order = rng.permutation(len(x)) if self.shuffle else np.arange(len(x))
            yield from self._gathered(x, y, order)

    def _gathered(self, x: np.ndarray, y: np.ndarray, order: np.ndarray) -> Iterator[Batch]:
        """Batches of `order`'s rows, each gathered in memory order, as from memory: one
        copy of a batch rather than a permuted copy of the whole window first."""
        for start in range(0, len(order), self.batch_size):
            picked = order[start : start + self.batch_size]
            if self.shuffle:
                picked = np.sort(picked)
                yield x[picked], y[picked]
            else:
                yield x[picked[0] : picked[-1] + 1], y[picked[0] : picked[-1] + 1]


def _read_ahead(split: SplitData, shards: list[str], depth: int) -> Iterator[Batch]:
    """The shards' arrays in this order, read by a background thread `depth` ahead (reading
    and decompressing release the GIL, so it overlaps with the consumer's step)."""
    ready: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def read() -> None:
        try:
            for shard in shards:
                if stop.is_set():
                    return
                ready.put(split._load(shard))
            ready.put(done)
        except BaseException as error:  # handed to the consumer, raised there
            ready.put(error)

    thread = threading.Thread(target=read, name="shard-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a reader waiting on a full queue
            try:
                ready.get_nowait()
            except queue.Empty:
                thread.join(0.05)
