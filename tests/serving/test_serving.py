"""The model server, started with uvicorn (the `serve` command) and called over HTTP with
Triton's Open Inference Protocol v2 client."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import numpy as np
import pytest

from tests.support.mlops_runs import run_mlops
from tests.support.processes import BIN, clean_env, free_port, model_server, run_demo


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A storage root with a released, deployed digits model (the demo's result)."""
    root = tmp_path_factory.mktemp("served")
    env = clean_env()
    done = run_demo(root, env)
    assert done.returncode == 0, done.stderr[-3000:]
    return root, env


@pytest.fixture(scope="module")
def server(released):
    root, env = released
    with model_server(root, env, "--environment", "dev") as address:
        yield address


def test_predictions_equal_the_models_own(server, released):
    import tritonclient.http as httpclient

    from mlops_assets.datasets.tabular.split import read_split
    from mlops_assets.registry import ModelRegistry
    from mlops_assets.serving.loader import load_from_registry
    from mlops_assets.storage import Layout
    from mlops_assets.storage.local import LocalStorage

    root, _ = released
    storage = LocalStorage(root=str(root / ".mlops"))
    version = storage.read_json(Layout("digits").dataset_latest)["dataset_version"]
    test = read_split(storage, Layout("digits"), version, "test")
    x = test[[f"pixel_{i}" for i in range(64)]].to_numpy(dtype="float32")
    latest = ModelRegistry(storage, "digits").versions()[-1]
    local = load_from_registry(storage, "digits", latest, adapter="sklearn_svc")
    expected = local.adapter.predict(local.model, x)

    client = httpclient.InferenceServerClient(url=server)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digits")
    meta = client.get_model_metadata("digits")
    assert meta["inputs"][0]["shape"] == [-1, 64] and meta["inputs"][0]["name"] == "rows"
    raw = x * 16  # the rows as they landed: the server applies the transform itself
    tensor = httpclient.InferInput("rows", list(raw.shape), "FP32")
    tensor.set_data_from_numpy(raw, binary_data=False)
    result = client.infer(
        "digits", [tensor], outputs=[httpclient.InferRequestedOutput("output-0", binary_data=False)]
    )
    np.testing.assert_array_equal(result.as_numpy("output-0"), expected)
    binary = httpclient.InferInput("rows", list(raw.shape), "FP32")
    binary.set_data_from_numpy(raw, binary_data=True)  # the protocol's binary extension
    np.testing.assert_array_equal(client.infer("digits", [binary]).as_numpy("output-0"), expected)
    assert (expected == test["label"].to_numpy()).mean() > 0.9


def post(server: str, path: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://{server}{path}", data=body, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (
            {"inputs": [{"name": "rows", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]},
            400,
            "must be [n, 64]",
        ),
        (
            {"inputs": [{"name": "rows", "shape": [2, 64], "datatype": "FP32", "data": [1] * 64}]},
            400,
            "64 values for shape [2, 64]",
        ),
        (
            {
                "inputs": [
                    {"name": "rows", "shape": [1, 64], "datatype": "BYTES", "data": ["a"] * 64}
                ]
            },
            400,
            "not numeric",
        ),
        (
            {
                "inputs": [
                    {"name": "rows", "shape": [1, 64], "datatype": "FP32", "data": ["a"] * 64}
                ]
            },
            400,
            "must be a number",
        ),
        ({"inputs": [{"name": "rows", "shape": [1, 64], "datatype": "FP32"}]}, 400, "data"),
        ({"inputs": []}, 400, "this model takes 'rows'"),
        (
            {
                "inputs": [
                    {"name": "input-0", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}
                ]
            },
            400,
            "unknown input 'input-0'",
        ),
        (
            {
                "inputs": [
                    {"name": "rows", "shape": [1, 64], "datatype": "INT64", "data": [1.5] * 64}
                ]
            },
            400,
            "1.5 is not a whole number",
        ),
        (
            {
                "inputs": [
                    {"name": "rows", "shape": [1, 64], "datatype": "UINT8", "data": [17] * 64}
                ]
            },
            400,
            "pixel_0=17 in row 0 is outside 0..16",
        ),
        (
            {
                "inputs": [
                    {"name": "rows", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64},
                    {"name": "rows", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64},
                ]
            },
            400,
            "got 'rows', 'rows'",
        ),
        ({"nothing": 1}, 400, "inputs"),
    ],
)
def test_bad_input_gets_a_4xx_that_says_what_is_wrong(server, body, status, words):
    code, answer = post(server, "/v2/models/digits/infer", json.dumps(body).encode())
    assert code == status
    assert words in answer["error"]


def test_nan_garbage_and_unknown_models_never_give_500(server):
    nan = (
        b'{"inputs": [{"name": "rows", "shape": [1, 64], "datatype": "FP32", "data": ['
        + b",".join([b"NaN"] * 64)
        + b"]}]}"
    )
    assert post(server, "/v2/models/digits/infer", nan)[0] == 400
    assert post(server, "/v2/models/digits/infer", b"{not json")[0] == 400
    code, answer = post(server, "/v2/models/other/infer", b'{"inputs": []}')
    assert code == 404 and "unknown model" in answer["error"]
    with urllib.request.urlopen(f"http://{server}/metrics") as response:
        text = response.read().decode()
    assert 'model_requests_total{model="digits",outcome="400"}' in text
    assert 'model_requests_total{model="(other)",outcome="404"} 1.0' in text
    with urllib.request.urlopen(f"http://{server}/v2") as response:
        assert json.loads(response.read())["version"] == "0.1.0"  # the server's, not v1


def test_tampered_artifact_is_refused_at_start(released, tmp_path):
    root, env = released
    model_dir = root / ".mlops" / "models" / "digits" / "1"
    copy = tmp_path / "1"
    copy.mkdir()
    (copy / "metadata.json").write_bytes((model_dir / "metadata.json").read_bytes())
    (copy / "model.skops").write_bytes((model_dir / "model.skops").read_bytes() + b"x")
    sha = json.loads((model_dir / "metadata.json").read_text())["artifact_sha256"]
    done = subprocess.run(
        [
            str(BIN / "mlops-assets"),
            "serve",
            "--uri",
            str(copy / "model.skops"),
            "--sha256",
            sha,
            "--port",
            str(free_port()),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "refusing to serve it" in done.stderr and "model.skops" in done.stderr


def test_loads_by_s3_uri_and_refuses_a_wrong_sha256(s3_env):
    """The chart's way: MODEL_URI=s3://... and MODEL_SHA256, against the moto server."""
    import dagster as dg

    from mlops_assets.definitions import build_definitions
    from mlops_assets.demo.digits_data import seed_digits
    from mlops_assets.registry import ModelRegistry
    from mlops_assets.resources import build_storage
    from mlops_assets.serving.loader import ModelLoadError, load_from_uri
    from mlops_assets.settings import load_settings

    storage = build_storage(load_settings())
    seed_digits(storage, 5, [1, 2])
    with dg.instance_for_test() as instance:
        defs = build_definitions()
        assert defs.resolve_job_def("digits_dataops").execute_in_process(instance=instance).success
        assert run_mlops(defs, instance).success
    registry = ModelRegistry(storage, "digits")
    meta = registry.metadata(1)
    assert meta["artifact_uri"].startswith(f"s3://{s3_env}/team-a/models/digits/1/")
    trusted = {"adapter": "sklearn_svc", "metadata_sha256": registry.metadata_sha256(1)}
    loaded = load_from_uri(meta["artifact_uri"], meta["artifact_sha256"], **trusted)
    assert (loaded.name, loaded.version, loaded.item_shape) == ("digits", "1", [64])
    with pytest.raises(ModelLoadError, match="refusing to serve it"):
        load_from_uri(meta["artifact_uri"], "0" * 64, **trusted)


def test_rows_as_they_landed_get_the_right_classes_in_any_numeric_type(server, released):
    """A landing file's rows, untouched (pixels 0..16), as INT64 JSON, FP64 and UINT8
    binary: the server applies the model's own transform, so they are classified as the
    model classifies the transformed split."""
    import pandas as pd
    import tritonclient.http as httpclient

    root, _ = released
    landing = sorted((root / ".mlops" / "landing" / "digits").glob("*.csv"))[0]
    frame = pd.read_csv(landing)
    rows, labels = frame.drop(columns="label").to_numpy(), frame["label"].to_numpy()
    code, answer = post(
        server,
        "/v2/models/digits/infer",
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "rows",
                        "shape": list(rows.shape),
                        "datatype": "INT64",
                        "data": rows.tolist(),
                    }
                ]
            }
        ).encode(),
    )
    assert code == 200, answer
    predicted = np.asarray(answer["outputs"][0]["data"])
    assert (predicted == labels).mean() > 0.95
    client = httpclient.InferenceServerClient(url=server)
    for dtype, name in ((np.float64, "FP64"), (np.uint8, "UINT8")):
        tensor = httpclient.InferInput("rows", list(rows.shape), name)
        tensor.set_data_from_numpy(rows.astype(dtype), binary_data=True)
        np.testing.assert_array_equal(
            client.infer("digits", [tensor]).as_numpy("output-0"), predicted
        )


def test_a_wrong_route_or_method_answers_in_the_protocols_error_shape(server):
    """404 for an endpoint the server does not have, 405 (with Allow) for a method the
    protocol does not define on one, each as `{"error": ...}`: an OIP client decodes both."""
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    def get(path: str) -> tuple[int, dict, str]:
        try:
            with urllib.request.urlopen(f"http://{server}{path}") as response:
                return response.status, json.loads(response.read()), ""
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read()), error.headers.get("allow", "")

    code, answer, allow = get("/v2/models/digits/infer")
    assert (code, allow) == (405, "POST") and "use POST" in answer["error"]
    code, answer, _ = get("/v2/models/digits/versions/1/infer")
    assert code == 405 and set(answer) == {"error"}
    code, answer, _ = get("/v2/no/such/thing")
    assert (code, answer) == (404, {"error": "no such endpoint"})
    code, answer = post(server, "/v2/health/live", b"{}")
    assert code == 405 and set(answer) == {"error"}  # Starlette's 405, reshaped

    client = httpclient.InferenceServerClient(server)
    with pytest.raises(InferenceServerException, match="no such endpoint"):
        client.get_model_config("digits")  # not an extension this server has: decoded
