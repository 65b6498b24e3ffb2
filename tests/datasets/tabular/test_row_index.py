"""The row index: exact duplicates found without a request per row, kept once by two cleans
at once, a root's per-row markers migrated, and a few requests whatever the history."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest

from mlops_assets.components.tree import load_use_case
from mlops_assets.datasets.tabular import row_markers
from mlops_assets.datasets.tabular.acquire import run_acquire
from mlops_assets.datasets.tabular.catalog import load_catalog
from mlops_assets.datasets.tabular.clean import clean_batches, run_clean
from mlops_assets.datasets.tabular.row_index import Claims, RowIndex, hash_keys
from mlops_assets.storage import Layout
from tests.support.interleaving import schedule, scheduled_storage

LAYOUT = Layout("digits")
HEADER = ",".join([f"pixel_{i}" for i in range(64)] + ["label"])


def row(n: int) -> str:
    """A valid digits row, distinct for each n."""
    pixels = [(n // 17**k) % 17 for k in range(4)] + [3] * 60
    return ",".join(map(str, pixels)) + f",{n % 10}"


def land(storage, name: str, rows: list[int]) -> None:
    body = "\n".join([HEADER, *(row(n) for n in rows)]) + "\n"
    storage.write_bytes(f"landing/digits/{name}", body.encode())


def reasons(storage, batch_id: str) -> dict[int, str]:
    key = LAYOUT.quarantine(batch_id, "rows.parquet")
    if not storage.exists(key):
        return {}
    frame = storage.read_parquet(key)
    return dict(zip(frame["row_number"].tolist(), frame["reason"].tolist(), strict=True))


def kept(storage, batch_id: str) -> list[int]:
    return storage.read_parquet(LAYOUT.staged("clean", batch_id, "parquet"))["row_number"].tolist()


def by_source(storage) -> dict[str, str]:
    return {b["source"]: b["batch_id"] for b in load_catalog(storage, LAYOUT)}


def test_duplicates_within_and_across_batches_and_runs_name_where_they_were_first_seen(storage):
    dataset = load_use_case("digits").blocks.dataset
    land(storage, "a.csv", [1, 2, 2, 3])
    land(storage, "b.csv", [4, 1])
    run_acquire(storage, LAYOUT, "landing/digits")
    run_clean(storage, LAYOUT, dataset)
    ids = by_source(storage)
    assert reasons(storage, ids["a.csv"]) == {3: "exact duplicate of row 2 of a.csv"}
    assert reasons(storage, ids["b.csv"]) == {2: "exact duplicate of row 1 of a.csv"}
    assert kept(storage, ids["a.csv"]) == [1, 2, 4] and kept(storage, ids["b.csv"]) == [1]

    land(storage, "c.csv", [5, 4, 3, 5])  # a later run reads the index back from storage
    run_acquire(storage, LAYOUT, "landing/digits")
    run_clean(storage, LAYOUT, dataset)
    assert reasons(storage, by_source(storage)["c.csv"]) == {
        2: "exact duplicate of row 1 of b.csv",
        3: "exact duplicate of row 4 of a.csv",
        4: "exact duplicate of row 1 of c.csv",
    }
    assert not [i for i in storage.list("staged/digits") if "/_rows/" in i.key]  # no marker


def test_two_cleans_at_once_keep_a_row_once(local_env):
    """A reads the index, B commits first; A loses the swap, finds the row B kept and
    quarantines its copy, naming B's file."""
    dataset = load_use_case("digits").blocks.dataset
    storage = scheduled_storage(local_env / ".mlops")
    land(storage, "a.csv", [1, 7])
    land(storage, "b.csv", [7, 2])
    run_acquire(storage, LAYOUT, "landing/digits")
    batches = {b["source"]: b for b in load_catalog(storage, LAYOUT)}
    schedule(
        {
            "A": ("_row_index/head.json", "B wrote _row_index/head.json"),
            "B": ("_row_index/head.json", "A wrote _row_index/parts/"),
        }
    )
    results = {}

    def clean(name: str, source: str) -> None:
        results[name] = clean_batches(storage, LAYOUT, dataset, [batches[source]])

    threads = [
        threading.Thread(name=n, target=clean, args=(n, s))
        for n, s in (("A", "a.csv"), ("B", "b.csv"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    schedule({})
    assert not any(t.is_alive() for t in threads) and set(results) == {"A", "B"}
    a, b = batches["a.csv"]["batch_id"], batches["b.csv"]["batch_id"]
    assert kept(storage, b) == [1, 2] and kept(storage, a) == [1]
    assert reasons(storage, a) == {2: "exact duplicate of row 1 of b.csv"}
    index = RowIndex(storage, LAYOUT)
    index.refresh()
    assert index.rows == 3  # rows 1, 7 and 2, each once


def old_root(storage) -> dict[str, str]:
    """What a release before the row index left: a marker per kept row, no index."""
    for info in storage.list("staged/digits/_row_index"):
        storage.delete(info.key)
    markers = {}
    for batch in load_catalog(storage, LAYOUT):
        clean = storage.read_parquet(LAYOUT.staged("clean", batch["batch_id"], "parquet"))
        for digest, number in zip(clean["content_hash"], clean["row_number"], strict=True):
            marker = {"batch_id": batch["batch_id"], "row": int(number), "file": batch["source"]}
            storage.write_json(LAYOUT.row_marker(digest), marker)
            markers[digest] = f"row {number} of {batch['source']}"
    return markers


def test_a_root_with_row_markers_migrates_them_resumably_and_keeps_its_answers(
    storage, monkeypatch
):
    dataset = load_use_case("digits").blocks.dataset
    land(storage, "a.csv", [1, 2, 3, 4, 5])
    land(storage, "b.csv", [6, 7, 8])
    run_acquire(storage, LAYOUT, "landing/digits")
    run_clean(storage, LAYOUT, dataset)
    markers = old_root(storage)
    assert len(markers) == 8

    monkeypatch.setattr(row_markers, "CHUNK", 3)
    real = row_markers._advance
    steps = []

    def cut_short(storage_, key, state, token, wanted):
        if len(steps) == 2:
            raise KeyboardInterrupt("killed after two chunks")
        steps.append(wanted)
        return real(storage_, key, state, token, wanted)

    monkeypatch.setattr(row_markers, "_advance", cut_short)
    land(storage, "c.csv", [9, 7, 2])
    run_acquire(storage, LAYOUT, "landing/digits")
    with pytest.raises(KeyboardInterrupt):
        run_clean(storage, LAYOUT, dataset)
    state = storage.read_json(LAYOUT.row_index("migration.json"))
    assert state["phase"] == "read" and len(state["parts"]) == 2  # two chunks of three
    assert len([i for i in storage.list("staged/digits/_rows")]) == 8  # nothing deleted yet

    monkeypatch.setattr(row_markers, "_advance", real)
    run_clean(storage, LAYOUT, dataset)
    c = by_source(storage)["c.csv"]
    assert reasons(storage, c) == {
        2: "exact duplicate of row 2 of b.csv",
        3: "exact duplicate of row 2 of a.csv",
    }
    assert storage.list("staged/digits/_rows") == []  # deleted once verified
    assert not storage.exists(LAYOUT.row_index("migration.json"))
    index = RowIndex(storage, LAYOUT)
    index.refresh()
    assert index.rows == 9 and index.head["markers_migrated"]
    hi, lo = hash_keys(markers)
    answers = [f"row {w[1]} of {w[2]}" for w in index.lookup(hi, lo)]
    assert answers == list(markers.values())  # every migrated row, at its marker's place


@pytest.mark.slow
@pytest.mark.parametrize("storage_env", ["s3"], indirect=True)
def test_the_duplicate_check_of_100k_rows_on_10m_of_history_costs_a_few_requests(
    storage, monkeypatch
):
    """10M rows of history in the index (as the bench builds it), 100k new rows: the requests
    to the index's keys during clean are counted, by operation."""
    from botocore.client import BaseClient

    dataset = load_use_case("digits").blocks.dataset
    history = 10_000_000
    rng = np.random.default_rng(0)
    claims = Claims()
    claims.add(
        rng.integers(0, 2**63, history, dtype=np.uint64),
        rng.integers(0, 2**32, history, dtype=np.uint64).astype(np.uint32),
        "history",
        "history.parquet",
        np.arange(1, history + 1),
    )
    index = RowIndex(storage, LAYOUT)
    index.refresh()
    index.markers_migrated = True
    index.commit(claims.part())
    del claims, index
    land(storage, "new.csv", list(range(100_000)))
    run_acquire(storage, LAYOUT, "landing/digits")

    calls: Counter[str] = Counter()
    real = BaseClient._make_api_call

    def counting(self, operation, params):
        keys = [params.get("Key", ""), params.get("Prefix", "")]
        keys += [o["Key"] for o in params.get("Delete", {}).get("Objects", [])]
        if any("_row_index/" in k or "/_rows" in k for k in keys):
            calls[operation] += 1
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    result = run_clean(storage, LAYOUT, dataset)
    monkeypatch.undo()
    (batch,) = result.batches
    assert batch["rows"] == 100_000 and batch["clean"] + batch["quarantined"] == 100_000
    assert sum(calls.values()) <= 10, calls
    index = RowIndex(storage, LAYOUT)
    index.refresh()
    assert index.rows == history + batch["clean"]


@pytest.mark.parametrize("record", ["head.json", "migration.json"])
def test_an_index_record_naming_other_objects_is_refused_and_deletes_nothing(local_env, record):
    """Someone who can write the bucket rewrites the head (or a migration's record) to name
    an object elsewhere: clean refuses it, naming the record, and the object stays."""
    from mlops_assets.datasets.tabular.row_index import RowIndexError
    from mlops_assets.storage.local import LocalStorage

    storage = LocalStorage(root=str(local_env / ".mlops"))
    dataset = load_use_case("digits").blocks.dataset
    victim = "models/digits/1/model.skops"
    storage.write_bytes(victim, b"a released model")
    land(storage, "a.csv", [1, 2])
    run_acquire(storage, LAYOUT, "landing/digits")
    if record == "head.json":
        run_clean(storage, LAYOUT, dataset)
        head = storage.read_json(LAYOUT.row_index("head.json"))
        head["delta"]["key"] = victim
        storage.write_json(LAYOUT.row_index("head.json"), head)
        land(storage, "b.csv", [3])
        run_acquire(storage, LAYOUT, "landing/digits")
    else:
        storage.write_json(LAYOUT.row_marker("ab" * 12), {"batch_id": "x", "row": 1, "file": "f"})
        state = {"phase": "delete", "after": "", "parts": [victim], "rows": 0, "deleted_after": ""}
        storage.write_json(LAYOUT.row_index("migration.json"), state)
    with pytest.raises(RowIndexError, match=record):
        run_clean(storage, LAYOUT, dataset)
    assert storage.read_bytes(victim) == b"a released model"
