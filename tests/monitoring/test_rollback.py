"""Automatic rollback, end to end on the local default, with the real model server and a git
daemon: v2 is deployed over v1, labelled traffic shows v2 worse live, the
monitor decides, the rollback sensor starts the deploy step, the GitOps remote gets the
rollback commit, the registry has v1 champion and v2 rolled back, and nothing puts v2 back."""

from __future__ import annotations

import subprocess

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from mlops_assets.cli.monitor import drifted  # the traffic command's shift of the digits
from mlops_assets.datasets.tabular.split import read_split
from mlops_assets.definitions import build_definitions
from mlops_assets.demo.digits_data import seed_digits
from mlops_assets.registry import ModelRegistry
from mlops_assets.serving.app import create_app
from mlops_assets.serving.inference_log import InferenceLog, LogSettings
from mlops_assets.serving.limits import Limits
from mlops_assets.serving.loader import load_from_registry
from mlops_assets.storage import Layout
from tests.support.http_servers import uvicorn_thread
from tests.support.mlops_runs import run_mlops
from tests.support.model_servers import ask

MONITOR = dg.AssetKey(["digits", "monitor"])


def head(bare) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(bare), "log", "-1", "--format=%H%n%B", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def served(storage, version: int, rows: np.ndarray, labels: np.ndarray) -> None:
    """`version` answers `rows` under uvicorn, logging them; their labels land as feedback."""
    loaded = load_from_registry(storage, "digits", version, adapter="sklearn_svc")
    log = InferenceLog(storage, "digits", "dev", LogSettings(enabled=True, flush_seconds=0.1))
    feedback = []
    with uvicorn_thread(create_app(loaded, Limits(), inference_log=log)) as url:
        for row, label in zip(rows, labels, strict=True):
            request_id, _ = ask(url, row[None, :])
            feedback.append({"request_id": request_id, "label": int(label)})
    storage.write_bytes(
        f"feedback/digits/v{version}.csv", pd.DataFrame(feedback).to_csv(index=False).encode()
    )


# the registry's compare-and-swap on S3 is run by tests/mlops/test_mlops.py and test_faults.py
@pytest.mark.parametrize("storage_env", ["local"], indirect=True)
@pytest.mark.slow
def test_a_regressed_deploy_is_rolled_back_through_git(storage, monkeypatch, git_server):
    url, bare = git_server
    monkeypatch.setenv("MLOPS_GITOPS_REMOTE", url)
    defs = build_definitions()
    registry = ModelRegistry(storage, "digits")

    def job(name: str, **kwargs) -> dg.ExecuteInProcessResult:
        if name == "digits_mlops":  # and the release run its gate sensor starts
            return run_mlops(defs, instance, **kwargs)
        return defs.resolve_job_def(name).execute_in_process(instance=instance, **kwargs)

    def tick(sensor: str, cursor: str | None = None):
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources={"storage": storage}
        ) as context:
            return defs.resolve_sensor_def(sensor).evaluate_tick(context)

    with dg.instance_for_test() as instance:
        seed_digits(storage, 5, [1, 2, 3])
        assert job("digits_dataops").success and job("digits_mlops").success
        assert head(bare).splitlines()[1].startswith("Deploy digits v1 to dev")
        version = storage.read_json("datasets/digits/latest.json")["dataset_version"]
        rows = pd.concat(
            read_split(storage, Layout("digits"), version, s) for s in ("test", "val", "train")
        )
        pixels = np.round(rows[[f"pixel_{i}" for i in range(64)]].to_numpy() * 16)[:220]
        labels = rows["label"].to_numpy()[:220]
        served(storage, 1, pixels, labels)  # v1 in production: mostly right

        seed_digits(storage, 5, [4, 5])
        assert job("digits_dataops").success and job("digits_mlops").success
        assert registry.champion()["version"] == 2
        assert head(bare).splitlines()[1].startswith("Deploy digits v2 to dev (was v1)")
        served(storage, 2, drifted(pixels, 64, 0, 16), labels)  # v2: production has drifted

        monitored = job("digits_monitor")
        decided = (
            instance.get_latest_materialization_event(MONITOR)
            .asset_materialization.metadata["rollback"]
            .value
        )
        assert monitored.success and decided["version"] == 2 and decided["to"] == 1
        assert "Fisher's exact test, one-sided" in decided["reason"]
        # retraining waits for the rollback
        assert "rollback" in tick("digits_retrain_trigger").skip_message

        first = tick("digits_rollback_trigger")
        (request,) = first.run_requests
        assert request.tags["mlops/trigger"] == "rollback"
        rolled = job("digits_rollback", run_config=request.run_config, tags=request.tags)
        assert rolled.success

        commit = head(bare)
        assert commit.splitlines()[1].startswith("Roll back digits v2 to v1 in dev")
        assert "Rolled-Back-Version: 2" in commit and "Model-Version: 1" in commit
        assert decided["reason"] in commit
        values = subprocess.run(
            ["git", "--git-dir", str(bare), "show", "main:environments/dev/digits/values.yaml"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "version: '1'" in values or 'version: "1"' in values
        champion = registry.champion()
        assert champion["version"] == 1 and not champion["pinned"]
        assert registry.status(2)["status"] == "rolled_back"
        assert registry.history()[-1]["action"] == "rollback"
        from click.testing import CliRunner

        from mlops_assets.cli import main

        listed = CliRunner().invoke(main, ["registry", "list"]).output
        assert "v2" in listed and "rolled back: v2 in dev" in listed
        history = CliRunner().invoke(main, ["registry", "history"]).output
        assert "rollback v1 (was v2)" in " ".join(history.split())

        # nothing puts v2 back: the monitor does not decide again, the trigger does not
        # repeat, and the next automatic runs deploy the champion, v1
        assert job("digits_monitor").success
        again = (
            instance.get_latest_materialization_event(MONITOR)
            .asset_materialization.metadata["rollback"]
            .value
        )
        assert again == {}
        assert tick("digits_rollback_trigger", first.cursor).run_requests == []
        before = commit.splitlines()[0]
        assert job("digits_mlops").success
        job("digits_release", asset_selection=[dg.AssetKey(["digits", "deploy"])])
        assert head(bare).splitlines()[0] == before
        assert registry.champion()["version"] == 1


def test_the_error_rate_alone_decides_and_an_older_version_is_a_persons_rollback(storage):
    from datetime import UTC, datetime

    from mlops_assets.core.config import RollbackConfig
    from mlops_assets.monitoring.rollback import decide_rollback

    layout = Layout("digits")
    now = datetime(2026, 11, 28, 12, 30, tzinfo=UTC)

    def hour(versions: dict) -> None:
        storage.write_json(
            layout.monitor("hours", "dev", "2026-11-28T12.json"),
            {"files": [], "versions": versions},
        )

    served = {"rows": 300, "errors": 0, "labelled": 0, "correct": 0}
    hour(
        {
            "1": {**served, "last": "2026-11-28T12:05:00+00:00"},
            "2": {**served, "errors": 40, "last": "2026-11-28T12:25:00+00:00"},
        }
    )
    decided = decide_rollback(storage, layout, "dev", RollbackConfig(), 24, now)
    assert decided and (decided.version, decided.to) == (2, 1)
    assert "40 of 300 requests failed (13.3%, more than 5.0%)" in decided.reason
    # below the threshold, or with too few labels to compare: nothing to decide
    hour(
        {
            "1": {**served, "last": "2026-11-28T12:05:00+00:00"},
            "2": {**served, "errors": 3, "last": "2026-11-28T12:25:00+00:00"},
        }
    )
    assert decide_rollback(storage, layout, "dev", RollbackConfig(), 24, now) is None
    # the older version serving last is a rollback someone made, not a regression
    hour(
        {
            "2": {**served, "last": "2026-11-28T12:05:00+00:00"},
            "1": {**served, "errors": 90, "last": "2026-11-28T12:25:00+00:00"},
        }
    )
    assert decide_rollback(storage, layout, "dev", RollbackConfig(), 24, now) is None
