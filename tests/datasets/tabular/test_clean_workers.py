"""A backlog of batches cleaned past one process: the DataOps job under the multiprocess
executor, clean's slices as mapped steps in worker processes, gives the dataset version,
clean rows and quarantine reasons of the same backlog cleaned in one process, in one slice."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from mlops_assets.datasets.tabular.catalog import load_catalog
from mlops_assets.demo.digits_data import digits_batches, to_bytes, with_bad_rows
from mlops_assets.resources import environment_definitions
from mlops_assets.settings import load_settings
from mlops_assets.storage import Layout
from mlops_assets.storage.local import LocalStorage
from tests.support.use_cases import digits_with

LAYOUT = Layout("digits")
SLICE = "digits__clean.digits__clean_slice"


def _dataops_job(executor: str, slice_mb: float) -> dg.JobDefinition:
    """digits' DataOps job with `executor`, clean slicing the backlog by `slice_mb`, on the
    storage root of the environment (each worker process builds it again)."""
    use_case = digits_with(dataset={"slice_mb": slice_mb})
    settings = replace(load_settings(), executor=executor)
    defs = dg.Definitions.merge(use_case.build_defs(None), environment_definitions(settings))
    return defs.resolve_job_def("digits_dataops")


def in_one_slice() -> dg.JobDefinition:
    return _dataops_job("in_process", 256)


def a_slice_per_file() -> dg.JobDefinition:
    return _dataops_job("multiprocess", 0.0001)


def land_backlog(storage: LocalStorage) -> None:
    """Four files of scikit-learn's digits, with duplicates across files (a later file
    repeats rows of an earlier one, one of them twice), within a file, and bad rows."""
    a, b, c, d = digits_batches(4)
    files = [
        a,
        pd.concat([b, a.iloc[:20], a.iloc[[30, 30]]], ignore_index=True),
        pd.concat([with_bad_rows(c, 0.1, seed=3), c.iloc[[5]]], ignore_index=True),
        pd.concat([d, b.iloc[:10]], ignore_index=True),
    ]
    for n, frame in enumerate(files, 1):
        storage.write_bytes(f"landing/digits/part-{n}.csv", to_bytes(frame))


def run(root: Path, monkeypatch, job) -> dg.ExecutionResult:
    monkeypatch.setenv("MLOPS_STORAGE_ROOT", str(root))
    land_backlog(LocalStorage(root=str(root)))
    with dg.instance_for_test() as instance:
        parallel = job is a_slice_per_file
        config = {"execution": {"config": {"max_concurrent": 2}}} if parallel else {}
        result = dg.execute_job(dg.reconstructable(job), instance=instance, run_config=config)
        assert result.success
        return result


def outcome(root: Path) -> dict:
    """What the cleaning decided: the dataset version, and per file its kept rows and its
    quarantined rows with their reasons."""
    storage = LocalStorage(root=str(root))
    files = {}
    for batch in load_catalog(storage, LAYOUT):
        kept = storage.read_parquet(LAYOUT.staged("clean", batch["batch_id"], "parquet"))
        key = LAYOUT.quarantine(batch["batch_id"], "rows.parquet")
        rows = (
            storage.read_parquet(key)
            if storage.exists(key)
            else pd.DataFrame({"row_number": [], "reason": []})
        )
        files[batch["source"]] = {
            "kept": kept["row_number"].tolist(),
            "hashes": kept["content_hash"].tolist(),
            "quarantined": dict(zip(rows["row_number"], rows["reason"], strict=True)),
        }
    latest = storage.read_json(LAYOUT.dataset_latest)
    return {"version": latest["dataset_version"], "files": files}


def slice_processes(result: dg.ExecutionResult) -> dict[str, int]:
    """Clean's slice steps of a run, each with the process it started in."""
    return {
        e.step_key: e.pid
        for e in result.all_events
        if e.step_key and e.step_key.startswith(SLICE) and e.event_type_value == "STEP_START"
    }


@pytest.mark.slow
def test_two_worker_processes_clean_a_backlog_as_one_process_does(local_env, monkeypatch):
    one = run(local_env / "one", monkeypatch, in_one_slice)
    two = run(local_env / "two", monkeypatch, a_slice_per_file)

    started = slice_processes(two)
    assert len(started) == 4 and len(set(started.values())) == 4  # a process per slice
    assert len(slice_processes(one)) == 1

    expected, got = outcome(local_env / "one"), outcome(local_env / "two")
    assert got == expected
    second = got["files"]["part-2.csv"]["quarantined"]
    after = len(digits_batches(4)[1]) + 20  # part-2: part-1's rows after its own
    first_seen = [second[after + 1], second[after + 2]]
    # row 31 of part-1 twice in part-2: the copies were in another slice than the first
    assert first_seen == ["exact duplicate of row 31 of part-1.csv"] * 2
    assert len(got["files"]["part-4.csv"]["quarantined"]) == 10
    work = local_env / "two/staged/digits/_clean_work"
    assert not list(work.iterdir())  # the commit left no work behind, not even a folder


@pytest.mark.parametrize(
    "tamper",
    [
        {"work": "models/digits/1"},  # a work area outside clean's
        {"work": "staged/digits/_clean_work/r/slice_000000/../../../../models"},
        {"batches": []},  # not the batches the plan gave the slice
        {"outputs": {"x": ["../../models/digits/1/model.skops"]}},
    ],
)
def test_a_manifest_not_of_its_slice_is_refused_and_publishes_nothing(local_env, tamper):
    """A slice's manifest is a record read back from storage: one naming another place, or
    other batches, is refused by the commit, naming it, before anything is kept."""
    from mlops_assets.components.tree import load_use_case
    from mlops_assets.datasets.tabular.acquire import run_acquire
    from mlops_assets.datasets.tabular.clean import plan_batches
    from mlops_assets.datasets.tabular.clean_commit import (
        CleanCommitError,
        commit_slices,
        slice_work,
    )
    from mlops_assets.datasets.tabular.clean_slice import clean_slice

    storage = LocalStorage(root=str(local_env / ".mlops"))
    dataset = load_use_case("digits").blocks.dataset
    land_backlog(storage)
    run_acquire(storage, LAYOUT, "landing/digits")
    (batches,) = plan_batches(storage, LAYOUT, dataset, load_catalog(storage, LAYOUT))
    manifest = clean_slice(storage, LAYOUT, dataset, slice_work(LAYOUT, "r", 0), batches)
    with pytest.raises(CleanCommitError, match="manifest of a clean slice"):
        commit_slices(storage, LAYOUT, dataset, [batches], [{**manifest, **tamper}])
    assert not storage.exists(LAYOUT.row_index("head.json"))  # nothing kept
    assert not storage.list("staged/digits/clean")  # nothing published


def test_work_areas_of_finished_runs_are_swept_and_others_kept(local_env):
    """A run whose slice failed leaves its work area; a later plan removes those of runs
    that are over (as the caller, Dagster's run storage, says), and only those."""
    from mlops_assets.datasets.tabular.clean_commit import left_behind, slice_work

    storage = LocalStorage(root=str(local_env / ".mlops"))
    for run_id in ("failed-run", "running-run", "unknown-run"):
        storage.write_bytes(f"{slice_work(LAYOUT, run_id, 0)}/claims.parquet", b"x")
    assert left_behind(storage, LAYOUT, lambda run_id: run_id == "failed-run") == ["failed-run"]
    left = {p.name for p in (local_env / ".mlops/staged/digits/_clean_work").iterdir()}
    assert left == {"running-run", "unknown-run"}  # the finished run's folder went too
