"""The loop without hands, and the UI: `dagster dev` (webserver and daemon) on the local
default, driven only through its GraphQL API and by dropping files in the landing zone."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from mlops_assets.demo.digits_data import seed_digits
from mlops_assets.storage.local import LocalStorage
from tests.support.processes import clean_env, dagster_dev

STEPS = (
    "acquire",
    "observe",
    "clean",
    "transform",
    "split",
    "train",
    "validate",
    "release",
    "deploy",
)
WORKSPACE = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
  locationOrLoadError { __typename
    ... on PythonError { message }
    ... on RepositoryLocation { name repositories { name
      jobs { name }
      sensors { name sensorState { status } }
      schedules { name }
      assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } }
} } } } } } }"""
LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""
RUN = """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"""
RUNS = """{ runsOrError { ... on Runs { results { runId jobName status tags { key value } } } } }"""


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        json.dumps({"query": query, "variables": variables or {}}).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body["errors"]
    return body["data"]


def wait_for(what: str, check, timeout: float = 240.0, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out waiting for {what}\n{tail}")


def commits(bare: Path) -> list[str]:
    if not bare.exists():
        return []
    done = subprocess.run(
        ["git", "--git-dir", str(bare), "log", "--format=%s", "main"],
        capture_output=True,
        text=True,
    )
    return done.stdout.splitlines() if done.returncode == 0 else []


@pytest.fixture
def dev(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **clean_env(),
        "DAGSTER_HOME": str(tmp_path / "home"),
        "MLOPS_STORAGE_ROOT": str(tmp_path / ".mlops"),
        "MLOPS_SENSOR_INTERVAL_SECONDS": "3",
    }
    with dagster_dev(tmp_path, env) as url:
        yield url, tmp_path


@pytest.mark.slow
def test_ui_lists_both_use_cases_and_a_dropped_file_reaches_a_gitops_commit(dev):
    url, root = dev
    log = root / "dagster-dev.log"
    (entry,) = graphql(url, WORKSPACE)["workspaceOrError"]["locationEntries"]
    location = entry["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", location
    (repository,) = location["repositories"]
    assets = {"/".join(a["assetKey"]["path"]) for a in repository["assetNodes"]}
    production = ("inference_log", "feedback", "monitor")
    assert assets == {f"{uc}/{s}" for uc in ("digits", "lsfb") for s in STEPS + production}
    checks = {
        "/".join(a["assetKey"]["path"]) + ":" + c["name"]
        for a in repository["assetNodes"]
        for c in a["assetChecksOrError"].get("checks", [])
    }
    assert {
        "digits/validate:gate",
        "lsfb/validate:gate",
        "lsfb/split:signers_in_one_split",
        "digits/deploy:deployed_is_champion",
    } <= checks
    assert len(checks) == 16 + 2 * 3  # and each monitor's three
    sensors = {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
    assert sensors == {
        "digits_landing_sensor": "RUNNING",
        "digits_new_dataset_sensor": "RUNNING",
        "digits_gate_sensor": "RUNNING",
        "lsfb_source_sensor": "STOPPED",
        "lsfb_new_dataset_sensor": "STOPPED",
        "lsfb_gate_sensor": "STOPPED",
        "digits_retrain_trigger": "RUNNING",
        "lsfb_retrain_trigger": "STOPPED",
        "digits_rollback_trigger": "RUNNING",
        "lsfb_rollback_trigger": "STOPPED",
    }
    assert {s["name"] for s in repository["schedules"]} == {
        "digits_retrain_schedule",
        "digits_reobserve_schedule",
        "lsfb_retrain_schedule",
        "digits_monitor_schedule",
        "lsfb_monitor_schedule",
    }
    assert {j["name"] for j in repository["jobs"]} >= {
        "digits_dataops",
        "digits_mlops",
        "digits_reobserve",
        "lsfb_dataops",
        "lsfb_mlops",
    }

    # launching the DataOps job from the UI's API (nothing has landed yet: it says so)
    launched = graphql(
        url,
        LAUNCH,
        {
            "p": {
                "selector": {
                    "repositoryLocationName": location["name"],
                    "repositoryName": repository["name"],
                    "jobName": "digits_dataops",
                },
                "runConfigData": {},
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = wait_for(
        "the launched run",
        lambda: (
            (s := graphql(url, RUN, {"id": run_id})["runOrError"]["status"])
            in ("SUCCESS", "FAILURE", "CANCELED")
            and s
        ),
        log=log,
    )
    assert status == "SUCCESS"

    # the loop: files land, nobody presses anything
    storage = LocalStorage(root=str(root / ".mlops"))
    bare = root / ".mlops" / "gitops.git"
    seed_digits(storage, 5, [1, 2, 3])
    wait_for(
        "v1 deployed", lambda: any(c.startswith("Deploy digits v1") for c in commits(bare)), log=log
    )
    seed_digits(storage, 5, [4])

    def ended(job: str) -> list[dict]:
        return sorted(
            (
                r
                for r in graphql(url, RUNS)["runsOrError"]["results"]
                if r["jobName"] == job and r["status"] in ("SUCCESS", "FAILURE")
            ),
            key=lambda r: r["runId"],
        )

    wait_for("a second MLOps run to end", lambda: len(ended("digits_mlops")) >= 2, log=log)
    gates = ended("digits_mlops")
    if gates[-1]["status"] == "SUCCESS":  # the gate did not reject: its release run follows
        wait_for("a second release run", lambda: len(ended("digits_release")) >= 2, log=log)
    runs = graphql(url, RUNS)["runsOrError"]["results"]
    by_job = {}
    for run in runs:
        by_job.setdefault(run["jobName"], []).append(run)
    sensors_that_launched = {
        t["value"] for r in runs for t in r["tags"] if t["key"] == "dagster/sensor_name"
    }
    assert sensors_that_launched == {
        "digits_landing_sensor",
        "digits_new_dataset_sensor",
        "digits_gate_sensor",
    }
    assert len(by_job["digits_dataops"]) == 3  # the launched one and one per drop
    assert all(r["status"] == "SUCCESS" for r in by_job["digits_dataops"])
    assert len(by_job["digits_mlops"]) == 2  # one per new dataset version, none twice
    # one release run per candidate the gate did not reject, each started by its sensor
    assert len(by_job["digits_release"]) == sum(g["status"] == "SUCCESS" for g in gates)
    assert all(r["status"] == "SUCCESS" for r in by_job["digits_release"])
    second = commits(bare)[0]
    # either a release and its commit, or a rejection the gate's run shows
    if second.startswith("Deploy digits v2"):
        assert all(r["status"] == "SUCCESS" for r in gates)
    else:
        assert gates[-1]["status"] == "FAILURE"
