"""The inference log, written by the model server under uvicorn on loopback: the records
equal the requests, on the local default and on S3 (moto server), and the storage going
away never costs a request; the log resumes when it is back."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_assets.serving.app import create_app
from mlops_assets.serving.inference_log import InferenceLog, LogSettings
from mlops_assets.serving.limits import Limits
from tests.support.http_servers import uvicorn_thread
from tests.support.model_servers import FEATURES, digits_svc, infer_body
from tests.support.processes import free_port, stop, wait_for_http

INFER = "/v2/models/digits/infer"


def post(url: str, body: dict) -> tuple[int, dict, str | None]:
    request = urllib.request.Request(
        url + INFER, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read()), response.headers["x-request-id"]


def logged(storage) -> pd.DataFrame:
    keys = sorted(
        i.key for i in storage.list("inference/digits/dev/") if i.key.endswith(".parquet")
    )
    frames = [storage.read_parquet(k) for k in keys]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@pytest.fixture(scope="module")
def svc():
    return digits_svc()


@contextmanager
def logging_server(loaded, storage, **settings):
    log = InferenceLog(storage, "digits", "dev", LogSettings(enabled=True, **settings))
    with uvicorn_thread(create_app(loaded, Limits(), inference_log=log)) as url:
        yield url, log


def test_the_log_holds_every_request_as_it_was_answered(svc, tmp_path):
    from mlops_assets.storage.local import LocalStorage

    loaded, raw_rows, predicted = svc
    storage = LocalStorage(root=str(tmp_path / ".mlops"))
    sent = []
    with logging_server(loaded, storage, flush_rows=25, flush_seconds=0.2) as (url, log):
        for i in range(40):
            rows = raw_rows[i : i + 1 + i % 3]
            body = infer_body(rows.tolist(), **({"id": f"caller-{i}"} if i % 2 else {}))
            status, answer, header = post(url, body)
            # changed on purpose (trust boundaries): the log holds the server's id, the
            # response echoes the caller's id where it gave one
            assert status == 200 and answer["parameters"]["request_id"] == header
            assert answer["id"] == (f"caller-{i}" if i % 2 else header)
            sent.append((header, rows, answer["outputs"][0]["data"]))
    # the server has stopped: its last buffer was flushed at shutdown
    frame = logged(storage)
    assert len(frame) == sum(len(rows) for _, rows, _ in sent)
    assert log.dropped == 0 and log.files >= 2
    by_id = {rid: group.sort_values("row") for rid, group in frame.groupby("request_id")}
    assert set(by_id) == {rid for rid, _, _ in sent}
    for rid, rows, answered in sent:
        records = by_id[rid]
        assert records["prediction"].tolist() == answered
        assert set(records["model_version"]) == {"1"} and set(records["environment"]) == {"dev"}
        assert len(set(records["client_id"])) == 1
        inputs = np.stack(records["inputs"].to_numpy())
        assert np.allclose(inputs, rows / 16)  # the model's input: after the transform
    assert (frame["latency_ms"] > 0).all()


def test_summary_mode_keeps_row_statistics_not_values(svc, tmp_path):
    from mlops_assets.storage.local import LocalStorage

    loaded, raw_rows, _ = svc
    storage = LocalStorage(root=str(tmp_path / ".mlops"))
    with logging_server(loaded, storage, inputs="summary", flush_seconds=0.1) as (url, _):
        post(url, infer_body(raw_rows[:4].tolist()))
    frame = logged(storage)
    assert "inputs" not in frame and len(frame) == 4
    assert np.allclose(frame["input_mean"], (raw_rows[:4] / 16).mean(axis=1), atol=1e-6)
    assert np.allclose(frame["input_max"], (raw_rows[:4] / 16).max(axis=1))


@contextmanager
def moto(port: int):
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/moto-api/")
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def metric(url: str, name: str) -> float:
    text = urllib.request.urlopen(url + "/metrics").read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


@pytest.mark.slow
def test_the_storage_going_away_costs_no_request_and_logging_resumes(svc, monkeypatch):
    import boto3
    from dagster_aws.s3 import S3Resource

    from mlops_assets.storage.s3 import S3Storage

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    loaded, raw_rows, predicted = svc
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"

    def bucket() -> None:
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="logs")

    storage = S3Storage(
        s3=S3Resource(endpoint_url=endpoint, region_name="us-east-1", max_attempts=1),
        bucket="logs",
        prefix="mlops",
    )
    settings = {"flush_rows": 10, "flush_seconds": 0.2, "max_buffer_rows": 30}
    with logging_server(loaded, storage, **settings) as (url, log):
        with moto(port):
            bucket()
            for i in range(10):
                assert post(url, infer_body(raw_rows[i : i + 1].tolist()))[0] == 200
            deadline = time.monotonic() + 20
            while log.written < 10 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert log.written == 10
        # the storage is gone: every request is still answered, the buffer is bounded
        for i in range(60):
            status, answer, _ = post(url, infer_body(raw_rows[i : i + 1].tolist()))
            assert status == 200 and answer["outputs"][0]["data"] == predicted[i : i + 1].tolist()
        assert log.buffered <= 30
        # a flush that was in flight when the requests ended holds its rows outside the
        # buffer until it fails; then they are back, and the bound drops the oldest
        deadline = time.monotonic() + 20
        while log.dropped < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.dropped >= 30 and metric(url, "model_inference_log_dropped_total") >= 30
        with moto(port):  # back (empty, as a fresh bucket would be)
            bucket()
            deadline = time.monotonic() + 60
            while log.written < 40 and time.monotonic() < deadline:
                time.sleep(0.1)  # (the buffer empties when a flush starts, not when it ends)
            assert log.written == 40 and not log.buffered  # written by itself once it is back
            resumed = logged(storage)
            assert len(resumed) == 30  # what the bound kept: the newest records
            assert resumed["prediction"].tolist() == predicted[30:60].tolist()


def test_logging_off_writes_nothing(svc, tmp_path):
    from mlops_assets.storage.local import LocalStorage

    loaded, raw_rows, _ = svc
    storage = LocalStorage(root=str(tmp_path / ".mlops"))
    log = InferenceLog(storage, "digits", "dev", LogSettings(enabled=False))
    with uvicorn_thread(create_app(loaded, inference_log=log)) as url:
        status, answer, header = post(url, infer_body(raw_rows[:1].tolist()))
        assert status == 200 and header and answer["id"] == header
    assert not list(Path(tmp_path / ".mlops").rglob("*.parquet"))
    assert FEATURES == 64
