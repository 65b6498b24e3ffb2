"""The training input pipeline: ready batches from a split, the same for the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_assets.core.batches import Batches
from mlops_assets.core.split_data import SplitData


def split_of(rows: int, shard: int, fail: str = "") -> SplitData:
    """`rows` examples whose features hold their own index, in shards of `shard`."""
    keys = [f"shard-{i:03d}" for i in range(-(-rows // shard))]

    def load(key: str):
        if key == fail:
            raise ValueError(f"{key}: not a readable shard")
        start = keys.index(key) * shard
        index = np.arange(start, min(start + shard, rows))
        return np.repeat(index[:, None, None], 6, axis=2).astype("float32"), index % 5

    return SplitData(
        name="train", classes=list(range(5)), item_shape=[1, 6], rows=rows, _load=load, _shards=keys
    )


@pytest.mark.parametrize("in_memory_mb", [100.0, 0.0], ids=["in-memory", "streamed"])
def test_each_epoch_holds_every_example_once_in_a_seeded_order(in_memory_mb):
    split = split_of(1000, 64)
    batches = Batches(split, batch_size=32, seed=7, in_memory_mb=in_memory_mb, shuffle_buffer=200)
    assert batches.in_memory == (in_memory_mb > 0)

    def seen(epoch: int) -> list[np.ndarray]:
        return [x[:, 0, 0].astype(int) for x, _ in batches.epoch(epoch)]

    first, again, second = seen(0), seen(0), seen(1)
    assert len(first) == len(batches) == 32
    assert sorted(np.concatenate(first).tolist()) == list(range(1000))  # each once
    for x, y in batches.epoch(0):
        assert (y == x[:, 0, 0].astype(int) % 5).all()  # labels travel with their rows
    assert all((a == b).all() for a, b in zip(first, again, strict=True))  # same seed
    assert any((a != b).any() for a, b in zip(first, second, strict=True))  # next epoch
    assert np.concatenate(first).tolist() != list(range(1000))  # shuffled
    other = Batches(split, batch_size=32, seed=8, in_memory_mb=in_memory_mb, shuffle_buffer=200)
    (x, _), *_ = other.epoch(0)
    assert (x[:, 0, 0].astype(int) != first[0]).any()  # another seed, other batches


def test_streamed_batches_shuffle_across_shards_within_a_bounded_window():
    batches = Batches(split_of(1000, 50), batch_size=25, seed=1, in_memory_mb=0, shuffle_buffer=100)
    order = np.concatenate([x[:, 0, 0] for x, _ in batches.epoch(0)]).astype(int)
    shards = order // 50
    assert len(set(shards[:25].tolist())) > 1  # a batch mixes shards
    assert max(len(set(shards[i : i + 25].tolist())) for i in range(0, 1000, 25)) <= 5


def test_unshuffled_batches_keep_the_split_order():
    batches = Batches(split_of(100, 30), batch_size=40, shuffle=False, in_memory_mb=0)
    order = np.concatenate([x[:, 0, 0] for x, _ in batches.epoch(3)]).astype(int)
    assert order.tolist() == list(range(100))


def test_a_shard_that_cannot_be_read_fails_the_epoch_naming_it():
    batches = Batches(split_of(500, 50, fail="shard-004"), batch_size=50, in_memory_mb=0)
    with pytest.raises(ValueError, match="shard-004: not a readable shard"):
        list(batches.epoch(0))
