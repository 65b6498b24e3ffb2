"""Open Inference Protocol v2 (the KServe / Triton REST protocol) for one model.

Every request is validated before it reaches the model: a wrong shape, datatype
or length gets a 400 that says what is wrong, never a 500.
"""

from __future__ import annotations

import logging
import math
import re
from time import perf_counter
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel

from mlops_assets import __version__
from mlops_assets.model_input import ContractError, allows_missing, to_model_input
from mlops_assets.serving.loader import LoadedModel

OTHER_MODEL = "(other)"
"""The metrics label of requests for a model this server does not serve."""

NUMERIC = {
    "FP16",
    "FP32",
    "FP64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
}


class TensorIn(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any] | None = None
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    id: str | None = None
    inputs: list[TensorIn]
    outputs: list[dict[str, Any]] | None = None
    parameters: dict[str, Any] | None = None


_LENGTH = re.compile(r"[0-9]{1,12}")
"""Inference-Header-Content-Length: ASCII digits only (str.isdigit() also takes '²')."""
log = logging.getLogger(__name__)


class BadInput(ValueError):
    """The request breaks the model's input contract."""


def _flatten(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


BINARY_DTYPES = {
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
}


def parse_request(body: bytes, header_length: str | None) -> tuple[InferRequest, bytes]:
    """The JSON part and the binary part (the protocol's binary tensor extension)."""
    from pydantic import ValidationError

    if header_length is not None:
        if not _LENGTH.fullmatch(header_length) or int(header_length) > len(body):
            raise BadInput(
                f"Inference-Header-Content-Length {header_length[:32]!r} is not a byte count "
                f"that fits a body of {len(body)} bytes"
            )
        head, rest = body[: int(header_length)], body[int(header_length) :]
    else:
        head, rest = body, b""
    try:
        return InferRequest.model_validate_json(head), rest
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise BadInput(f"invalid request: {where or 'body'}: {first.get('msg')}") from None


FLOATS = {"FP16", "FP32", "FP64"}
EXACT_IN_FP32 = 2**24
"""Integers up to this magnitude convert to float32 without loss."""


def _shape_text(spec: dict[str, Any]) -> str:
    dims = ["n" if d == -1 else str(d) for d in spec["shape"]]
    return f"[{', '.join(dims)}] with n >= 1"


def to_array(tensor: TensorIn, spec: dict[str, Any], binary: bytes = b"") -> np.ndarray:
    """One request tensor as float64 in the contract's shape, or a BadInput saying why.

    Floating-point data (FP16/32/64) is converted; integer data only when every value is a
    whole number that float32 holds exactly. NaN only where the contract allows missing
    values (null in JSON), never infinity."""
    name = tensor.name
    if tensor.datatype not in NUMERIC:
        raise BadInput(f"input {name!r}: datatype {tensor.datatype} is not numeric (use FP32)")
    expected = spec["shape"]
    if (
        len(tensor.shape) != len(expected)
        or any(e not in (-1, g) for e, g in zip(expected, tensor.shape, strict=True))
        or any(g < 1 for g in tensor.shape)
    ):
        raise BadInput(f"input {name!r}: shape {tensor.shape} must be {_shape_text(spec)}")
    count = math.prod(tensor.shape)
    missing_ok = allows_missing(spec)
    size = (tensor.parameters or {}).get("binary_data_size")
    if size is not None:
        dtype = np.dtype(BINARY_DTYPES[tensor.datatype])
        if not isinstance(size, int) or size != len(binary) or size != count * dtype.itemsize:
            raise BadInput(
                f"input {name!r}: binary_data_size {size} does not match "
                f"shape {tensor.shape} of {tensor.datatype}"
            )
        raw = np.frombuffer(binary, dtype=dtype)
        if tensor.datatype not in FLOATS and np.abs(raw.astype("float64")).max() > EXACT_IN_FP32:
            raise BadInput(f"input {name!r}: integers above 2**24 do not convert to FP32 exactly")
        array = raw.astype("float64")
    else:
        if tensor.data is None:
            raise BadInput(f"input {name!r}: no data (give `data`, or binary data)")
        values = _flatten(tensor.data)
        if len(values) != count:
            raise BadInput(
                f"input {name!r}: {len(values)} values for shape {tensor.shape} (expected {count})"
            )
        array = np.asarray(_numbers(values, name, tensor.datatype, missing_ok), dtype="float64")
    if np.isinf(array).any() or (not missing_ok and np.isnan(array).any()):
        raise BadInput(f"input {name!r}: NaN or infinite values are not accepted")
    return array.reshape(tensor.shape)


def _numbers(values: list[Any], name: str, datatype: str, missing_ok: bool) -> list[float]:
    out: list[float] = []
    whole = datatype not in FLOATS
    for value in values:
        if value is None and missing_ok:
            out.append(math.nan)
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise BadInput(f"input {name!r}: every value must be a number")
        if whole and (
            isinstance(value, float) and not value.is_integer() or abs(value) > EXACT_IN_FP32
        ):
            raise BadInput(
                f"input {name!r}: {value!r} is not a whole number that {datatype} data can "
                "hold exactly (send FP32 for fractional values)"
            )
        out.append(float(value))
    return out


def request_arrays(
    body: InferRequest, specs: list[dict[str, Any]], binary: bytes
) -> dict[str, np.ndarray]:
    """Every input the contract names, exactly once; unknown names are refused."""
    wanted = [spec["name"] for spec in specs]
    given = [tensor.name for tensor in body.inputs]
    unknown = [n for n in given if n not in wanted]
    if unknown or sorted(given) != sorted(wanted):
        problem = (
            f"unknown input {unknown[0]!r}"
            if unknown
            else f"got {', '.join(map(repr, given)) or 'no input'}"
        )
        raise BadInput(
            f"{problem}: this model takes {', '.join(map(repr, wanted))} "
            "(GET /v2/models/<name> for the contract)"
        )
    by_name = {spec["name"]: spec for spec in specs}
    arrays, offset = {}, 0
    for tensor in body.inputs:
        size = (tensor.parameters or {}).get("binary_data_size")
        part = b""
        if isinstance(size, int) and size >= 0:
            part, offset = binary[offset : offset + size], offset + size
        arrays[tensor.name] = to_array(tensor, by_name[tensor.name], part)
    if offset != len(binary):
        raise BadInput(f"{len(binary) - offset} bytes of binary data are not claimed by any input")
    return arrays


def create_app(loaded: LoadedModel) -> FastAPI:
    app = FastAPI(title=f"{loaded.name} model server", version=loaded.version)
    metrics = CollectorRegistry()
    requests_total = Counter(
        "model_requests_total",
        "Inference requests by outcome",
        ["model", "outcome"],
        registry=metrics,
    )
    rows_total = Counter(
        "model_inference_rows_total", "Rows predicted", ["model"], registry=metrics
    )
    latency = Histogram(
        "model_inference_seconds", "Time inside predict", ["model"], registry=metrics
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
        requests_total.labels(model, str(status)).inc()
        return JSONResponse({"error": message}, status_code=status)

    @app.middleware("http")
    async def count_server_errors(request: Request, call_next):
        """Every 5xx is counted, also one that escapes a handler as an exception (logged
        with its traceback here, answered without it)."""
        try:
            response = await call_next(request)
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.url.path)
            response = JSONResponse({"error": "internal server error"}, status_code=500)
        if response.status_code >= 500:
            requests_total.labels(loaded.name, str(response.status_code)).inc()
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", []) if p != "body")
        return error(400, f"invalid request: {where or 'body'}: {first.get('msg', 'invalid')}")

    @app.get("/v2/health/live")
    def live() -> dict:
        return {"live": True}

    @app.get("/v2/health/ready")
    def ready() -> dict:
        return {"ready": True}

    @app.get("/v2")
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

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    def model_metadata(name: str, version: str | None = None):
        return _known(name, version) or info

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    def model_ready(name: str, version: str | None = None):
        return _known(name, version) or {"name": loaded.name, "ready": True}

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(name: str, request: Request, version: str | None = None):
        if (unknown := _known(name, version)) is not None:
            return unknown
        try:
            body, binary = parse_request(
                await request.body(), request.headers.get("inference-header-content-length")
            )
            x = to_model_input(contract, request_arrays(body, contract["inputs"], binary))
        except (BadInput, ContractError) as bad:
            return error(400, str(bad))
        started = perf_counter()
        # predict is CPU-bound: off the event loop, so health probes stay answered
        predicted = await run_in_threadpool(loaded.adapter.predict, loaded.model, x)
        latency.labels(loaded.name).observe(perf_counter() - started)
        rows_total.labels(loaded.name).inc(len(x))
        requests_total.labels(loaded.name, "200").inc()
        output = loaded.metadata["output"]
        return {
            "model_name": loaded.name,
            "model_version": loaded.version,
            "id": body.id or "",
            "outputs": [
                {
                    "name": output["name"],
                    "datatype": output["datatype"],
                    "shape": [len(predicted)],
                    "data": [int(v) for v in np.asarray(predicted).ravel()],
                }
            ],
        }

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    return app
