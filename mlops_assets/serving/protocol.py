"""The Open Inference Protocol v2 request: its JSON and binary parts, and every check
that turns a request into the model's arrays or a 4xx saying what is wrong."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from mlops_assets.datasets.model_input import allows_missing


class TooLarge(ValueError):
    """The request is over a limit (413): body size, rows."""


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


MAX_ID_CHARS = 128
_CLIENT_ID = re.compile(rf"[\x20-\x7e]{{1,{MAX_ID_CHARS}}}")
"""The caller's OIP `id`: printable ASCII, bounded (it is echoed in the response and logged)."""


class InferRequest(BaseModel):
    id: str | None = None
    """The caller's id, echoed in the response as the protocol says; the server's own id
    (X-Request-Id) is what the log and feedback use."""
    inputs: list[TensorIn]
    outputs: list[dict[str, Any]] | None = None
    parameters: dict[str, Any] | None = None


_LENGTH = re.compile(r"[0-9]{1,12}")
"""Inference-Header-Content-Length: ASCII digits only (str.isdigit() also takes '²')."""


class BadInput(ValueError):
    """The request breaks the model's input contract."""


def _flatten(data: list[Any], name: str, max_depth: int) -> list[Any]:
    """The values of a nested list, depth first; deeper nesting than `max_depth` (the
    contract's rank is at most 3 or 4) is refused before it costs anything."""
    out: list[Any] = []
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list):
            if depth > max_depth:
                raise BadInput(f"input {name!r}: data is nested deeper than {max_depth} levels")
            stack.extend((child, depth + 1) for child in reversed(item))
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


def parse_request(body: bytes | bytearray, header_length: str | None) -> tuple[InferRequest, bytes]:
    """The JSON part and the binary part (the protocol's binary tensor extension)."""
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
        parsed = InferRequest.model_validate_json(head)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise BadInput(f"invalid request: {where or 'body'}: {first.get('msg')}") from None
    if parsed.id is not None and not _CLIENT_ID.fullmatch(parsed.id):
        raise BadInput(
            f"invalid request: id must be 1 to {MAX_ID_CHARS} printable ASCII characters "
            f"(got {len(parsed.id)} characters starting {parsed.id[:16]!r})"
        )
    return parsed, rest


FLOATS = {"FP16", "FP32", "FP64"}
EXACT_IN_FP32 = 2**24
"""Integers up to this magnitude convert to float32 without loss."""


def _shape_text(spec: dict[str, Any]) -> str:
    dims = ["n" if d == -1 else str(d) for d in spec["shape"]]
    return f"[{', '.join(dims)}] with n >= 1"


def to_array(
    tensor: TensorIn,
    spec: dict[str, Any],
    binary: bytes = b"",
    max_depth: int = 8,
    plain: bool = False,
) -> np.ndarray:
    """One request tensor as float64 in the contract's shape, or a BadInput saying why.

    Floating-point data (FP16/32/64) is converted; integer data only when every value is a
    whole number that float32 holds exactly. NaN only where the contract allows missing
    values (null in JSON), never infinity. `plain` (the body holds no JSON true/false, which
    numpy would take for 1 and 0) lets a regular list of numbers convert at C speed; anything
    else takes the careful path, which finds and names what is wrong."""
    name = tensor.name
    if spec.get("datatype") in ("BYTES", "BOOL"):
        return _values(tensor, spec)
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
        array = _plain_numbers(tensor.data, count, tensor.datatype, max_depth) if plain else None
        if array is None:
            values = _flatten(tensor.data, name, max_depth)
            if len(values) != count:
                raise BadInput(
                    f"input {name!r}: {len(values)} values for shape {tensor.shape} "
                    f"(expected {count})"
                )
            numbers = _numbers(values, name, tensor.datatype, missing_ok)
            array = np.asarray(numbers, dtype="float64")
    if np.isinf(array).any() or (not missing_ok and np.isnan(array).any()):
        raise BadInput(f"input {name!r}: NaN or infinite values are not accepted")
    return array.reshape(tensor.shape)


MAX_TEXT_CHARS = 1024
"""A BYTES value's bound (a category name, not a document)."""


def _values(tensor: TensorIn, spec: dict[str, Any]) -> np.ndarray:
    """A column of text (BYTES) or truth values (BOOL), shape [n], as an object array
    (None where the contract allows missing values: JSON null)."""
    name, want = tensor.name, spec["datatype"]
    if tensor.datatype != want:
        raise BadInput(f"input {name!r}: datatype {tensor.datatype}, this column takes {want}")
    if len(tensor.shape) != 1 or tensor.shape[0] < 1:
        raise BadInput(f"input {name!r}: shape {tensor.shape} must be [n] with n >= 1")
    if tensor.data is None or (tensor.parameters or {}).get("binary_data_size") is not None:
        raise BadInput(f"input {name!r}: give {want} values as JSON `data`")
    values = tensor.data
    if len(values) != tensor.shape[0]:
        raise BadInput(
            f"input {name!r}: {len(values)} values for shape {tensor.shape} (expected "
            f"{tensor.shape[0]})"
        )
    missing_ok = allows_missing(spec)
    kind = str if want == "BYTES" else bool
    for row, value in enumerate(values):
        if value is None and missing_ok:
            continue
        if not isinstance(value, kind) or (kind is str and len(value) > MAX_TEXT_CHARS):
            what = "null" if value is None else type(value).__name__
            expected = "text" if kind is str else "true or false"
            raise BadInput(
                f"input {name!r}: row {row} holds {what}; this column takes {expected}"
                + ("" if missing_ok or value is not None else " (it is not nullable)")
                + (f" of at most {MAX_TEXT_CHARS} characters" if kind is str else "")
            )
    out = np.empty(len(values), dtype=object)
    out[:] = [
        v.strip() if isinstance(v, str) else (None if v is None else float(v)) for v in values
    ]
    return out


def _plain_numbers(data: list[Any], count: int, datatype: str, max_depth: int) -> np.ndarray | None:
    """A regular nested list of `count` numbers as float64, or None: not that simple."""
    try:
        array = np.array(data)
    except (ValueError, TypeError, OverflowError, RecursionError):
        return None
    if array.dtype.kind not in "iuf" or array.size != count or array.ndim > max_depth:
        return None
    array = array.astype("float64", copy=False).ravel()
    if datatype not in FLOATS and (
        (np.abs(array) > EXACT_IN_FP32).any() or (array != np.floor(array)).any()
    ):
        return None
    return array


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
    body: InferRequest,
    specs: list[dict[str, Any]],
    binary: bytes,
    *,
    max_rows: int = 1024,
    max_depth: int = 8,
    plain: bool = False,
) -> dict[str, np.ndarray]:
    """Every input the contract names, exactly once; unknown names are refused; more rows
    than `max_rows` (the first dimension of a batched input) are TooLarge."""
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
    for tensor in body.inputs:
        batched = by_name[tensor.name]["shape"][:1] == [-1]
        if batched and tensor.shape and tensor.shape[0] > max_rows:
            raise TooLarge(
                f"input {tensor.name!r}: {tensor.shape[0]} rows; this server takes at most "
                f"{max_rows} per request (serving.max_rows)"
            )
    arrays, offset = {}, 0
    for tensor in body.inputs:
        size = (tensor.parameters or {}).get("binary_data_size")
        part = b""
        if isinstance(size, int) and size >= 0:
            part, offset = binary[offset : offset + size], offset + size
        arrays[tensor.name] = to_array(tensor, by_name[tensor.name], part, max_depth, plain)
    if offset != len(binary):
        raise BadInput(f"{len(binary) - offset} bytes of binary data are not claimed by any input")
    return arrays
