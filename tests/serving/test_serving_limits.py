"""What a request may cost the model server, and micro-batching, against the server under
uvicorn on loopback (Triton's client for the protocol parts, raw sockets where a client
library would hide what the server does)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import pytest

from mlops_assets.serving.app import create_app
from mlops_assets.serving.limits import Limits
from tests.support.http_servers import uvicorn_thread
from tests.support.model_servers import (
    FEATURES,
    POISON,
    CountingAdapter,
    counting_model,
    digits_svc,
    expected,
    infer_body,
    row,
)

INFER = "/v2/models/digits/infer"


@contextmanager
def serving(loaded, **limits):
    app = create_app(loaded, Limits(**limits))
    with uvicorn_thread(app) as url:
        yield url, app


def post(url: str, body, headers: dict | None = None, timeout: float = 30):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url + INFER, data=data, headers={"content-type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def raw(url: str, head: bytes, body_parts=(), pause: float = 0.0) -> bytes:
    """Send a request by hand (headers, then body parts with pauses); the response bytes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(head)
        try:
            for part in body_parts:
                sock.sendall(part)
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: read what it said
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


def metric(url: str, name: str) -> float:
    text = urllib.request.urlopen(url + "/metrics").read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


@pytest.fixture(scope="module")
def svc():
    return digits_svc()


def test_a_declared_body_over_the_limit_gets_413_before_it_is_sent(svc):
    loaded, _, _ = svc
    with serving(loaded, max_body_bytes=64 * 1024) as (url, _):
        head = f"POST {INFER} HTTP/1.1\r\nHost: t\r\nContent-Length: {10**9}\r\n\r\n".encode()
        answer = raw(url, head)  # not one byte of the body is sent
        assert answer.startswith(b"HTTP/1.1 413")
        assert b"larger than 65536 bytes" in answer
        assert metric(url, 'model_rejected_by_limit_total{limit="body_size"') == 1


def test_a_chunked_body_is_cut_off_at_the_limit(svc):
    loaded, _, _ = svc
    with serving(loaded, max_body_bytes=64 * 1024) as (url, _):
        head = f"POST {INFER} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        chunk = b"[" * 16384
        parts = [b"%x\r\n" % len(chunk) + chunk + b"\r\n"] * 64  # 1 MiB offered
        answer = raw(url, head, parts)
        assert answer.startswith(b"HTTP/1.1 413") and b"larger than 65536" in answer


def test_too_many_rows_get_413_naming_the_limit(svc):
    loaded, raw_rows, _ = svc
    with serving(loaded, max_rows=100) as (url, _):
        status, body = post(url, infer_body(raw_rows[:101].tolist()))
        assert status == 413
        assert "101 rows" in body.decode() and "at most 100" in body.decode()
        assert post(url, infer_body(raw_rows[:100].tolist()))[0] == 200


def test_deep_nesting_is_refused_before_it_is_flattened(svc):
    loaded, _, _ = svc
    deep = "[" * 40 + "1" + "]" * 40
    body = '{"inputs":[{"name":"rows","datatype":"FP32","shape":[1,64],"data":' + deep + "}]}"
    with serving(loaded, max_depth=8) as (url, _):
        status, answer = post(url, body.encode())
        assert status == 400 and b"nested deeper than 8 levels" in answer


def test_a_body_claiming_more_binary_data_than_it_has_is_refused(svc):
    loaded, raw_rows, _ = svc
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "rows",
                    "datatype": "FP32",
                    "shape": [2, FEATURES],
                    "parameters": {"binary_data_size": 2 * FEATURES * 4},
                }
            ]
        }
    ).encode()
    short = raw_rows[:1].astype("<f4").tobytes()  # one row where two are claimed
    with serving(loaded) as (url, _):
        status, answer = post(
            url,
            header + short,
            {
                "content-type": "application/octet-stream",
                "inference-header-content-length": str(len(header)),
            },
        )
        assert status == 400 and b"binary_data_size" in answer


def test_a_slow_client_is_cut_off_without_holding_up_others(svc):
    loaded, raw_rows, predicted = svc
    with serving(loaded, read_timeout_seconds=1.0) as (url, _):
        head = f"POST {INFER} HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n".encode()
        result = {}
        slow = threading.Thread(
            target=lambda: result.update(answer=raw(url, head, [b"{"] * 30, pause=0.2))
        )
        slow.start()
        time.sleep(0.3)
        status, body = post(url, infer_body(raw_rows[:3].tolist()))  # others go through
        assert status == 200
        assert json.loads(body)["outputs"][0]["data"] == predicted[:3].tolist()
        slow.join(timeout=20)
        assert result["answer"].startswith(b"HTTP/1.1 408")
        assert metric(url, 'model_rejected_by_limit_total{limit="read_timeout"') == 1


def test_binary_outputs_when_the_client_asks(svc):
    import tritonclient.http as httpclient

    loaded, raw_rows, predicted = svc
    with serving(loaded) as (url, _):
        client = httpclient.InferenceServerClient(url=url.removeprefix("http://"))
        tensor = httpclient.InferInput("rows", [20, FEATURES], "FP32")
        tensor.set_data_from_numpy(raw_rows[:20].astype("float32"), binary_data=True)
        for binary in (True, False):
            wanted = httpclient.InferRequestedOutput("output-0", binary_data=binary)
            result = client.infer("digits", [tensor], outputs=[wanted])
            assert result.as_numpy("output-0").tolist() == predicted[:20].tolist()
            response = result.get_response()
            has_data = "data" in response["outputs"][0]
            assert has_data is not binary


def test_an_accept_header_that_refuses_json_gets_406(svc):
    loaded, raw_rows, _ = svc
    with serving(loaded) as (url, _):
        status, _ = post(url, infer_body(raw_rows[:1].tolist()), {"accept": "text/html"})
        assert status == 406


def test_concurrent_callers_share_predict_calls_and_get_their_own_rows():
    adapter = CountingAdapter(seconds=0.03)
    with serving(counting_model(adapter), max_batch_rows=64) as (url, _):
        bodies = [[row(seed) for _ in range(1 + seed % 3)] for seed in range(24)]
        bad = infer_body([row(99)[:10]])  # a wrong shape among them never joins a batch
        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(lambda rows: post(url, infer_body(rows)), bodies))
            bad_answer = pool.submit(post, url, bad).result()
        for rows, (status, body) in zip(bodies, answers, strict=True):
            assert status == 200
            assert json.loads(body)["outputs"][0]["data"] == expected(rows).tolist()
        assert bad_answer[0] == 400
        assert sum(adapter.calls) == sum(len(rows) for rows in bodies)
        assert len(adapter.calls) < len(bodies)  # at least one call had several callers
        assert metric(url, 'model_batch_requests_sum{model="digits"}') == len(bodies)


def test_batching_can_be_turned_off():
    adapter = CountingAdapter(seconds=0.02)
    with serving(counting_model(adapter), batching=False) as (url, _):
        bodies = [[row(seed)] for seed in range(8)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda rows: post(url, infer_body(rows)), bodies))
        assert all(status == 200 for status, _ in answers)
        assert adapter.calls == [1] * len(bodies)


def test_an_adapter_that_does_not_say_it_is_vectorised_is_not_batched():
    class OneAtATime(CountingAdapter):
        batchable = False

    adapter = OneAtATime(seconds=0.02)
    with serving(counting_model(adapter)) as (url, _):
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(lambda s: post(url, infer_body([row(s)])), range(6)))
        assert all(status == 200 for status, _ in answers)
        assert adapter.calls == [1] * 6


def test_a_predict_error_fails_only_its_own_request():
    """Changed on purpose (trust boundaries): the failed call [p, 2, 3] was one 500 for all
    three; it is now bisected, so only the poisoned request fails."""
    hold = threading.Event()
    adapter = CountingAdapter(hold=hold)
    with serving(counting_model(adapter), max_batch_rows=3) as (url, app):
        poisoned = row(1)
        poisoned[0] = POISON
        order = [[row(0)], [poisoned], [row(2)], [row(3)], [row(4)], [row(5)], [row(6)]]
        with ThreadPoolExecutor(max_workers=len(order)) as pool:
            futures = [pool.submit(post, url, infer_body(order[0]))]
            assert adapter.entered.wait(10)  # the first call holds the model
            for rows in order[1:]:  # then they queue in this order: [p, 2, 3], [4, 5, 6]
                queued = len(app.batcher._queue)
                futures.append(pool.submit(post, url, infer_body(rows)))
                deadline = time.monotonic() + 10
                while len(app.batcher._queue) == queued and time.monotonic() < deadline:
                    time.sleep(0.005)
            hold.set()
            answers = [f.result() for f in futures]
        statuses = [status for status, _ in answers]
        assert statuses == [200, 500, 200, 200, 200, 200, 200]
        assert adapter.calls == [1, 3, 1, 2, 3]  # [p, 2, 3] failed: [p] fails, [2, 3] answered
        for status, body in answers:
            if status == 500:  # the message names no caller's data
                text = body.decode()
                assert json.loads(text) == {"error": "internal server error"}


def test_health_is_answered_while_the_worst_request_runs():
    hold = threading.Event()
    adapter = CountingAdapter(hold=hold)
    with serving(counting_model(adapter), max_rows=1024) as (url, _):
        worst = infer_body([row(seed) for seed in range(1024)])
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_flight = pool.submit(post, url, worst)
            assert adapter.entered.wait(20)  # parsed, converted, now inside predict
            started = time.monotonic()
            with urllib.request.urlopen(url + "/v2/health/live", timeout=5) as response:
                assert response.status == 200
            assert not in_flight.done()  # the health call completed while it ran
            hold.set()
            status, body = in_flight.result(timeout=30)
        assert status == 200 and len(json.loads(body)["outputs"][0]["data"]) == 1024
        assert time.monotonic() - started < 30


def test_settings_come_from_the_yaml_and_the_environment():
    from mlops_assets.core.config import ServingConfig
    from mlops_assets.serving.limits import limits_of
    from mlops_assets.settings import SettingsError

    limits = limits_of(ServingConfig(max_rows=10), {"MLOPS_SERVING_MAX_BODY_MB": "0.5"})
    assert limits.max_rows == 10 and limits.max_body_bytes == 512 * 1024
    with pytest.raises(SettingsError, match="MLOPS_SERVING_MAX_ROWS"):
        limits_of(ServingConfig(), {"MLOPS_SERVING_MAX_ROWS": "many"})
    assert np.isclose(limits_of(ServingConfig(max_batch_wait_ms=2)).max_batch_wait_seconds, 0.002)
