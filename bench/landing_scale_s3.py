"""The S3 half of bench/landing_scale.py: requests per landing-sensor tick on a moto server.

A landing zone of N files already ingested (the sensor's cursor past them) and `new`
landed since; one tick per discovery mode, evaluated through Dagster's sensor API,
with every S3 and SQS request counted by a botocore hook. Requests are counted, not
timed: on loopback a request costs what moto costs, not what S3 does.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from bench.common import REPO

CALLS: Counter[str] = Counter()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _moto() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            return process, url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not start")


def _definitions(discovery: str, queue_url: str = ""):
    import dagster as dg
    import yaml

    from mlops_assets.components.tabular import TabularUseCase
    from mlops_assets.resources import environment_definitions
    from mlops_assets.settings import load_settings

    attributes = yaml.safe_load((REPO / "mlops_assets/defs/digits/defs.yaml").read_text())
    attributes = attributes["attributes"]
    attributes["dataset"]["landing"] = {
        "prefix": "landing/digits",
        "discovery": discovery,
        "queue_url": queue_url,
        "reconcile_hours": 0,
    }
    use_case = TabularUseCase.from_attributes_dict(attributes=attributes)
    return dg.Definitions.merge(use_case.build_defs(None), environment_definitions(load_settings()))


def _tick(storage, discovery: str, cursor: str | None, queue_url: str = "") -> tuple[dict, int]:
    import dagster as dg

    definitions = _definitions(discovery, queue_url)
    sensor = definitions.resolve_sensor_def("digits_landing_sensor")
    CALLS.clear()
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            definitions=definitions,
            resources={"storage": storage},
        ) as context,
    ):
        result = sensor.evaluate_tick(context)
    files = int(result.run_requests[0].tags["mlops/new_files"]) if result.run_requests else 0
    return dict(CALLS), files


def measure(history: int, new: int) -> list[dict]:
    import boto3
    from botocore.client import BaseClient

    process, url = _moto()
    bucket = "landing-scale"
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        MLOPS_S3_ENDPOINT_URL=url,
        AWS_ENDPOINT_URL_SQS=url,
        MLOPS_STORAGE_ROOT=f"s3://{bucket}/bench",
    )
    os.environ.pop("MLOPS_ENV", None)
    real = BaseClient._make_api_call

    def counting(self, operation, params):
        CALLS[operation] += 1
        return real(self, operation, params)

    try:
        from click.testing import CliRunner

        from mlops_assets.cli import main
        from mlops_assets.resources import build_storage
        from mlops_assets.settings import load_settings

        s3 = boto3.client("s3", endpoint_url=url)
        sqs = boto3.client("sqs", endpoint_url=url)
        s3.create_bucket(Bucket=bucket)
        names = [f"landing/digits/batch-{n:08d}.csv" for n in range(history + new)]

        def put(key: str) -> None:
            s3.put_object(Bucket=bucket, Key=f"bench/{key}", Body=key.encode())

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, names[:history]))
        storage = build_storage(load_settings())
        listed = storage.list("landing/digits")  # the cursor a running sensor has reached
        newest = max(info.modified_ns for info in listed)
        seen = [f"{i.key}@{i.version}" for i in listed if i.modified_ns == newest]
        cursors = {
            "listing": json.dumps({"modified_ns": newest, "seen": seen}),
            "lexical": json.dumps({"after": names[history - 1]}),
        }
        setup = CliRunner().invoke(main, ["landing", "setup-notifications"])
        assert setup.exit_code == 0, setup.output
        queue = setup.output.split("queue_url: ")[1].strip()
        while got := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
            for message in got:  # S3's test event
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        BaseClient._make_api_call = counting
        results = []
        for mode in ("listing", "lexical", "notifications"):
            idle, _ = _tick(storage, mode, cursors.get(mode), queue)
            results.append({"discovery": mode, "new": 0, "requests": idle})
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, names[history:]))  # S3 sends one event per new object
        for mode in ("listing", "lexical", "notifications"):
            busy, files = _tick(storage, mode, cursors.get(mode), queue)
            assert files == new, (mode, files)
            results.append({"discovery": mode, "new": new, "requests": busy})
        for result in results:
            result["ingested"] = history
            result["total"] = sum(result["requests"].values())
            result["list_requests"] = result["requests"].get("ListObjectsV2", 0)
        return results
    finally:
        BaseClient._make_api_call = real
        process.terminate()
        process.wait()
