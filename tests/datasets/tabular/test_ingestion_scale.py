"""Ingestion at scale: a tick and an acquire cost what is new, not what ever landed.

Storage calls are counted (a counting wrapper on the local default, every botocore API
call on S3) and compared between a small and a larger history: they must not grow.
"""

from __future__ import annotations

import json
from collections import Counter

import dagster as dg
import pytest

from mlops_assets.datasets.tabular.acquire import run_acquire
from mlops_assets.datasets.tabular.catalog import load_catalog, segment_names
from mlops_assets.datasets.tabular.landing_index import read_markers
from mlops_assets.demo.digits_data import seed_digits
from mlops_assets.storage import Layout, ObjectStorage
from tests.support.aws import count_aws_requests
from tests.support.use_cases import digits_with, use_case_definitions

LAYOUT = Layout("digits")
HEADER = ",".join([f"pixel_{i}" for i in range(64)] + ["label"])

CALLS: Counter[str] = Counter()
"""What the storage was asked, by method (local) or S3 operation."""


@pytest.fixture
def counted(storage_env, storage, monkeypatch) -> ObjectStorage:
    """The test's storage, with every call it makes (or S3 request it sends) counted."""
    CALLS.clear()
    if storage_env == "s3":
        count_aws_requests(monkeypatch, CALLS)
        return storage
    for method in ("read_bytes", "read_versioned", "exists", "list", "list_after", "write_bytes"):
        real = getattr(type(storage), method)

        def counting(self, *args, _real=real, _name=method, **kwargs):
            CALLS[_name] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(type(storage), method, counting)
    return storage


def land(storage: ObjectStorage, names: list[str]) -> None:
    """One valid row per file, its content set by the name and the time (distinct batches)."""
    import hashlib
    import time

    for name in names:
        seed = hashlib.sha256(f"{name}{time.time_ns()}".encode()).digest()
        row = ",".join(str(seed[i % 32] % 17) for i in range(64))
        storage.write_bytes(f"landing/digits/{name}", f"{HEADER}\n{row},{seed[0] % 10}\n".encode())


def partitioned(day: int, count: int, start: int = 0) -> list[str]:
    """Date-partitioned names that only grow, as `lexical` discovery expects."""
    return [f"2026/11/{day:02d}/batch-{n:06d}.csv" for n in range(start, start + count)]


def tick(storage, sensor, definitions, cursor=None):
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            definitions=definitions,
            resources={"storage": storage},
        ) as context,
    ):
        return sensor.evaluate_tick(context)


def lexical_definitions():
    use_case = digits_with(
        dataset={"landing": {"prefix": "landing/digits", "discovery": "lexical"}}
    )
    definitions = use_case_definitions(use_case)
    return definitions, definitions.resolve_sensor_def("digits_landing_sensor")


def test_local_sorted_scan_returns_what_a_filtered_full_listing_does(local_env):
    """The pruned scan against the plain definition (filter the full listing), on names
    where a folder's and a file's order differ (`a-b` sorts before `a/x`)."""
    from mlops_assets.storage.local import LocalStorage

    storage = LocalStorage(root=str(local_env / ".mlops"))
    names = ["a-b", "a.txt", "a/x", "a/y/z", "a0", "b/2026/11/30/f", "b/2026/12/01/f", "c_", ".h"]
    for name in names:
        storage.write_bytes(f"z/{name}", b"x")
    keys = sorted(f"z/{n}" for n in names)
    for cursor in ["", "z/a", "z/a-b", "z/a/x", "z/a/y", "z/a/y/z", "z/b/2026/11/30/f", "z/c_"]:
        plain = [i.key for i in ObjectStorage.list_after(storage, "z", cursor)]
        assert plain == [k for k in keys if k > cursor]
        assert [i.key for i in storage.list_after("z", cursor)] == plain, cursor


def test_lexical_tick_and_acquire_cost_what_is_new(counted):
    """Ticks with nothing new make the same calls at 40 and 160 files of history; 12 new
    files start one run, whose acquire ingests those 12 and looks at nothing else."""
    storage = counted
    definitions, sensor = lexical_definitions()
    per_tick: list[Counter] = []
    history = 0
    cursor = None
    for day, count in ((27, 40), (28, 120)):
        land(storage, partitioned(day, count, start=history))
        history += count
        first = tick(storage, sensor, definitions, cursor)
        (request,) = first.run_requests
        assert request.tags["mlops/new_files"] == str(count)
        result = run_acquire(storage, LAYOUT, "landing/digits", discovery="lexical")
        assert len(result.new) == count and result.refused == []
        CALLS.clear()
        idle = tick(storage, sensor, definitions, first.cursor)
        assert idle.run_requests == [] and "no new files" in idle.skip_message
        per_tick.append(Counter(CALLS))
        cursor = idle.cursor
    assert per_tick[0] == per_tick[1]  # nothing new: the same calls, whatever the history
    assert sum(per_tick[0].values()) <= 5

    land(storage, partitioned(29, 12, start=history))
    CALLS.clear()
    busy = tick(storage, sensor, definitions, cursor)
    (request,) = busy.run_requests
    assert request.tags["mlops/new_files"] == "12"
    listed = CALLS["ListObjectsV2"] + CALLS["list_after"]
    assert listed == 1 and CALLS["list"] == 0  # one listing from the cursor
    CALLS.clear()
    result = run_acquire(storage, LAYOUT, "landing/digits", discovery="lexical")
    assert result.landing_files == 12 and len(result.new) == 12
    # one listing of the landing zone from its cursor, one of the catalog after its head
    assert CALLS["ListObjectsV2"] + CALLS["list_after"] == 2 and CALLS["list"] == 0
    assert len(load_catalog(storage, LAYOUT)) == history + 12
    assert len(segment_names(storage, LAYOUT)) == 3  # one per acquire, none rewritten


def test_lexical_discovery_does_not_see_a_name_that_sorts_before_the_cursor(local_env):
    """The documented limit of `lexical`: a late file under an older name is not seen by
    it, and `listing` (the default) still finds it."""
    from mlops_assets.storage.local import LocalStorage

    storage = LocalStorage(root=str(local_env / ".mlops"))
    land(storage, partitioned(28, 3))
    assert len(run_acquire(storage, LAYOUT, "landing/digits", discovery="lexical").new) == 3
    land(storage, ["2026/11/27/late.csv"])
    assert run_acquire(storage, LAYOUT, "landing/digits", discovery="lexical").new == []
    late = run_acquire(storage, LAYOUT, "landing/digits", discovery="listing")
    assert [b["source"] for b in late.new] == ["2026/11/27/late.csv"]


def test_listing_tick_reads_the_markers_of_changed_files_only(counted):
    storage = counted
    definitions = use_case_definitions(digits_with())
    sensor = definitions.resolve_sensor_def("digits_landing_sensor")
    land(storage, [f"batch-{n:04d}.csv" for n in range(30)])
    first = tick(storage, sensor, definitions)
    assert first.run_requests[0].tags["mlops/new_files"] == "30"
    run_acquire(storage, LAYOUT, "landing/digits")
    land(storage, ["batch-0030.csv", "batch-0031.csv"])
    CALLS.clear()
    second = tick(storage, sensor, definitions, first.cursor)
    assert second.run_requests[0].tags["mlops/new_files"] == "2"
    reads = CALLS["GetObject"] + CALLS["read_versioned"]
    assert reads == 2  # one marker per changed file, no index of all 32
    # a file rewritten in place is seen again, and ingested again
    land(storage, ["batch-0005.csv"] * 2)
    third = tick(storage, sensor, definitions, second.cursor)
    assert third.run_requests[0].tags["mlops/new_files"] == "1"


def write_old_root(storage: ObjectStorage, names: list[str]) -> None:
    """Ingested state as acquire kept it before markers and segments: one landing index
    and one catalog list, each a JSON object of every file."""
    import hashlib

    index, catalog = {}, []
    for info in storage.list("landing/digits"):
        name = info.key.removeprefix("landing/digits/")
        if name not in names:
            continue
        data = storage.read_bytes(info.key)
        digest = hashlib.sha256(data).hexdigest()
        batch = {
            "batch_id": digest[:16],
            "source": name,
            "file": name,
            "raw_key": LAYOUT.raw(digest[:16], name),
            "sha256": digest,
            "bytes": len(data),
            "ingested_at": "2026-11-01T00:00:00+00:00",
            "run_id": "",
        }
        storage.write_bytes(batch["raw_key"], data)
        storage.write_json(LAYOUT.raw(digest[:16], "_batch.json"), batch)
        index[name] = {"version": info.version, "sha256": digest, "batch_id": digest[:16]}
        catalog.append(batch)
    storage.write_json(LAYOUT.landing_index, index)
    storage.write_json(LAYOUT.raw_catalog, catalog)


def test_an_older_root_is_migrated_on_first_use(storage):
    """Three files ingested under the old layout, one new: the first tick (read-only)
    launches a run for the new one only; acquire turns the old index and catalog into
    markers and a first segment, and ingests only the new file, after the old batches."""
    old = seed_digits(storage, 5, [1, 2, 3])
    write_old_root(storage, [key.removeprefix("landing/digits/") for key in old])
    (new,) = seed_digits(storage, 5, [4])
    definitions = use_case_definitions(digits_with())
    sensor = definitions.resolve_sensor_def("digits_landing_sensor")
    first = tick(storage, sensor, definitions)
    (request,) = first.run_requests
    assert request.tags["mlops/new_files"] == "1"
    assert storage.exists(LAYOUT.landing_index)  # the sensor wrote nothing
    names = [key.removeprefix("landing/digits/") for key in [*old, new]]
    assert read_markers(storage, LAYOUT, names) == {}

    result = run_acquire(storage, LAYOUT, "landing/digits")
    assert [b["source"] for b in result.new] == [names[3]]
    assert not storage.exists(LAYOUT.raw_catalog) and not storage.exists(LAYOUT.landing_index)
    assert sorted(read_markers(storage, LAYOUT, names)) == sorted(names)
    assert [b["source"] for b in load_catalog(storage, LAYOUT)] == names
    assert run_acquire(storage, LAYOUT, "landing/digits").new == []
    assert tick(storage, sensor, definitions, first.cursor).run_requests == []


def test_a_migration_cut_short_is_finished_by_the_next_use(local_env):
    """Killed after writing some markers and the first segment, before removing the old
    files: the next acquire finishes it, and no batch is cataloged twice."""
    from mlops_assets.datasets.tabular.catalog import migrate_catalog
    from mlops_assets.storage.local import LocalStorage

    storage = LocalStorage(root=str(local_env / ".mlops"))
    old = seed_digits(storage, 5, [1, 2])
    write_old_root(storage, [key.removeprefix("landing/digits/") for key in old])
    kept = storage.read_bytes(LAYOUT.raw_catalog)
    migrate_catalog(storage, LAYOUT)
    storage.write_bytes(LAYOUT.raw_catalog, kept)  # as if the removal never happened
    result = run_acquire(storage, LAYOUT, "landing/digits")
    assert result.new == []
    catalog = load_catalog(storage, LAYOUT)
    assert [b["source"] for b in catalog] == [k.removeprefix("landing/digits/") for k in old]
    assert json.loads(storage.read_bytes(LAYOUT.landing_cursor))["discovery"] == "listing"


def dataops(instance) -> dg.ExecuteInProcessResult:
    from mlops_assets.definitions import build_definitions

    return (
        build_definitions().resolve_job_def("digits_dataops").execute_in_process(instance=instance)
    )


def split_checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_a_new_dataset_version_writes_only_the_new_batch(storage):
    """Version 2 is version 1's part files plus the new batch's: the old parts are not
    written again, the split checks hold, and the id is a content hash (cut again from
    scratch, the same batches give the same id)."""
    from mlops_assets.datasets.tabular.split import SPLITS, read_split_ids, split_files

    seed_digits(storage, 5, [1, 2])
    with dg.instance_for_test() as instance:
        assert dataops(instance).success
        first = storage.read_json(LAYOUT.dataset_latest)["dataset_version"]
        before = {i.key: i.version for i in storage.list("staged/digits/split")}
        seed_digits(storage, 5, [3])
        second_run = dataops(instance)
    assert second_run.success
    checks = split_checks(second_run)
    assert checks["no_row_in_two_splits"] and checks["test_set_keeps_earlier_rows"]
    second = storage.read_json(LAYOUT.dataset_latest)["dataset_version"]
    assert second != first
    after = {i.key: i.version for i in storage.list("staged/digits/split")}
    assert {k: after[k] for k in before} == before  # nothing of version 1 rewritten
    (batch,) = {k.rsplit("/", 1)[-1].split(".")[0] for k in set(after) - set(before)}
    for name in SPLITS:
        old = split_files(storage, LAYOUT, first, name)
        new = split_files(storage, LAYOUT, second, name)
        assert new[: len(old)] == old and all(f"/{batch}." in k for k in new[len(old) :])
    ids = {name: read_split_ids(storage, LAYOUT, second, name) for name in SPLITS}
    assert not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    rows = storage.read_json(LAYOUT.dataset(second, "manifest.json"))["rows"]
    assert rows == {name: len(ids[name]) for name in SPLITS}

    for info in storage.list("staged/digits/split") + storage.list("datasets/digits"):
        storage.delete(info.key)
    with dg.instance_for_test() as instance:
        assert dataops(instance).success
    assert storage.read_json(LAYOUT.dataset_latest)["dataset_version"] == second


def test_a_version_from_before_parts_is_the_base_of_the_next(local_env):
    """A root whose dataset version is whole split files (as written before parts): the
    next version keeps those files and adds the new batch's parts; its test set keeps
    every earlier test row."""
    import pandas as pd

    from mlops_assets.datasets.tabular.split import SPLITS, read_split, split_files, version_batches
    from mlops_assets.storage.local import LocalStorage

    storage = LocalStorage(root=str(local_env / ".mlops"))
    seed_digits(storage, 5, [1, 2])
    with dg.instance_for_test() as instance:
        assert dataops(instance).success
    version = storage.read_json(LAYOUT.dataset_latest)["dataset_version"]
    manifest = storage.read_json(LAYOUT.dataset(version, "manifest.json"))
    legacy = "0123456789abcdef"
    for name in SPLITS:
        frame = read_split(storage, LAYOUT, version, name).sort_values("row_id")
        storage.write_parquet(LAYOUT.dataset(legacy, f"{name}.parquet"), frame)
    batches = version_batches(storage, LAYOUT, version)
    old = {k: v for k, v in manifest.items() if k in ("rows", "class_balance", "fractions")}
    storage.write_json(
        LAYOUT.dataset(legacy, "manifest.json"),
        {**old, "dataset_version": legacy, "batches": batches},
    )
    storage.write_json(
        LAYOUT.dataset_latest, {"dataset_version": legacy, "batches": batches, "previous": None}
    )
    for info in storage.list("staged/digits/split") + storage.list(f"datasets/digits/{version}"):
        storage.delete(info.key)

    seed_digits(storage, 5, [3])
    with dg.instance_for_test() as instance:
        result = dataops(instance)
    assert result.success and split_checks(result)["test_set_keeps_earlier_rows"]
    new = storage.read_json(LAYOUT.dataset_latest)["dataset_version"]
    assert split_files(storage, LAYOUT, new, "test")[0] == LAYOUT.dataset(legacy, "test.parquet")
    before = read_split(storage, LAYOUT, legacy, "test")
    after = read_split(storage, LAYOUT, new, "test")
    assert set(before["row_id"]) < set(after["row_id"])
    assert len(pd.concat([read_split(storage, LAYOUT, new, s) for s in SPLITS])) == sum(
        storage.read_json(LAYOUT.dataset(new, "manifest.json"))["rows"].values()
    )


def test_files_named_in_a_run_config_outside_the_zone_are_refused_not_read(local_env):
    """The notifications sensor names acquire's files in the run config; a key outside the
    landing zone (or climbing out of it) is quarantined with its reason, never read."""
    from mlops_assets.storage.local import LocalStorage

    storage = LocalStorage(root=str(local_env / ".mlops"))
    (good,) = seed_digits(storage, 5, [1])
    storage.write_bytes("models/digits/secret.csv", storage.read_bytes(good))
    named = [good, "models/digits/secret.csv", "landing/digits/../../models/digits/secret.csv"]
    result = run_acquire(storage, LAYOUT, "landing/digits", files=named)
    assert [b["source"] for b in result.new] == [good.removeprefix("landing/digits/")]
    refused = dict(result.refused)
    assert set(refused) == set(named[1:])
    assert "not under 'landing/digits/'" in refused[named[1]]
    assert all("named in the run config" in reason for reason in refused.values())


def stages(storage: ObjectStorage, only: str = "") -> dict[str, Counter]:
    """acquire (lexical), observe, clean, transform and split (or those named in `only`),
    each one's calls counted."""
    from mlops_assets.components.tree import load_use_case
    from mlops_assets.datasets.tabular.clean import run_clean
    from mlops_assets.datasets.tabular.observe import run_observe
    from mlops_assets.datasets.tabular.split import run_split
    from mlops_assets.datasets.tabular.transform import run_transform

    uc = load_use_case("digits")
    steps = {
        "acquire": lambda: run_acquire(storage, LAYOUT, "landing/digits", discovery="lexical"),
        "observe": lambda: run_observe(storage, LAYOUT, uc.dataset, uc.observe),
        "clean": lambda: run_clean(storage, LAYOUT, uc.dataset),
        "transform": lambda: run_transform(storage, LAYOUT, uc.dataset),
        "split": lambda: run_split(storage, LAYOUT, uc.dataset, uc.split),
    }
    counts = {}
    for name, step in steps.items():
        if only and name not in only.split():
            continue
        CALLS.clear()
        step()
        counts[name] = Counter(CALLS)
    return counts


def test_each_dataops_stage_costs_what_was_cataloged_since_its_cursor(counted):
    """Three new files after 6 and after 30 of history: every stage makes the same calls
    (no listing of staged outputs, no read of the whole catalog or of earlier versions)."""
    storage = counted
    per_history = []
    history = 0
    for day, count in ((1, 6), (2, 24)):
        land(storage, partitioned(day, count, start=history))
        history += count
        stages(storage)
        land(storage, partitioned(day + 10, 3, start=history))
        history += 3
        per_history.append(stages(storage))
    assert per_history[0] == per_history[1]
    assert all(sum(c.values()) for c in per_history[0].values())  # each stage did its work


def test_a_batch_cataloged_twice_is_processed_once(storage):
    """A repaired acquire can catalog a batch again in a later segment: observe's dataset
    profile, clean and the dataset version count it once."""
    from mlops_assets.datasets.tabular.catalog import append_segment
    from mlops_assets.datasets.tabular.split import version_batches

    land(storage, partitioned(1, 2))
    stages(storage)
    first = load_catalog(storage, LAYOUT)
    append_segment(storage, LAYOUT, first[:1])  # cataloged again
    land(storage, partitioned(2, 1, start=2))
    stages(storage)
    append_segment(storage, LAYOUT, first[1:])  # and again, alone after the cursors
    stages(storage)
    latest = storage.read_json(LAYOUT.dataset_latest)
    assert sorted(version_batches(storage, LAYOUT, latest["dataset_version"])) == sorted(
        b["batch_id"] for b in load_catalog(storage, LAYOUT)
    )
    manifest = storage.read_json(LAYOUT.dataset(latest["dataset_version"], "manifest.json"))
    assert sum(manifest["rows"].values()) == 3  # one row a file
    observed = storage.read_json(LAYOUT.stage_cursor("observe"))
    assert observed["dataset"]["rows"] == 3 and observed["segment"] == latest["segment"]


def test_a_segment_with_a_batch_not_transformed_waits_whole(storage):
    """Split takes whole catalog segments: one with a batch not transformed yet waits, with
    the segments after it, and is taken once, whole, when it is transformed."""
    from mlops_assets.components.tree import load_use_case
    from mlops_assets.datasets.tabular.split import run_split, version_batches

    uc = load_use_case("digits")
    land(storage, partitioned(1, 2))
    stages(storage)
    first = storage.read_json(LAYOUT.dataset_latest)
    land(storage, partitioned(2, 2, start=2))
    stages(storage, "acquire")
    land(storage, partitioned(3, 1, start=4))
    stages(storage, "acquire observe clean")
    waiting = load_catalog(storage, LAYOUT)[3]["batch_id"]  # the second of its segment
    stages(storage, "transform")
    key = LAYOUT.staged("transform", waiting, "parquet")
    kept = storage.read_bytes(key)
    storage.delete(key)  # as if not transformed yet
    held = run_split(storage, LAYOUT, uc.dataset, uc.split)
    assert held.version == first["dataset_version"] and not held.created
    assert storage.read_json(LAYOUT.dataset_latest)["segment"] == first["segment"]
    storage.write_bytes(key, kept)
    done = run_split(storage, LAYOUT, uc.dataset, uc.split)
    batches = version_batches(storage, LAYOUT, done.version)
    assert batches == [b["batch_id"] for b in load_catalog(storage, LAYOUT)]
    assert sum(done.manifest["rows"].values()) == 5
    assert done.manifest["base"] == first["dataset_version"]


def test_clean_cut_short_keeps_its_rows_and_an_old_root_keeps_finding_duplicates(storage):
    """A clean run cut after claiming its rows' markers does not call its own rows
    duplicates when run again; a root from before cursors and row markers gets them on
    its first run, and a row landed again is still a duplicate of the first."""
    from mlops_assets.components.tree import load_use_case
    from mlops_assets.datasets.tabular.clean import run_clean

    uc = load_use_case("digits")
    land(storage, partitioned(1, 2))
    stages(storage)
    (batch, _) = load_catalog(storage, LAYOUT)
    cursor = storage.read_json(LAYOUT.stage_cursor("clean"))
    storage.delete(LAYOUT.staged("clean", batch["batch_id"], "parquet"))
    storage.delete(LAYOUT.stage_cursor("clean"))  # the run that wrote it never finished
    again = run_clean(storage, LAYOUT, uc.dataset)
    assert [(b["batch_id"], b["clean"], b["quarantined"]) for b in again.batches] == [
        (batch["batch_id"], 1, 0)
    ]
    assert storage.read_json(LAYOUT.stage_cursor("clean")) == cursor

    for info in storage.list("staged/digits/_cursors") + storage.list("staged/digits/_rows"):
        storage.delete(info.key)  # a root from before cursors
    raw = storage.read_bytes(batch["raw_key"])
    storage.write_bytes("landing/digits/2026/11/05/again.csv", raw + raw.splitlines()[1] + b"\n")
    stages(storage)
    (quarantined,) = [
        info.key for info in storage.list("quarantine/digits") if info.key.endswith("rows.parquet")
    ]
    reasons = storage.read_parquet(quarantined)["reason"].tolist()
    assert reasons == [f"exact duplicate of row 1 of {batch['source']}"] * 2
    observed = storage.read_json(LAYOUT.stage_cursor("observe"))
    assert observed["dataset"]["rows"] == 4  # two files of one row, one of two rows


def test_two_acquires_at_once_take_different_segments(storage, monkeypatch):
    """The sequence number is claimed by a create-if-absent write: a run that lost the race
    (its view of the catalog's end was stale) takes the next number."""
    from mlops_assets.datasets.tabular import catalog

    first = catalog.append_segment(storage, LAYOUT, [{"batch_id": "a"}])
    second = catalog.append_segment(storage, LAYOUT, [{"batch_id": "b"}])
    monkeypatch.setattr(catalog, "last_segment", lambda storage, layout: first)  # stale
    third = catalog.append_segment(storage, LAYOUT, [{"batch_id": "c"}])
    assert (first, second, third) == (
        "s000000000001.json",
        "s000000000002.json",
        "s000000000003.json",
    )
    assert [b["batch_id"] for b in load_catalog(storage, LAYOUT)] == ["a", "b", "c"]
