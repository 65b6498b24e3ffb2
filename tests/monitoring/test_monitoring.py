"""The production side of the loop with real parts: the model server under uvicorn on
loopback writes the inference log, feedback lands and is joined, the monitor's figures
equal what this test computes from the raw Parquet records with pandas and scipy, drift
sent through the server fails `inputs_not_drifting`, and the retraining it triggers lands
the labelled requests as a batch that ends up in the next dataset version."""

from __future__ import annotations

import json
from contextlib import contextmanager
from io import BytesIO

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import binomtest

from mlops_assets.cli import main
from mlops_assets.datasets.tabular.split import read_split
from mlops_assets.definitions import build_definitions
from mlops_assets.demo.digits_data import seed_digits
from mlops_assets.serving.app import create_app
from mlops_assets.serving.inference_log import InferenceLog, LogSettings
from mlops_assets.serving.limits import Limits
from mlops_assets.serving.loader import load_from_registry
from mlops_assets.storage import Layout
from tests.support.http_servers import uvicorn_thread
from tests.support.mlops_runs import run_mlops
from tests.support.model_servers import ask

MONITOR = dg.AssetKey(["digits", "monitor"])


@pytest.fixture
def storage(local_env):
    """The local default: the test reads the raw records as files (the inference log on S3
    is tests/monitoring/test_inference_log.py's business)."""
    from mlops_assets.resources import build_storage
    from mlops_assets.settings import load_settings

    return build_storage(load_settings())


def released(storage, instance) -> str:
    """Three digits batches through DataOps and MLOps; returns the dataset version."""
    defs = build_definitions()
    seed_digits(storage, 3, [1, 2, 3])
    assert defs.resolve_job_def("digits_dataops").execute_in_process(instance=instance).success
    assert run_mlops(defs, instance).success
    return storage.read_json("datasets/digits/latest.json")["dataset_version"]


@contextmanager
def serving(storage):
    loaded = load_from_registry(storage, "digits", adapter="sklearn_svc")
    settings = LogSettings(enabled=True, flush_rows=50, flush_seconds=0.2)
    log = InferenceLog(storage, "digits", "dev", settings)
    with uvicorn_thread(create_app(loaded, Limits(), inference_log=log)) as url:
        yield url
    # the server stopped: its last records were flushed on the way out


def run_monitor_job(instance) -> dg.ExecuteInProcessResult:
    return (
        build_definitions()
        .resolve_job_def("digits_monitor")
        .execute_in_process(instance=instance, raise_on_error=False)
    )


def materialization(result, step: str) -> dict:
    (event,) = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["digits", step])
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    p = np.clip(expected / expected.sum(), 1e-4, None)
    q = np.clip(actual / actual.sum(), 1e-4, None)
    return float(np.sum((q - p) * np.log(q / p)))


# the join and the summaries are the point; the log on S3 runs in
# tests/monitoring/test_inference_log.py
@pytest.mark.parametrize("storage_env", ["local"], indirect=True)
@pytest.mark.slow
def test_feedback_joins_and_the_monitor_equals_the_raw_records(
    storage_env, monkeypatch: pytest.MonkeyPatch
):
    """The files are read back as bytes through the storage, the figures computed here
    with pandas and scipy."""
    from mlops_assets.resources import build_storage
    from mlops_assets.settings import load_settings

    storage = build_storage(load_settings())

    def frame(key: str) -> pd.DataFrame:
        return pd.read_parquet(BytesIO(storage.read_bytes(key)))

    def keys(prefix: str) -> set[str]:
        return {i.key for i in storage.list(prefix)}

    with dg.instance_for_test() as instance:
        version = released(storage, instance)
        test = read_split(storage, Layout("digits"), version, "test")
        features = [c for c in test.columns if c.startswith("pixel_")]
        raw = np.round(test[features].to_numpy() * 16)
        sent = []
        with serving(storage) as url:
            for i in range(230):  # one row each, and a few two-row requests
                rows = raw[i : i + (2 if i % 50 == 0 else 1)]
                request_id, predicted = ask(url, rows)
                sent.append((request_id, predicted, test["label"].to_numpy()[i : i + len(rows)]))
        log = pd.concat(
            [frame(k) for k in sorted(keys("inference/digits/dev")) if k.endswith(".parquet")],
            ignore_index=True,
        )
        # the log holds the requests: count, ids, versions, predictions
        assert len(log) == sum(len(p) for _, p, _ in sent)
        assert set(log["request_id"]) == {rid for rid, _, _ in sent}
        assert set(log["model_version"]) == {"1"}
        answered = log.sort_values(["request_id", "row"]).groupby("request_id")["prediction"]
        assert {k: list(v) for k, v in answered} == {rid: p for rid, p, _ in sent}

        good = [
            {"request_id": rid, "row": r, "label": int(label)}
            for rid, _, labels in sent[:210]
            for r, label in enumerate(labels)
        ]
        bad = [
            {"request_id": "never-asked", "row": 0, "label": 1},
            {"request_id": sent[215][0], "row": 0, "label": 12},
            {"request_id": sent[216][0], "row": 0, "label": "seven"},
            {"request_id": sent[0][0], "row": 0, "label": (good[0]["label"] + 1) % 10},
        ]
        again = [dict(good[1])]  # the same label twice: nothing new, nothing wrong
        landing = "feedback/digits"
        labels_csv = pd.DataFrame(good + bad + again).to_csv(index=False).encode()
        storage.write_bytes(f"{landing}/labels.csv", labels_csv)
        storage.write_bytes(f"{landing}/empty.csv", b"")
        storage.write_bytes(f"{landing}/broken.parquet", b"PAR1 not really")
        wrong = pd.DataFrame({"id": ["x"], "lbl": [1]}).to_csv(index=False).encode()
        storage.write_bytes(f"{landing}/wrong.csv", wrong)

        first = run_monitor_job(instance)
        assert first.success
        feedback = materialization(first, "feedback")
        assert feedback["accepted"] == len(good) and feedback["quarantined_rows"] == len(bad)
        assert feedback["refused_files"] == 3
        quarantined = keys("quarantine/digits")
        (rows_csv,) = [k for k in quarantined if k.endswith("/rows.csv")]
        reasons = pd.read_csv(BytesIO(storage.read_bytes(rows_csv))).set_index("request_id")
        reasons = reasons["reason"]
        assert "not in the inference log of the last 7 days" in reasons["never-asked"]
        assert "label 12 is not a class of model v1 (0..9)" in reasons[sent[215][0]]
        assert "label 'seven' is not an integer" in reasons[sent[216][0]]
        assert f"was labelled {good[0]['label']} before" in reasons[sent[0][0]]
        notes = [
            json.loads(storage.read_bytes(k)) for k in quarantined if k.endswith("/reason.json")
        ]
        refused = {n["source"]: n["reason"] for n in notes if "reason" in n}
        assert "empty.csv: empty file" in refused["empty.csv"]
        assert "cannot be parsed as parquet" in refused["broken.parquet"]
        assert "missing columns request_id, label" in refused["wrong.csv"]

        # the monitor's figures, computed here from the raw records
        monitor = materialization(first, "monitor")
        labels = pd.DataFrame(good)
        joined = log.merge(labels, on=["request_id", "row"])
        correct = int((joined["prediction"] == joined["label"]).sum())
        ci = binomtest(correct, len(joined)).proportion_ci(0.95, method="wilson")
        assert monitor["rows"] == len(log) and monitor["requests"] == len(sent)
        assert monitor["labelled"] == len(joined) == len(good)
        assert monitor["live_metric"] == pytest.approx(correct / len(joined))
        assert (monitor["live_ci_low"], monitor["live_ci_high"]) == pytest.approx((ci.low, ci.high))
        train = read_split(storage, Layout("digits"), version, "train")
        inputs = np.stack(log["inputs"].to_numpy())
        for j, name in enumerate(features):
            cut = np.unique(np.quantile(train[name].to_numpy(), np.arange(1, 10) / 10))
            expected = np.bincount(
                np.searchsorted(cut, train[name].to_numpy(), side="right"), minlength=len(cut) + 1
            )
            actual = np.bincount(
                np.searchsorted(cut, inputs[:, j], side="right"), minlength=len(cut) + 1
            )
            assert monitor["input_psi"][name] == pytest.approx(psi(expected, actual), abs=1e-9)
        verdicts = checks(first)
        assert verdicts["live_metric_holds"].passed and verdicts["inputs_not_drifting"].passed
        assert verdicts["enough_feedback"].passed
        assert monitor["retrain"] == ""

        # a second run reads the log files written since, and no other
        before = keys("inference/digits")
        with serving(storage) as url:
            for i in range(20):
                ask(url, raw[i : i + 1])
        written = keys("inference/digits") - before
        assert written
        reads: list[str] = []
        backend = type(storage)
        plain = backend.read_bytes

        def counted(self, key: str) -> bytes:
            reads.append(key)
            return plain(self, key)

        monkeypatch.setattr(backend, "read_bytes", counted)  # the storage the run builds
        second = run_monitor_job(instance)
        monkeypatch.setattr(backend, "read_bytes", plain)
        assert second.success
        assert {k for k in reads if k.startswith("inference/")} == written
        assert materialization(second, "monitor")["rows"] == len(log) + 20


@pytest.mark.slow
def test_drift_fails_the_check_and_one_retraining_lands_the_labelled_rows(local_env, storage):
    from dagster._core.test_utils import create_run_for_test

    root = local_env / ".mlops"
    defs = build_definitions()
    trigger = defs.resolve_sensor_def("digits_retrain_trigger")
    landing_sensor = defs.resolve_sensor_def("digits_landing_sensor")

    def tick(sensor, instance, cursor=None):
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources={"storage": storage}
        ) as context:
            return sensor.evaluate_tick(context)

    with dg.instance_for_test() as instance:
        version = released(storage, instance)
        rows_before = sum(
            len(read_split(storage, Layout("digits"), version, s)) for s in ("train", "val", "test")
        )
        landing_cursor = tick(landing_sensor, instance).cursor
        with serving(storage) as url:
            runner = CliRunner()
            out = runner.invoke(main, ["traffic", "--url", url, "--requests", "250", "--drift"])
            assert out.exit_code == 0, out.output
            assert "250 label(s) landed" in out.output
        result = run_monitor_job(instance)
        verdict = checks(result)["inputs_not_drifting"]
        assert not verdict.passed and verdict.severity == dg.AssetCheckSeverity.ERROR
        assert "input feature(s) drifted" in verdict.description

        # a run of digits in progress: the trigger waits
        busy = create_run_for_test(
            instance,
            job_name="digits_mlops",
            status=dg.DagsterRunStatus.STARTED,
            tags={"mlops/use_case": "digits"},
        )
        waiting = tick(trigger, instance)
        assert waiting.run_requests == [] and "in progress" in waiting.skip_message
        assert not list((root / "landing/digits").glob("feedback-*"))
        instance.report_run_canceled(busy)

        # the decision waited (the cursor did not move past it): the next tick retrains
        fired = tick(trigger, instance, waiting.cursor)
        assert fired.run_requests == []  # the landing sensor starts DataOps, once
        (batch,) = (root / "landing/digits").glob("feedback-*.parquet")
        landed = pd.read_parquet(batch)
        assert len(landed) == 250 and landed["label"].between(0, 9).all()
        started = tick(landing_sensor, instance, landing_cursor)
        (request,) = started.run_requests
        assert request.tags["mlops/trigger"] == "monitor"
        assert tick(landing_sensor, instance, started.cursor).run_requests == []

        # the monitor runs again and still fails: the cool-down holds the trigger back
        assert run_monitor_job(instance).success
        again = tick(trigger, instance, fired.cursor)
        assert again.run_requests == [] and "cool-down" in again.skip_message
        assert len(list((root / "landing/digits").glob("feedback-*"))) == 1

        assert defs.resolve_job_def("digits_dataops").execute_in_process(instance=instance).success
        new = storage.read_json("datasets/digits/latest.json")["dataset_version"]
        assert new != version
        frames = [read_split(storage, Layout("digits"), new, s) for s in ("train", "val", "test")]
        assert sum(len(f) for f in frames) == rows_before + len(landed.drop_duplicates())
        features = [c for c in landed.columns if c.startswith("pixel_")]
        everything = pd.concat(frames)
        stored = {tuple(r) for r in np.round(everything[features].to_numpy() * 16).astype(int)}
        assert {tuple(r) for r in landed[features].to_numpy().astype(int)} <= stored


@pytest.mark.slow
def test_a_killed_server_loses_its_buffer_and_never_breaks_the_monitor(local_env, storage):
    import os
    import signal
    import subprocess
    import time

    from tests.support.processes import BIN, clean_env, free_port, wait_for_http

    root = local_env / ".mlops"
    with dg.instance_for_test() as instance:
        version = released(storage, instance)
        test = read_split(storage, Layout("digits"), version, "test")
        raw = np.round(test[[c for c in test.columns if c.startswith("pixel_")]].to_numpy() * 16)
        port = free_port()
        env = {
            **clean_env(),
            "MLOPS_STORAGE_ROOT": str(root),
            "MLOPS_INFERENCE_LOG_FLUSH_ROWS": "7",
            "MLOPS_INFERENCE_LOG_FLUSH_SECONDS": "3600",  # only full buffers are written
        }
        server = subprocess.Popen(
            [str(BIN / "mlops-assets"), "serve", "--version", "1", "--port", str(port)],
            cwd=local_env,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_http(f"{url}/v2/health/ready", timeout=60)
            for i in range(50):
                ask(url, raw[i : i + 1])
            folder = root / "inference/digits/dev"

            def written() -> int:
                return sum(len(pd.read_parquet(f)) for f in folder.rglob("*.parquet"))

            deadline = time.monotonic() + 30
            while written() < 50 - 6 and time.monotonic() < deadline:
                time.sleep(0.05)  # a flush takes the whole buffer once it holds 7 records
        finally:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        files = list(folder.rglob("*.parquet"))
        kept = written()
        assert 50 - 6 <= kept <= 50  # at most the unflushed buffer (under 7 records) is lost
        # what a writer killed mid-write leaves: a temporary file beside the log's files
        (files[0].parent / ".tmpkilled.tmp").write_bytes(b"PAR1 half a file")
        # and what must not block the good files: a torn file, a file naming a path
        (files[0].parent / "torn.parquet").write_bytes(b"PAR1 torn")
        evil = pd.read_parquet(files[0]).assign(environment="../../models")
        evil.to_parquet(files[0].parent / "evil.parquet")
        result = run_monitor_job(instance)
        assert result.success
        monitor = materialization(result, "monitor")
        assert monitor["rows"] == kept and monitor["log_files_refused"] == 2
        assert "environment '../../models' is not a plain name" in monitor["refused_files"]
        assert not (root / "models/digits").joinpath("hours").exists()


def test_the_feedback_command_lands_good_files_and_refuses_bad_ones(local_env, storage):
    good = local_env / "labels.csv"
    good.write_text("request_id,label,labelled_by\nabc,3,ana\n")
    bad = local_env / "bad.csv"
    bad.write_text("id,lbl\nabc,3\n")
    runner = CliRunner()
    refused = runner.invoke(main, ["feedback", "--file", str(bad)])
    assert refused.exit_code == 2
    assert "bad.csv: wrong columns: missing columns request_id, label" in refused.output
    landed = runner.invoke(main, ["feedback", "--file", str(good), "--label", "xyz", "7"])
    assert landed.exit_code == 0, landed.output
    files = sorted((local_env / ".mlops/feedback/digits").iterdir())
    assert [f.name.split("-")[0] for f in files] == ["cli", "labels"]
    assert pd.read_csv(files[1]).to_dict("records") == [
        {"request_id": "abc", "label": 3, "labelled_by": "ana"}
    ]
    by_hand = pd.read_csv(files[0])
    assert by_hand[["request_id", "label", "row"]].to_dict("records") == [
        {"request_id": "xyz", "label": 7, "row": 0}
    ]
    assert runner.invoke(main, ["feedback"]).exit_code == 2  # nothing to land
