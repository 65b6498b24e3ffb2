"""Faults on the way lose nothing: S3 going away mid-run, a run killed during acquire.

(The git remote down at deploy time is in test_deploy_pipeline.py; a landing file
rewritten under the same name in test_dataops_e2e.py and test_sensor.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable

import dagster as dg
import pytest

from mlops_assets.datasets.tabular.catalog import load_catalog
from mlops_assets.datasets.tabular.split import read_split_ids, version_batches
from mlops_assets.definitions import build_definitions
from mlops_assets.demo.digits_data import seed_digits, synthetic_batch, to_bytes
from mlops_assets.resources import build_storage
from mlops_assets.settings import load_settings
from mlops_assets.storage import Layout
from tests.support.processes import BIN, clean_env
from tests.support.tcp_proxy import TcpProxy


def dataops_job():
    """Module level, so Dagster can reconstruct the job to re-execute it from a failure."""
    return build_definitions().resolve_job_def("digits_dataops")


def datasets(storage) -> list[str]:
    prefix = "datasets/digits/"
    return sorted(
        {
            i.key[len(prefix) :].split("/")[0]
            for i in storage.list(prefix)
            if "/" in i.key[len(prefix) :]
        }
    )


@pytest.fixture
def s3_behind_a_proxy(moto_server, tmp_path, monkeypatch):
    import boto3

    target = urllib.parse.urlparse(moto_server)
    proxy = TcpProxy((target.hostname, target.port))
    proxy.start()
    bucket = f"faults-{uuid.uuid4().hex[:10]}"
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "MLOPS_S3_ENDPOINT_URL": proxy.url,
        "MLOPS_STORAGE_ROOT": f"s3://{bucket}/team-a",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MLOPS_ENV", raising=False)
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
    yield proxy
    proxy.stop()


@pytest.mark.slow
def test_s3_going_away_mid_run_fails_naming_the_endpoint_and_reexecution_completes(
    s3_behind_a_proxy,
):
    proxy = s3_behind_a_proxy
    storage = build_storage(load_settings())
    seed_digits(storage, 5, [1, 2, 3])
    with dg.instance_for_test() as instance:

        def cut_after_acquire(run_ids: list[str]) -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if run_ids and any(
                    e.dagster_event
                    and e.dagster_event.event_type_value == "STEP_SUCCESS"
                    and e.step_key == "digits__acquire"
                    for e in instance.all_logs(run_ids[0])
                ):
                    proxy.stop()
                    return
                time.sleep(0.01)

        run_id = str(uuid.uuid4())
        watcher = threading.Thread(target=cut_after_acquire, args=([run_id],), daemon=True)
        watcher.start()
        failed = dataops_job().execute_in_process(
            instance=instance, run_id=run_id, raise_on_error=False
        )
        watcher.join()
        assert not failed.success
        failures = failed.get_step_failure_events()
        assert failures and failures[0].step_key != "digits__acquire"
        error = failures[0].event_specific_data.error
        text = error.message + (error.cause.message if error.cause else "")
        assert proxy.url in text or f"127.0.0.1:{proxy.port}" in text, text

        proxy.start()  # S3 is back, with everything acquire wrote
        again = dg.execute_job(
            dg.reconstructable(dataops_job),
            instance=instance,
            reexecution_options=dg.ReexecutionOptions.from_failure(run_id, instance),
        )
        assert again.success
        executed = {e.step_key for e in again.all_events if e.event_type_value == "STEP_SUCCESS"}
        assert "digits__acquire" not in executed  # resumed from the failure, not from the start

    layout = Layout("digits")
    catalog = load_catalog(storage, layout)
    assert len(catalog) == 3 and len({b["batch_id"] for b in catalog}) == 3
    assert len(datasets(storage)) == 1  # one dataset version, not two
    latest = storage.read_json(layout.dataset_latest)["dataset_version"]
    assert sorted(version_batches(storage, layout, latest)) == sorted(
        b["batch_id"] for b in catalog
    )


def _kill_once(
    local_env, root, selection: str, ready: Callable[[], bool], early: str
) -> tuple[list[str], dict[str, str]]:
    """`dagster asset materialize --select <selection>` on `root`, killed (SIGKILL, its whole
    process group) as soon as `ready()` holds; returns the command and its environment, to
    run it again."""
    env = {
        **clean_env(),
        "MLOPS_STORAGE_ROOT": str(root),
        "DAGSTER_HOME": str(local_env / "home"),
    }
    (local_env / "home").mkdir(exist_ok=True)
    command = [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "mlops_assets.definitions",
        "--select",
        selection,
    ]
    process = subprocess.Popen(
        command,
        cwd=local_env,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    while not ready():
        assert process.poll() is None, early
        time.sleep(0.002)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return command, env


ROWS = 300
"""Per landing file of the killed run: enough that acquire is still going when it is
killed, few enough that the test stays short."""


@pytest.mark.slow
def test_a_run_killed_during_acquire_neither_duplicates_nor_loses_a_batch(local_env):
    storage = build_storage(load_settings())
    files = 40
    for n in range(files):
        storage.write_bytes(
            f"landing/digits/part-{n:03d}.parquet", to_bytes(synthetic_batch(ROWS, n), "parquet")
        )
    raw = local_env / ".mlops" / "raw" / "digits"
    command, env = _kill_once(
        local_env,
        local_env / ".mlops",
        "digits/acquire",
        lambda: bool(list(raw.glob("*/_batch.json"))),
        "acquire ended before it ingested anything",
    )
    at_kill = len(list(raw.glob("*/_batch.json")))
    assert at_kill < files, "acquire finished before the kill; nothing was interrupted"
    assert not list(raw.glob("_catalog/*.json"))  # no batch cataloged yet

    done = subprocess.run(
        [*command[:-1], "*digits/split"], cwd=local_env, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    layout = Layout("digits")
    catalog = load_catalog(storage, layout)
    sources = sorted(b["source"] for b in catalog)
    assert sources == [f"part-{n:03d}.parquet" for n in range(files)]  # each file once
    assert len({b["batch_id"] for b in catalog}) == files
    version = storage.read_json(layout.dataset_latest)["dataset_version"]
    rows = sum(len(read_split_ids(storage, layout, version, s)) for s in ("train", "val", "test"))
    quarantined = sum(
        len(storage.read_parquet(info.key))
        for info in storage.list("quarantine/digits")
        if info.key.endswith("rows.parquet")
    )
    assert rows + quarantined == files * ROWS  # every row in a split or in quarantine


def _cleaned(storage, layout) -> dict[str, tuple[list[int], list[str]]]:
    """Per landing file: the row numbers clean kept and the reasons of those it did not."""
    out = {}
    for batch in load_catalog(storage, layout):
        kept = storage.read_parquet(layout.staged("clean", batch["batch_id"], "parquet"))
        key = layout.quarantine(batch["batch_id"], "rows.parquet")
        why = storage.read_parquet(key)["reason"].tolist() if storage.exists(key) else []
        out[batch["source"]] = (kept["row_number"].tolist(), why)
    return out


@pytest.mark.slow
def test_a_clean_killed_after_its_commit_leaves_nothing_half_written_and_a_rerun_completes(
    local_env, tmp_path
):
    """Killed once its rows are in the row index and before all its outputs are written: the
    rerun keeps and quarantines exactly what one uninterrupted clean does (its own rows are
    not duplicates of themselves), and nothing it left is torn."""
    from mlops_assets.components.tree import load_use_case
    from mlops_assets.datasets.tabular.acquire import run_acquire
    from mlops_assets.datasets.tabular.clean import run_clean
    from mlops_assets.datasets.tabular.observe import run_observe
    from mlops_assets.datasets.tabular.row_index import RowIndex
    from mlops_assets.demo.digits_data import with_bad_rows
    from mlops_assets.storage.local import LocalStorage

    uc = load_use_case("digits").blocks
    layout = Layout("digits")
    roots = {"killed": local_env / ".mlops", "reference": tmp_path / "reference"}
    files = 60
    for root in roots.values():
        storage = LocalStorage(root=str(root))
        for n in range(files):
            frame = synthetic_batch(ROWS, n % 50)  # rows landing again, in other files
            data = to_bytes(with_bad_rows(frame, 0.05, seed=n) if n % 7 == 0 else frame)
            storage.write_bytes(f"landing/digits/part-{n:03d}.csv", data)
        run_acquire(storage, layout, "landing/digits")
        run_observe(storage, layout, uc.dataset, uc.observe)
    reference = LocalStorage(root=str(roots["reference"]))
    run_clean(reference, layout, uc.dataset)

    head = roots["killed"] / "staged/digits/_row_index/head.json"
    command, env = _kill_once(
        local_env,
        roots["killed"],
        "digits/clean",
        head.exists,
        "clean ended before it committed anything",
    )
    storage = LocalStorage(root=str(roots["killed"]))
    written = list((roots["killed"] / "staged/digits/clean").glob("*.parquet"))
    assert len(written) < files, "clean finished before the kill; nothing was interrupted"
    for path in written:  # whole files or none: each output reads back
        storage.read_parquet(path.relative_to(roots["killed"]).as_posix())
    index = RowIndex(storage, layout)
    index.refresh()  # the head names parts that are all there

    done = subprocess.run(command, cwd=local_env, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _cleaned(storage, layout) == _cleaned(reference, layout)
    duplicates = sum(
        reason.startswith("exact duplicate")
        for _, why in _cleaned(storage, layout).values()
        for reason in why
    )
    assert duplicates >= 2 * ROWS  # rows landed again in other files: found, in the rerun too


@pytest.mark.slow
def test_s3_going_away_at_the_alias_move_releases_the_candidate_once(s3_behind_a_proxy):
    """The worst moment: the version is written, the champion alias not yet moved."""
    import re

    from mlops_assets.registry import ModelRegistry

    proxy = s3_behind_a_proxy
    storage = build_storage(load_settings())
    seed_digits(storage, 5, [1, 2, 3])
    with dg.instance_for_test() as instance:
        assert dataops_job().execute_in_process(instance=instance).success
        proxy.cut_on = re.compile(rb"^PUT \S*/models/digits/aliases/champion\.json", re.M)
        assert mlops_job().execute_in_process(instance=instance).success  # the gate passes
        failed = release_job().execute_in_process(instance=instance, raise_on_error=False)
        assert not failed.success
        (failure,) = failed.get_step_failure_events()
        assert failure.step_key == "digits__release"
        registry = ModelRegistry(storage, "digits")
        proxy.start()
        assert registry.versions() == [1] and registry.champion() is None

        again = dg.execute_job(
            dg.reconstructable(release_job),
            instance=instance,
            reexecution_options=dg.ReexecutionOptions.from_failure(failed.run_id, instance),
        )
        assert again.success
    assert registry.versions() == [1]  # not released a second time as v2
    assert registry.champion()["version"] == 1
    assert [h["version"] for h in registry.history()] == [1]


def mlops_job():
    return build_definitions().resolve_job_def("digits_mlops")


def release_job():
    return build_definitions().resolve_job_def("digits_release")
