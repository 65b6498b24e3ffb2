"""The production loop's trust boundaries: a log file speaks only for the folder it was
written to and the versions git deployed there, no summary later than now is read, a
rollback acts only on what git deploys, the server issues the request ids feedback joins
on, and one client's bad input fails no other client's request."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from io import BytesIO

import numpy as np
import pandas as pd
import pytest

from mlops_assets.gitops.environments import EnvironmentPolicy, default_policy, environment_yaml
from mlops_assets.gitops.repository import (
    DeployRequest,
    GitOpsError,
    GitOpsRepo,
    ImageRequest,
    values_path,
)
from mlops_assets.monitoring.digest import digest_new, hour_of
from mlops_assets.monitoring.provenance import DeployedVersions, read_deployed
from mlops_assets.serving.app import create_app
from mlops_assets.serving.inference_log import InferenceLog, LogSettings
from mlops_assets.serving.limits import Limits
from mlops_assets.storage import Layout
from tests.support.gitops import git_log
from tests.support.http_servers import uvicorn_thread
from tests.support.mlops_runs import run_mlops
from tests.support.model_servers import (
    POISON,
    CountingAdapter,
    counting_model,
    digits_svc,
    infer_body,
    row,
)

LAYOUT = Layout("digits")
NOW = datetime(2026, 12, 5, 12, 30, tzinfo=UTC)
INFER = "/v2/models/digits/infer"


def commit_versions(repo: GitOpsRepo, environment: str, *versions: int) -> None:
    """What deploy commits for each version, in order."""
    for version in versions:
        repo.deploy(
            DeployRequest(
                environment=environment,
                use_case="digits",
                model={
                    "name": "digits",
                    "version": str(version),
                    "uri": f"s3://models/digits/{version}/model.skops",
                    "sha256": f"{version:064x}",
                    "adapter": "sklearn_svc",
                },
                trailers={"Model-Version": str(version)},
            )
        )


def write_log(storage, folder_env: str, when: datetime, name: str, **columns) -> str:
    """A log file in `folder_env`'s hour folder of `when`; its rows say what `columns` say
    (by default: that environment, v2, at `when`), as any writer of that prefix could."""
    rows = len(next(iter(columns.values()))) if columns else 3
    frame = pd.DataFrame(
        {
            "request_id": [f"{name}-{i}" for i in range(rows)],
            "row": [0] * rows,
            "time": [pd.Timestamp(when)] * rows,
            "environment": [folder_env] * rows,
            "model_version": ["2"] * rows,
            "prediction": [3] * rows,
            "error": [False] * rows,
        }
    )
    for column, values in columns.items():
        frame[column] = values
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    key = f"{LAYOUT.inference(folder_env)}/{when:%Y-%m-%d}/{when:%H}/{name}.parquet"
    storage.write_parquet(key, frame)
    return key


def no_edges(version: str, mode: str) -> None:
    return None


def test_a_log_file_speaks_only_for_its_folder_and_what_git_deployed(storage, git_server):
    url, _ = git_server
    repo = GitOpsRepo(url)
    commit_versions(repo, "dev", 1, 2)
    deployed = read_deployed(replace(repo, read_only=True), "digits")
    assert deployed.of("dev") == {"1", "2"}
    assert deployed.of("prod") == {"1"}  # the hand-written file there names v1

    good = write_log(storage, "dev", NOW, "good")
    refused_for = {
        # a writer of dev's prefix saying prod served v2 and failed every request
        write_log(
            storage, "dev", NOW, "forged", environment=["prod"] * 300, error=[True] * 300
        ): "rows say environment 'prod', but the file was written under dev/",
        # one row dated 2099 among good ones
        write_log(
            storage, "dev", NOW, "future", time=[NOW, NOW, datetime(2099, 1, 1, tzinfo=UTC)]
        ): "outside the folder's hour 2026-12-05T12",
        write_log(storage, "dev", NOW, "stale", time=[NOW - timedelta(hours=4)] * 3): (
            "outside the folder's hour"
        ),
        write_log(storage, "dev", NOW, "never", model_version=["7"] * 3): (
            "model version '7' was never deployed to dev by git"
        ),
    }
    result = digest_new(storage, LAYOUT, no_edges, NOW, deployed=deployed)

    assert result.log_files == 1 and result.rows == 3
    reasons = dict(result.refused)
    assert set(reasons) == set(refused_for)
    for key, words in refused_for.items():
        assert words in reasons[key], reasons[key]
    # the good file alone is summarised, in dev's hour: no prod summary, none in 2099
    hours = sorted(i.key for i in storage.list(LAYOUT.monitor("hours")))
    assert hours == [LAYOUT.monitor("hours", "dev", f"{hour_of(NOW)}.json")]
    summary = storage.read_json(hours[0])
    assert summary["files"] == [good] and summary["versions"]["2"]["rows"] == 3
    # each refusal is quarantined with its reason, and read no more
    quarantined = {
        storage.read_json(i.key)["source"]: storage.read_json(i.key)["reason"]
        for i in storage.list(LAYOUT.quarantine(""))
        if i.key.endswith("reason.json")
    }
    assert quarantined == reasons
    again = digest_new(storage, LAYOUT, no_edges, NOW, deployed=deployed)
    assert (again.log_files, again.refused) == (0, [])


def test_no_summary_later_than_now_decides_a_rollback(storage):
    """A summary dated 2099 (written into the bucket, or by a row the digest once took) made
    v1 look 'served last', so a v2 failing every request was never rolled back."""
    from mlops_assets.core.config import RollbackConfig
    from mlops_assets.monitoring.rollback import decide_rollback

    served = {"rows": 300, "errors": 0, "labelled": 0, "correct": 0, "requests": 300}
    storage.write_json(
        LAYOUT.monitor("hours", "dev", f"{hour_of(NOW)}.json"),
        {
            "files": [],
            "versions": {
                "1": {**served, "last": (NOW - timedelta(minutes=25)).isoformat()},
                "2": {**served, "errors": 300, "last": (NOW - timedelta(minutes=5)).isoformat()},
            },
        },
    )
    storage.write_json(
        LAYOUT.monitor("hours", "dev", "2099-01-01T00.json"),
        {"files": [], "versions": {"1": {**served, "last": "2099-01-01T00:00:00+00:00"}}},
    )
    decided = decide_rollback(storage, LAYOUT, "dev", RollbackConfig(), 24, NOW)
    assert decided is not None and (decided.version, decided.to) == (2, 1)


def test_a_decompression_bomb_is_refused_within_its_budget_and_blocks_nothing(storage):
    """A few kilobytes on storage that decode to hundreds of megabytes: refused once the
    decoded bytes pass the budget, the good file beside it folded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    deployed = DeployedVersions({"dev": frozenset({"2"})})
    good = write_log(storage, "dev", NOW, "good")
    rows = 200_000
    bomb = pa.table(
        {
            "request_id": pa.array(["x" * 1000] * rows),
            "row": pa.array(np.zeros(rows, "int32")),
            "time": pa.array([pd.Timestamp(NOW)] * rows, pa.timestamp("us", tz="UTC")),
            "environment": pa.array(["dev"] * rows),
            "model_version": pa.array(["2"] * rows),
            "prediction": pa.array(np.zeros(rows, "int64")),
        }
    )
    sink = pa.BufferOutputStream()
    pq.write_table(bomb, sink, compression="zstd", row_group_size=rows)
    data = sink.getvalue().to_pybytes()
    assert len(data) < 100_000  # what the storage holds; decoded, it is 200 MB
    key = f"{LAYOUT.inference('dev')}/{NOW:%Y-%m-%d}/{NOW:%H}/bomb.parquet"
    storage.write_bytes(key, data)

    result = digest_new(storage, LAYOUT, no_edges, NOW, deployed=deployed, budget_bytes=8 << 20)

    assert result.log_files == 1 and result.rows == 3
    (refused,) = result.refused
    assert refused[0] == key and "the 8388608-byte budget" in refused[1]
    assert storage.read_json(LAYOUT.monitor("hours", "dev", f"{hour_of(NOW)}.json"))["files"] == [
        good
    ]


def test_a_file_that_killed_two_runs_is_quarantined_and_a_good_one_is_not_lost(storage):
    """The index counts the runs that started reading a file before they read it: after two
    that never finished, the file is quarantined; a good file that a crash of an unrelated
    cause interrupted once is still read."""
    deployed = DeployedVersions({"dev": frozenset({"2"})})
    killer = write_log(storage, "dev", NOW, "killer")
    unlucky = write_log(storage, "dev", NOW - timedelta(minutes=5), "unlucky")
    index = LAYOUT.monitor("_digested", "dev", f"{hour_of(NOW)}.json")
    version = {i.key: i.version for i in storage.list(LAYOUT.inference("dev"))}
    # what two killed runs left of the first, and one run killed by something else
    storage.write_json(
        index,
        {
            killer: {"reading": version[killer], "runs": 2},
            unlucky: {"reading": version[unlucky], "runs": 1},
        },
    )
    result = digest_new(storage, LAYOUT, no_edges, NOW, deployed=deployed)
    assert result.log_files == 1 and result.rows == 3
    (refused,) = result.refused
    assert refused[0] == killer and "2 monitor runs started reading it" in refused[1]
    assert storage.read_json(index) == {killer: version[killer], unlucky: version[unlucky]}


def test_a_rollback_acts_only_on_what_git_deploys_and_a_moved_champion(local_env):
    """The monitor's decision names v2; git already deploys v1 (a person rolled back), or
    the champion moved on to v3 meanwhile: refused, and the registry and git stay as they
    were. Before, the older version was committed even when the alias did not move."""
    from mlops_assets.core.config import DeployConfig, GateConfig, ModelConfig
    from mlops_assets.datasets.tabular.dataset import TabularDataset
    from mlops_assets.mlops.deploy import RollbackRefused, auto_rollback, run_deploy
    from mlops_assets.mlops.release import run_release
    from mlops_assets.mlops.train import run_train
    from mlops_assets.mlops.validate import run_validate
    from mlops_assets.registry import ModelRegistry
    from tests.support.use_cases import plain_release

    storage, gitops = plain_release(local_env)

    dataset, model = TabularDataset(), ModelConfig(params={"C": 10.0})
    for candidate in ("c2", "c3"):
        run_train(storage, LAYOUT, dataset, model, candidate)
        gate = GateConfig(threshold=0.5, on_hold="promote")  # the same data: a HOLD
        run_validate(storage, LAYOUT, dataset, gate, candidate, model.adapter)
        run_release(storage, LAYOUT, candidate, adapter=model.adapter)
        if candidate == "c2":
            run_deploy(storage, gitops, "digits", DeployConfig(), "", model.adapter)
    registry = ModelRegistry(storage, "digits")
    bare = local_env / ".mlops" / "gitops.git"
    assert registry.champion()["version"] == 3  # released, not deployed: git deploys v2

    def state():
        return registry.champion(), registry.history(), registry.status(2), git_log(bare)

    before = state()
    with pytest.raises(RollbackRefused, match="but the champion is now v3"):
        auto_rollback(storage, gitops, "digits", DeployConfig(), "r1", model.adapter, 2, 1, "x")
    assert state() == before
    with pytest.raises(RollbackRefused, match="git deploys v2 there, not v3"):
        auto_rollback(storage, gitops, "digits", DeployConfig(), "r2", model.adapter, 3, 2, "x")
    assert state() == before


# -- the server's request ids -------------------------------------------------------------


def post(url: str, body: dict) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        url + INFER, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def test_the_server_issues_the_request_id_and_echoes_the_callers(local_env):
    from mlops_assets.storage.local import LocalStorage

    storage = LocalStorage(root=str(local_env / ".mlops"))
    loaded, raw, _ = digits_svc()
    ids: list[str] = []
    for _restart in range(2):  # the same process restarted: no id repeats
        log = InferenceLog(storage, "digits", "dev", LogSettings(enabled=True, flush_seconds=0.1))
        with uvicorn_thread(create_app(loaded, Limits(), inference_log=log)) as url:
            for i in range(3):
                status, body, headers = post(url, infer_body([raw[i].tolist()], id="mine"))
                assert status == 200 and body["id"] == "mine"  # OIP: the caller's, echoed
                server_id = headers["x-request-id"]
                assert body["parameters"]["request_id"] == server_id
                assert uuid.UUID(server_id).version == 4
                ids.append(server_id)
            status, body, headers = post(url, infer_body([raw[0].tolist()]))
            assert body["id"] == headers["x-request-id"]  # no id given: the server's
            ids.append(headers["x-request-id"])
    assert len(set(ids)) == len(ids) == 8
    logged = pd.concat(
        pd.read_parquet(local_env / ".mlops" / i.key)
        for i in storage.list("inference/digits/dev")
        if i.key.endswith(".parquet")
    )
    assert sorted(logged["request_id"]) == sorted(ids)
    assert sorted(logged["client_id"]) == sorted(["mine"] * 6 + [""] * 2)


@pytest.mark.parametrize(
    "bad",
    ["x" * 129, "line\nbreak", "caf\u00e9", "", "tab\there"],
    ids=["too-long", "line-break", "non-ascii", "empty", "tab"],
)
def test_a_callers_id_that_cannot_be_echoed_is_a_400_before_predict(bad):
    adapter = CountingAdapter()
    with uvicorn_thread(create_app(counting_model(adapter), Limits())) as url:
        status, body, _ = post(url, infer_body([row(1)], id=bad))
        assert status == 400 and "id must be 1 to 128 printable ASCII" in body["error"]
        assert adapter.calls == []
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert 'model_requests_total{model="digits",outcome="400"} 1.0' in metrics


def test_large_ids_and_inputs_are_bounded_in_bytes_in_the_log_buffer():
    """Storage down: the buffer drops its oldest records by bytes as well as rows."""

    class Down:
        def write_bytes(self, key, data):
            raise OSError("storage down")

    log = InferenceLog(
        Down(),
        "digits",
        "dev",
        LogSettings(enabled=True, max_buffer_mb=1.0),  # type: ignore[arg-type]
    )
    x = np.zeros((100, 64), "float32")  # 25.6 kB of inputs a request
    for _ in range(200):
        log.record(str(uuid.uuid4()), "1", x, np.zeros(100, "int64"), 1.0, client_id="c" * 128)
    assert log.buffered_bytes <= 1024 * 1024 and log.dropped > 0
    assert log.buffered == sum(c.rows for c in log.buffer) < 200 * 100


def test_a_coalesced_call_that_fails_is_bisected_to_the_request_that_failed_it():
    """One poisoned request among seven queued behind a held call: it alone gets a 500,
    the six others are answered, within 2 log2(n) extra calls; the 5xx counter counts the
    server's one failure, the 400 of a malformed request is no 5xx."""
    hold = threading.Event()
    adapter = CountingAdapter(hold=hold)
    app = create_app(counting_model(adapter), Limits(max_batch_rows=8))
    with uvicorn_thread(app) as url:
        poisoned = row(9)
        poisoned[0] = POISON
        bodies = [infer_body([row(s)]) for s in range(7)]
        bodies.insert(4, infer_body([poisoned]))
        with ThreadPoolExecutor(max_workers=len(bodies) + 1) as pool:
            first = pool.submit(post, url, infer_body([row(100)]))
            assert adapter.entered.wait(10)
            futures = []
            for body in bodies:
                queued = len(app.batcher._queue)
                futures.append(pool.submit(post, url, body))
                deadline = time.monotonic() + 10
                while len(app.batcher._queue) == queued and time.monotonic() < deadline:
                    time.sleep(0.005)
            hold.set()
            answers = [f.result() for f in futures]
            assert first.result()[0] == 200
        assert [status for status, _, _ in answers] == [200] * 4 + [500] + [200] * 3
        assert adapter.calls[1] == 8 and len(adapter.calls) - 2 <= 2 * 3
        assert post(url, {"inputs": "nope"})[0] == 400
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert 'model_requests_total{model="digits",outcome="500"} 1.0' in metrics
        assert 'model_requests_total{model="digits",outcome="400"} 1.0' in metrics


def test_branch_deployments_have_their_own_agent_namespace_and_token():
    """A pull request runs its own code and can edit dagster_cloud.yaml: the split is the
    agents' (the cluster admins'), and the workflow's prod token is main's alone."""
    from pathlib import Path

    import yaml
    from dagster_cloud_cli.config.models import load_dagster_cloud_yaml
    from dagster_k8s.container_context import K8sContainerContext

    repo = Path(__file__).resolve().parents[2]
    prod = yaml.safe_load((repo / "charts/dagster-plus/agent-prod.yaml").read_text())
    branches = yaml.safe_load((repo / "charts/dagster-plus/agent-branches.yaml").read_text())
    assert prod["dagsterCloud"] == {
        "deployment": "prod",
        "branchDeployments": False,
        "agentTokenSecretName": "dagster-cloud-agent-token",
    }
    assert branches["dagsterCloud"]["branchDeployments"] is True
    assert not {"deployment", "deployments"} & set(branches["dagsterCloud"])
    assert (
        branches["dagsterCloud"]["agentTokenSecretName"]
        != prod["dagsterCloud"]["agentTokenSecretName"]
    )
    assert branches["workspace"]["namespace"] != prod["workspace"]["namespace"]

    (location,) = load_dagster_cloud_yaml((repo / "dagster_cloud.yaml").read_text()).locations
    assert K8sContainerContext.create_from_config(location.container_context).namespace is None

    workflow = yaml.safe_load((repo / ".github/workflows/dagster-plus.yml").read_text())
    assert "DAGSTER_CLOUD_API_TOKEN" not in workflow["env"]
    job = workflow["jobs"]["deploy"]
    assert job["env"]["DAGSTER_CLOUD_API_TOKEN"] == "${{ secrets.DAGSTER_CLOUD_API_TOKEN }}"
    assert job["environment"] == (
        "${{ github.event_name == 'push' && 'dagster-plus-prod' || 'dagster-plus-branches' }}"
    )
    assert workflow[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads `on` as True


def test_a_landing_name_that_is_not_utf8_is_quarantined_and_blocks_no_other(local_env):
    """Before, the name's `encode()` outside the per-file path failed every acquire."""
    import os

    from mlops_assets.datasets.tabular.acquire import run_acquire
    from mlops_assets.demo.digits_data import seed_digits
    from mlops_assets.storage.local import LocalStorage

    storage = LocalStorage(root=str(local_env / ".mlops"))
    seed_digits(storage, 2, [1])
    landing = local_env / ".mlops" / "landing" / "digits"
    (good,) = [p for p in landing.rglob("*") if p.is_file()]
    os.link(good, os.path.join(os.fsencode(good.parent), b"bad-\xff-name.csv"))

    result = run_acquire(storage, LAYOUT, "landing/digits")

    assert [record["source"] for record in result.new] == [good.relative_to(landing).as_posix()]
    (refused,) = result.refused
    assert "is not valid UTF-8" in refused[1]
    reasons = [
        storage.read_json(i.key)
        for i in storage.list(LAYOUT.quarantine(""))
        if i.key.endswith("reason.json")
    ]
    assert len(reasons) == 1 and "is not valid UTF-8" in reasons[0]["reason"]
    assert run_acquire(storage, LAYOUT, "landing/digits").refused == []  # not again


@pytest.mark.parametrize(
    "call",
    [
        lambda: values_path("dev\n", "digits"),
        lambda: ImageRequest("dev", "1.0\n"),
        lambda: default_policy("dev\n"),
        lambda: EnvironmentPolicy("mlops-dev\n", True),
    ],
    ids=["environment", "image tag", "new environment", "namespace"],
)
def test_a_trailing_newline_is_no_plain_name(call):
    """`^...$` with re.match let "dev\n" through; every name check is a fullmatch."""
    with pytest.raises((ValueError, GitOpsError), match="not a|must be"):
        call()


def test_application_names_that_would_collide_are_refused(git_server):
    """The ApplicationSet names an Application <use case>-<environment>: digits_y in dev
    and digits in y-dev would both be digits-y-dev."""
    url, bare = git_server
    repo = GitOpsRepo(url)

    def init(environment: str):
        return repo.init_environment(
            environment, environment_yaml(environment, default_policy(environment))
        )

    def first_deploy(environment: str, use_case: str):
        model = {"name": use_case, "version": "1", "uri": f"s3://m/{use_case}/1/m", "sha256": "0"}
        return repo.deploy(DeployRequest(environment, use_case, model))

    init("dev")
    first_deploy("dev", "digits_y")
    before = git_log(bare)
    with pytest.raises(GitOpsError, match="would be the Argo CD Application 'digits-y-dev'"):
        init("y-dev")
    init("x-dev")
    first_deploy("x-dev", "digits")
    middle = git_log(bare)
    with pytest.raises(GitOpsError, match="the name of digits in x-dev already"):
        first_deploy("dev", "digits_x")
    assert git_log(bare) == middle != before  # the refusals committed nothing


def probe(*args: object) -> dict:
    """tests/support/rss_probe.py in a process of its own: its peak RSS and what it measured."""
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, "-m", "tests.support.rss_probe", *map(str, args)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_servers_peak_memory_is_bounded_by_the_log_buffers_bytes():
    """150 requests of 1024 rows with the storage down: 40 MB of records would wait in
    the buffer; bounded at 8 MiB, the oldest are dropped and the process stays smaller."""
    bounded, unbounded = probe("server", 8, 150), probe("server", 1000, 150)
    assert bounded["buffered_bytes"] <= 8 * 1024 * 1024 < unbounded["buffered_bytes"]
    assert bounded["dropped"] > 0 and unbounded["dropped"] == 0
    held = (unbounded["buffered_bytes"] - bounded["buffered_bytes"]) // 1024
    assert bounded["peak_kb"] < unbounded["peak_kb"] - held // 2, (bounded, unbounded)


def test_the_monitors_peak_memory_is_bounded_by_its_file_budget():
    """A 300 kB Parquet file that decodes to 300 MB: with a 16 MiB budget the monitor
    refuses it having grown by a small multiple of the budget; without one it would hold
    the whole of it."""
    bounded, unbounded = probe("monitor", 16, 300_000), probe("monitor", 2000, 300_000)
    assert (bounded["refused"], bounded["folded"]) == (1, 0)
    assert (unbounded["refused"], unbounded["folded"]) == (0, 1)
    assert bounded["peak_kb"] - bounded["before_kb"] < 4 * 16 * 1024
    assert unbounded["peak_kb"] - unbounded["before_kb"] > 200 * 1024


@pytest.mark.parametrize("storage_env", ["local"], indirect=True)
@pytest.mark.slow
def test_forged_logs_and_a_duplicated_id_change_nothing_through_the_runs(
    storage, monkeypatch, git_server
):
    """Digits v1 then v2 deployed to dev through git, v2 served by the real server. Written
    into dev's log prefix: a file saying prod's v2 failed 300 requests, one with a row dated
    2099, and one repeating a real request's server id. The monitor job leaves the registry,
    the GitOps repository and the labelled data as they were (but for the two requests it
    can stand behind), and says why, one line a file."""
    import dagster as dg

    from mlops_assets.datasets.tabular.split import read_split
    from mlops_assets.definitions import build_definitions
    from mlops_assets.demo.digits_data import seed_digits
    from mlops_assets.registry import ModelRegistry
    from mlops_assets.serving.loader import load_from_registry

    url, bare = git_server
    monkeypatch.setenv("MLOPS_GITOPS_REMOTE", url)
    defs = build_definitions()
    registry = ModelRegistry(storage, "digits")
    with dg.instance_for_test() as instance:

        def job(name: str) -> dg.ExecuteInProcessResult:
            if name == "digits_mlops":  # and the release run its gate sensor starts
                return run_mlops(defs, instance)
            return defs.resolve_job_def(name).execute_in_process(instance=instance)

        seed_digits(storage, 5, [1, 2, 3])
        assert job("digits_dataops").success and job("digits_mlops").success
        seed_digits(storage, 5, [4, 5])
        assert job("digits_dataops").success and job("digits_mlops").success
        assert registry.champion()["version"] == 2
        version = storage.read_json("datasets/digits/latest.json")["dataset_version"]
        rows = read_split(storage, LAYOUT, version, "test")
        pixels = np.round(rows[[f"pixel_{i}" for i in range(64)]].to_numpy() * 16)[:3]
        loaded = load_from_registry(storage, "digits", 2, adapter="sklearn_svc")
        log = InferenceLog(storage, "digits", "dev", LogSettings(enabled=True, flush_seconds=0.1))
        with uvicorn_thread(create_app(loaded, Limits(), inference_log=log)) as server:
            answers = [post(server, infer_body([p.tolist()], id="same")) for p in pixels]
        ids = [headers["x-request-id"] for _, _, headers in answers]
        assert [body["id"] for _, body, _ in answers] == ["same"] * 3
        now = datetime.now(UTC)
        forged = write_log(
            storage, "dev", now, "forged", environment=["prod"] * 300, error=[True] * 300
        )
        future = write_log(storage, "dev", now, "future", time=[now, now.replace(year=2099)])
        write_log(storage, "dev", now, "again", request_id=[ids[0]])  # believed: dev, v2
        labels = pd.DataFrame({"request_id": ids + ["same"], "label": [1, 2, 3, 4]})
        storage.write_bytes("feedback/digits/labels.csv", labels.to_csv(index=False).encode())

        before = (registry.champion(), registry.history(), git_log(bare))
        monitored = job("digits_monitor")

        assert monitored.success
        assert (registry.champion(), registry.history(), git_log(bare)) == before
        meta = instance.get_latest_materialization_event(
            dg.AssetKey(["digits", "monitor"])
        ).asset_materialization.metadata
        assert meta["rollback"].value == {}
        refused = [
            e.message
            for e in instance.all_logs(monitored.run_id)
            if "refused and quarantined" in (e.message or "")
        ]
        assert len(refused) == 2 and all("\n" not in line for line in refused)
        assert any(forged in line and "rows say environment 'prod'" in line for line in refused)
        assert any(future in line and "2099" in line for line in refused)
        # the labelled data: the two requests whose server id is logged once, nothing else
        labelled = pd.concat(
            storage.read_parquet(i.key)
            for i in storage.list(LAYOUT.monitor("labelled"))
            if i.key.endswith(".parquet")
        )
        assert sorted(labelled["request_id"]) == sorted(ids[1:])
        (quarantined,) = [
            i.key for i in storage.list(LAYOUT.quarantine("")) if i.key.endswith("rows.csv")
        ]
        reasons = pd.read_csv(BytesIO(storage.read_bytes(quarantined))).set_index("request_id")
        assert "logged more than once: ambiguous" in reasons.loc[ids[0], "reason"]
        assert "is not in the inference log" in reasons.loc["same", "reason"]
