"""Open Inference Protocol v2 (the KServe / Triton REST protocol) for one model.

Every request is validated before it reaches the model: a wrong shape, datatype or length
gets a 4xx that says what is wrong, never a 500; a request over a limit (body size, rows,
nesting, a body that does not arrive in time) is refused before it costs more than the
limit. The inference route is plain ASGI, in front of the FastAPI app that answers the
rest: it reads the body itself (so the limits hold for declared and chunked lengths), parses
large bodies off the event loop, and hands the model's input to the batcher, so health
probes stay answered whatever a request costs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlops_assets import __version__
from mlops_assets.datasets.model_input import ContractError, input_specs, to_model_input
from mlops_assets.serving.batching import Batcher, PredictError
from mlops_assets.serving.inference_log import InferenceLog
from mlops_assets.serving.limits import Limits
from mlops_assets.serving.loader import LoadedModel
from mlops_assets.serving.protocol import (
    BadInput,
    InferRequest,
    TooLarge,
    parse_request,
    request_arrays,
)

OTHER_MODEL = "(other)"
"""The metrics label of requests for a model this server does not serve."""
INFER = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
OFFLOAD_BYTES = 64 * 1024
"""Bodies larger than this are parsed and converted on a worker thread."""
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
log = logging.getLogger(__name__)


class Disconnected(Exception):
    """The client went away before its body was read."""


@dataclass
class ServerState:
    """What the process knows about itself: readiness turns false when it starts to drain."""

    ready: bool = True


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "model_requests_total",
            "Inference requests by outcome",
            ["model", "outcome"],
            registry=self.registry,
        )
        self.rows = Counter(
            "model_inference_rows_total", "Rows predicted", ["model"], registry=self.registry
        )
        self.latency = Histogram(
            "model_inference_seconds",
            "Time inside one predict call",
            ["model"],
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "model_batch_rows",
            "Rows per predict call (coalesced requests)",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "model_batch_requests",
            "Requests per predict call",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "model_queue_wait_seconds",
            "Time a request waited for its predict call",
            ["model"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "model_inference_log_dropped_total",
            "Inference log records dropped because the buffer was full (storage down)",
            ["model"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "model_rejected_by_limit_total",
            "Requests refused by a limit (body size, rows, nesting, read timeout)",
            ["model", "limit"],
            registry=self.registry,
        )


def _accepts(headers: dict[bytes, bytes]) -> bool:
    accept = headers.get(b"accept", b"*/*").decode("latin-1").lower()
    return any(
        kind.split(";")[0].strip() in ("*/*", "application/*", "application/json")
        or kind.split(";")[0].strip() == "application/octet-stream"
        for kind in accept.split(",")
    )


def _wants_binary(body: InferRequest) -> bool:
    """The binary tensor extension, for outputs: asked for by request or per output."""
    if (body.parameters or {}).get("binary_data_output") is True:
        return True
    return any((o.get("parameters") or {}).get("binary_data") is True for o in body.outputs or [])


PROBA_OUTPUT = "predict_proba"
"""The output a request names to get class probabilities (MLServer's scikit-learn name)."""


def _wants_proba(body: InferRequest) -> bool:
    return any(o.get("name") == PROBA_OUTPUT for o in body.outputs or [])


def _plain(value: Any) -> Any:
    """A class label as JSON holds it (numpy scalars as Python's)."""
    return value.item() if hasattr(value, "item") else value


class InferenceEndpoint:
    """POST /v2/models/<name>[/versions/<v>]/infer, as plain ASGI."""

    def __init__(
        self,
        loaded: LoadedModel,
        limits: Limits,
        metrics: Metrics,
        batcher: Batcher,
        inference_log: InferenceLog | None = None,
    ) -> None:
        self.loaded, self.limits, self.metrics, self.batcher = loaded, limits, metrics, batcher
        self.inference_log = inference_log
        self.contract = loaded.metadata["request"]
        self.output = loaded.metadata["output"]

    async def __call__(self, scope, receive, send, name: str, version: str | None) -> None:
        started = perf_counter()
        loaded = self.loaded
        if name != loaded.name or (version is not None and version != loaded.version):
            await self._error(
                send,
                404,
                f"unknown model {name!r}"
                + (f" version {version!r}" if version else "")
                + f"; this server serves {loaded.name!r} version {loaded.version!r}",
                model=loaded.name if name == loaded.name else OTHER_MODEL,
            )
            return
        headers = dict(scope["headers"])
        if not _accepts(headers):
            await self._error(send, 406, "Accept must allow application/json")
            return
        declared = headers.get(b"content-length")
        if declared is not None and (
            not declared.isdigit() or int(declared) > self.limits.max_body_bytes
        ):
            await self._reject(send, "body_size", self._too_large_body())
            return
        try:
            body = await asyncio.wait_for(
                self._read(receive), timeout=self.limits.read_timeout_seconds
            )
        except TooLarge as error:
            await self._reject(send, "body_size", str(error))
            return
        except TimeoutError:
            await self._reject(
                send,
                "read_timeout",
                f"the body did not arrive within {self.limits.read_timeout_seconds:g} s",
                status=408,
            )
            return
        except Disconnected:
            return
        length = headers.get(b"inference-header-content-length")
        try:
            if len(body) > OFFLOAD_BYTES:  # parsing a large body must not stall the loop
                parsed, x = await asyncio.get_running_loop().run_in_executor(
                    None, self._prepare, body, length
                )
            else:
                parsed, x = self._prepare(body, length)
        except TooLarge as error:
            await self._reject(send, "rows", str(error))
            return
        except (BadInput, ContractError) as bad:
            if "nested deeper" in str(bad):
                self.metrics.rejected.labels(loaded.name, "depth").inc()
            await self._error(send, 400, str(bad))
            return
        # the server's own id, never the caller's: unique across restarts and replicas, so
        # feedback naming it names this request and no other
        request_id = str(uuid.uuid4())
        client_id = parsed.id or ""
        try:
            predicted = await self.batcher.submit(x)
        except PredictError as error:
            await self._error(send, 500, str(error), request_id=request_id)
            if self.inference_log is not None and self.inference_log.wants():
                elapsed_ms = (perf_counter() - started) * 1e3
                self.inference_log.record(
                    request_id,
                    loaded.version,
                    x,
                    None,
                    elapsed_ms,
                    error=True,
                    client_id=client_id,
                )
            return
        proba = None
        if _wants_proba(parsed):
            if not self._proba_classes():
                await self._error(send, 400, "this model gives no class probabilities")
                return
            # beside the batch: a caller asking for probabilities pays for them alone
            proba = await asyncio.get_running_loop().run_in_executor(
                None, loaded.adapter.predict_proba, loaded.model, x
            )
        self.metrics.rows.labels(loaded.name).inc(len(x))
        self.metrics.requests.labels(loaded.name, "200").inc()
        elapsed_ms = (perf_counter() - started) * 1e3
        await self._respond(send, parsed, predicted, request_id, proba)
        if self.inference_log is not None and self.inference_log.wants():  # after answering
            self.inference_log.record(
                request_id, loaded.version, x, predicted, elapsed_ms, client_id=client_id
            )

    def _prepare(
        self, body: bytes | bytearray, length: bytes | None
    ) -> tuple[InferRequest, np.ndarray]:
        parsed, binary = parse_request(body, None if length is None else length.decode("latin-1"))
        asked = (parsed.parameters or {}).get("contract_version")
        if asked is not None and asked != self.contract.get("version"):
            raise BadInput(
                f"the request is shaped for request contract version {asked!r}; this model "
                f"serves version {self.contract.get('version')} (GET /v2/models/<name>)"
            )
        arrays = request_arrays(
            parsed,
            input_specs(self.contract, [t.name for t in parsed.inputs]),
            binary,
            max_rows=self.limits.max_rows,
            max_depth=self.limits.max_depth,
            plain=b"true" not in body and b"false" not in body,
        )
        return parsed, to_model_input(self.contract, arrays)

    async def _read(self, receive) -> bytes | bytearray:
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Disconnected
            chunk = message.get("body", b"")
            if len(body) + len(chunk) > self.limits.max_body_bytes:
                raise TooLarge(self._too_large_body())
            if not body:
                body = chunk  # the usual case, one chunk: no copy
            else:
                if isinstance(body, bytes):
                    body = bytearray(body)  # one buffer that grows, not a list of chunks
                body += chunk
            if not message.get("more_body", False):
                return body

    def _too_large_body(self) -> str:
        return (
            f"the request body is larger than {self.limits.max_body_bytes} bytes "
            "(serving.max_body_mb)"
        )

    def _proba_classes(self) -> list[Any]:
        """The classes a `predict_proba` output's columns are, in order ([] where the model
        has no probabilities: a regression, an estimator without predict_proba)."""
        classes_of = getattr(self.loaded.adapter, "proba_classes", None)
        if self.output["datatype"] == "FP64" or classes_of is None:
            return []
        return [_plain(c) for c in classes_of(self.loaded.model)]

    async def _respond(
        self,
        send,
        parsed: InferRequest,
        predicted: np.ndarray,
        request_id: str,
        proba: np.ndarray | None = None,
    ) -> None:
        values = np.asarray(predicted).ravel()
        datatype = self.output["datatype"]
        if datatype == "BYTES":
            values = values.astype(str).astype(object)
        else:
            values = values.astype("<f8" if datatype == "FP64" else "<i8")
        output: dict[str, Any] = {
            "name": self.output["name"],
            "datatype": self.output["datatype"],
            "shape": [len(values)],
        }
        head = {
            "model_name": self.loaded.name,
            "model_version": self.loaded.version,
            # OIP: the caller's id echoed; without one, the server's
            "id": parsed.id if parsed.id is not None else request_id,
            "parameters": {"request_id": request_id},
            "outputs": [output],
        }
        probabilities = None
        if proba is not None:
            proba = np.asarray(proba, dtype="<f8")
            probabilities = {
                "name": PROBA_OUTPUT,
                "datatype": "FP64",
                "shape": list(proba.shape),
                "parameters": {"classes": self._proba_classes()},
            }
            head["outputs"].append(probabilities)
        if _wants_binary(parsed):
            if datatype == "BYTES":  # OIP: each element a 4-byte little-endian length, then it
                texts = [str(v).encode() for v in values]
                raw = b"".join(len(t).to_bytes(4, "little") + t for t in texts)
            else:
                raw = values.tobytes()
            output["parameters"] = {"binary_data_size": len(raw)}
            if probabilities is not None:
                extra = proba.tobytes()
                probabilities["parameters"]["binary_data_size"] = len(extra)
                raw += extra
            header = json.dumps(head, separators=(",", ":")).encode()
            await _send(
                send,
                200,
                header + raw,
                b"application/octet-stream",
                [
                    (b"inference-header-content-length", str(len(header)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            )
            return
        output["data"] = values.tolist()
        if probabilities is not None:
            probabilities["data"] = proba.ravel().tolist()
        body = json.dumps(head, separators=(",", ":")).encode()
        await _send(send, 200, body, extra=[(b"x-request-id", request_id.encode())])

    async def _reject(self, send, limit: str, message: str, status: int = 413) -> None:
        self.metrics.rejected.labels(self.loaded.name, limit).inc()
        # the rest of the body is not read: the connection cannot be reused
        await self._error(send, status, message, close=True)

    async def _error(
        self,
        send,
        status: int,
        message: str,
        model: str | None = None,
        close: bool = False,
        request_id: str = "",
    ) -> None:
        self.metrics.requests.labels(model or self.loaded.name, str(status)).inc()
        extra = [(b"connection", b"close")] if close else []
        if request_id:
            extra.append((b"x-request-id", request_id.encode()))
        await _send(send, status, json.dumps({"error": message}).encode(), extra=extra)


async def _send(
    send,
    status: int,
    body: bytes,
    content_type: bytes = b"application/json",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(
    loaded: LoadedModel,
    limits: Limits | None = None,
    state: ServerState | None = None,
    inference_log: InferenceLog | None = None,
):
    """The ASGI app: the inference route, then FastAPI for health, metadata and metrics
    (and the lifespan, which runs the inference log's writer and its last flush)."""
    limits = limits or Limits()
    state = state or ServerState()
    metrics = Metrics()
    batcher = Batcher(
        lambda x: loaded.adapter.predict(loaded.model, x),
        max_rows=limits.max_batch_rows,
        max_wait_seconds=limits.max_batch_wait_seconds,
        # only where the adapter says predict is vectorised and row-independent
        enabled=limits.batching and bool(getattr(loaded.adapter, "batchable", False)),
        inline_rows=int(getattr(loaded.adapter, "inline_rows", 0)),
        max_bisect_calls=limits.max_bisect_calls,
        on_batch=lambda requests, rows, seconds: (
            metrics.batch_requests.labels(loaded.name).observe(requests),
            metrics.batch_rows.labels(loaded.name).observe(rows),
            metrics.latency.labels(loaded.name).observe(seconds),
        ),
        on_wait=metrics.queue_wait.labels(loaded.name).observe,
    )
    endpoint = InferenceEndpoint(loaded, limits, metrics, batcher, inference_log)
    if inference_log is not None:
        inference_log.on_drop = metrics.log_dropped.labels(loaded.name).inc
    api = _api(loaded, metrics, state, inference_log)

    async def app(scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] != "POST" and INFER.fullmatch(scope["path"]):
            # the protocol's inference is POST only: another method is a 405 saying so, in
            # the protocol's error shape, not the 404 of an unknown route
            said = f"method {scope['method']} is not allowed on {scope['path']}: use POST"
            metrics.requests.labels(loaded.name, "405").inc()
            body = json.dumps({"error": said}).encode()
            await _send(send, 405, body, extra=[(b"allow", b"POST")])
            return
        if scope["type"] == "http" and scope["method"] == "POST":
            match = INFER.fullmatch(scope["path"])
            if match:
                try:
                    await endpoint(scope, receive, send, match[1], match[2])
                except Exception:  # a bug: logged with its traceback, answered without it
                    log.exception("unhandled error serving %s", scope["path"])
                    metrics.requests.labels(loaded.name, "500").inc()
                    await _send(send, 500, b'{"error": "internal server error"}')
                return
        await api(scope, receive, send)

    app.state = state  # type: ignore[attr-defined]
    app.batcher = batcher  # type: ignore[attr-defined]
    return app


def _api(
    loaded: LoadedModel,
    metrics: Metrics,
    state: ServerState,
    inference_log: InferenceLog | None,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if inference_log is not None:
            inference_log.start()
        yield
        if inference_log is not None:  # SIGTERM: what is buffered is written before exit
            await inference_log.close()

    api = FastAPI(title=f"{loaded.name} model server", version=loaded.version, lifespan=lifespan)

    @api.exception_handler(StarletteHTTPException)
    async def protocol_error(_, exc: StarletteHTTPException) -> JSONResponse:
        """An unknown route (404) or method (405) in the protocol's error shape, `{"error":
        ...}`, so an OIP client decodes it, not FastAPI's `{"detail": ...}`."""
        said = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse(
            {"error": said}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    contract = loaded.metadata["request"]
    info = {
        "name": loaded.name,
        "versions": [loaded.version],
        "platform": loaded.metadata["adapter"],
        "inputs": [{k: i[k] for k in ("name", "datatype", "shape")} for i in contract["inputs"]],
        "outputs": [loaded.metadata["output"]],
        # the OIP's free-form parameters: what each input holds and what is done to it
        "parameters": {"contract": contract},
    }

    def error(status: int, message: str, model: str = loaded.name) -> JSONResponse:
        metrics.requests.labels(model, str(status)).inc()
        return JSONResponse({"error": message}, status_code=status)

    @api.get("/v2/health/live")
    def live() -> dict:
        return {"live": True}

    @api.get("/v2/health/ready")
    def ready():
        if not state.ready:  # draining: the endpoints controller takes the pod out first
            return JSONResponse({"ready": False}, status_code=503)
        return {"ready": True}

    @api.get("/v2")
    def server() -> dict:
        return {
            "name": "mlops-assets",
            "version": __version__,
            "extensions": ["binary_tensor_data"],
        }

    def _known(name: str, version: str | None) -> JSONResponse | None:
        if name != loaded.name or (version is not None and version != loaded.version):
            return error(
                404,
                f"unknown model {name!r}"
                + (f" version {version!r}" if version else "")
                + f"; this server serves {loaded.name!r} version {loaded.version!r}",
                model=loaded.name if name == loaded.name else OTHER_MODEL,
            )
        return None

    @api.get("/v2/models/{name}")
    @api.get("/v2/models/{name}/versions/{version}")
    def model_metadata(name: str, version: str | None = None):
        return _known(name, version) or info

    @api.get("/v2/models/{name}/ready")
    @api.get("/v2/models/{name}/versions/{version}/ready")
    def model_ready(name: str, version: str | None = None):
        return _known(name, version) or {"name": loaded.name, "ready": state.ready}

    @api.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return api
