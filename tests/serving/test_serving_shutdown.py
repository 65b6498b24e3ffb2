"""SIGTERM, as Kubernetes sends it: readiness turns false first, the request in flight
finishes, the process exits 0 and stops listening."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from tests.support.model_servers import expected, infer_body, row
from tests.support.processes import REPO, free_port, wait_for_http


def ready_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url + "/v2/health/ready", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def post(url: str, rows) -> tuple[int, dict]:
    request = urllib.request.Request(
        url + "/v2/models/digits/infer",
        data=json.dumps(infer_body(rows)).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_sigterm_drains_finishes_in_flight_requests_and_exits_0():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.slow_model_server", str(port), "2.0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_http(url + "/v2/health/ready")
        rows = [row(7), row(8)]
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_flight = pool.submit(post, url, rows)
            time.sleep(0.5)  # inside its two-second predict
            process.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            assert ready_status(url) == 503  # draining: still answering, not ready
            status, body = in_flight.result(timeout=20)
        assert status == 200
        assert body["outputs"][0]["data"] == expected(rows).tolist()
        assert process.wait(timeout=20) == 0
        output = process.stdout.read()
        assert "exited cleanly" in output
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0  # no longer listening
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
