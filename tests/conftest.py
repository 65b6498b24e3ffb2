"""Real parts for the tests: a moto S3 server on loopback and a local storage root."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = (REPO / "mlops_assets/gitops/templates/values.yaml").read_text()

HAND_WRITTEN = """\
# Production values: reviewed by the platform team.
replicaCount: 3   # three zones

model:
  # served version (bumped by CI)
  name: digits
  version: '1'   # quoted on purpose
  uri: "s3://models/digits/1/model.skops"
  sha256: aaaa
  format: skops

ingress:
  enabled: true
  hosts:
      - digits.example.com   # odd indentation kept
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with slow end-to-end tests first. The suite runs in two workers that take a
    file at a time in this order; a slow file taken last would leave one worker idle while
    the other finishes it."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])  # stable: within a file, as written


def digits_with(training: dict | None = None, **blocks: dict):
    """The digits use case of the shipped YAML, with `training` settings (and those of any
    other block, `gate={...}`) replaced."""
    import copy

    import yaml

    from mlops_assets.components.tabular import TabularUseCase

    attributes = copy.deepcopy(
        yaml.safe_load((REPO / "mlops_assets/defs/digits/defs.yaml").read_text())["attributes"]
    )
    for block, values in {"training": training or {}, **blocks}.items():
        attributes.setdefault(block, {}).update(values)
    return TabularUseCase.from_attributes_dict(attributes=attributes)


def use_case_definitions(use_case):
    """One use case's definitions with the environment's resources, as the code location
    builds them."""
    import dagster as dg

    from mlops_assets.resources import environment_definitions
    from mlops_assets.settings import load_settings

    return dg.Definitions.merge(use_case.build_defs(None), environment_definitions(load_settings()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """End a server started with start_new_session=True: its whole process group, SIGTERM
    first, then SIGKILL (some servers ignore SIGTERM when started without a terminal)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=5)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def wait_for_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


BIN = Path(sys.executable).parent


def git_log(bare: Path, *args: str) -> str:
    """`git log` of a bare repository (the GitOps remote)."""
    return subprocess.run(
        ["git", "--git-dir", str(bare), "log", *args], capture_output=True, text=True, check=True
    ).stdout


def clean_env() -> dict[str, str]:
    """This process's environment without project, Dagster or AWS settings: a newcomer's."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "DAGSTER_", "AWS_"))}


def run_demo(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`mlops-assets demo`, the README's main command, in `cwd`."""
    return subprocess.run(
        [str(BIN / "mlops-assets"), "demo"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@contextmanager
def model_server(cwd: Path, env: dict[str, str], *args: str) -> Iterator[str]:
    """`mlops-assets serve *args` on a free loopback port, until the block ends."""
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "mlops-assets"), "serve", *args, "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/v2/health/ready", timeout=60)
        yield f"127.0.0.1:{port}"
    finally:
        stop(process)


@contextmanager
def dagster_dev(cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """`dagster dev` (webserver and daemon) on a free loopback port, until the block ends."""
    port = free_port()
    log = open(cwd / "dagster-dev.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            str(BIN / "dagster"),
            "dev",
            "-m",
            "mlops_assets.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/server_info", timeout=180)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto in server mode: a real S3 HTTP endpoint on loopback, in its own process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/moto-api/")
        yield url
    finally:
        stop(process)


@pytest.fixture
def local_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The local default, rooted in a fresh folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLOPS_ENV", raising=False)
    monkeypatch.setenv("MLOPS_STORAGE_ROOT", str(tmp_path / ".mlops"))
    return tmp_path


@pytest.fixture
def s3_env(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Storage on a fresh bucket of the moto server; returns the bucket name."""
    import boto3

    bucket = f"mlops-{uuid.uuid4().hex[:10]}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLOPS_ENV", raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLOPS_S3_ENDPOINT_URL": moto_server,
        "MLOPS_STORAGE_ROOT": f"s3://{bucket}/team-a",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(params=["local", "s3"])
def storage_env(request: pytest.FixtureRequest) -> str:
    """Runs a test once on the local default and once on S3 (moto server)."""
    request.getfixturevalue(f"{request.param}_env")
    return request.param


@pytest.fixture
def storage(storage_env: str):
    from mlops_assets.resources import build_storage
    from mlops_assets.settings import load_settings

    return build_storage(load_settings())


@pytest.fixture
def git_server(tmp_path):
    """A bare GitOps repository served by `git daemon` on loopback (push enabled)."""
    base = tmp_path / "server"
    from mlops_assets.gitops.git import ensure_local_remote

    ensure_local_remote(
        base / "gitops.git",
        "main",
        {
            "environments/dev/digits/values.yaml": TEMPLATE,
            "environments/prod/digits/values.yaml": HAND_WRITTEN,
        },
    )
    with git_daemon(base) as url:
        yield f"{url}/gitops.git", base / "gitops.git"


@contextmanager
def git_daemon(base: Path) -> Iterator[str]:
    """`git daemon` serving the bare repositories under `base` on loopback (push enabled);
    yields git://127.0.0.1:<port>."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    daemon = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            f"--base-path={base}",
            f"--port={port}",
            "--listen=127.0.0.1",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield f"git://127.0.0.1:{port}"
    finally:
        stop(daemon)


def plain_release(root: Path, candidate_id: str = "c1", batches: tuple[int, ...] = (1, 2), **gate):
    """Digits from landing to a GitOps commit by the asset bodies' own functions (no Dagster
    run): storage under `root/.mlops`, the local GitOps remote beside it. Returns the
    storage and the GitOps resource."""
    from mlops_assets.core.config import DeployConfig, GateConfig, ModelConfig
    from mlops_assets.datasets.tabular.acquire import run_acquire
    from mlops_assets.datasets.tabular.clean import run_clean
    from mlops_assets.datasets.tabular.dataset import SplitConfig, TabularDataset
    from mlops_assets.datasets.tabular.split import run_split
    from mlops_assets.datasets.tabular.transform import run_transform
    from mlops_assets.demo.digits_data import seed_digits
    from mlops_assets.gitops.resource import GitOpsResource
    from mlops_assets.mlops.deploy import run_deploy
    from mlops_assets.mlops.release import run_release
    from mlops_assets.mlops.train import run_train
    from mlops_assets.mlops.validate import run_validate
    from mlops_assets.storage import Layout
    from mlops_assets.storage.local import LocalStorage

    storage, layout = LocalStorage(root=str(root / ".mlops")), Layout("digits")
    dataset, model = TabularDataset(), ModelConfig(params={"C": 10.0})
    seed_digits(storage, 5, list(batches))
    run_acquire(storage, layout, "landing/digits")
    run_clean(storage, layout, dataset)
    run_transform(storage, layout, dataset)
    run_split(storage, layout, dataset, SplitConfig())
    run_train(storage, layout, dataset, model, candidate_id)
    gate_config = GateConfig(threshold=0.5, **gate)
    run_validate(storage, layout, dataset, gate_config, candidate_id, model.adapter)
    run_release(storage, layout, candidate_id, adapter=model.adapter)
    gitops = GitOpsResource(local_path=str(root / ".mlops" / "gitops.git"))
    run_deploy(storage, gitops, "digits", DeployConfig(), "", model.adapter)
    return storage, gitops


@pytest.fixture
def https_git_server(tmp_path, monkeypatch):
    """The GitOps remote over HTTPS (git http-backend) on loopback, asking for TOKEN; git
    trusts its self-signed certificate. Yields (url, bare path, token, Authorization headers)."""
    from https_git import https_git, self_signed

    from mlops_assets.gitops.git import ensure_local_remote

    root = tmp_path / "https"
    ensure_local_remote(
        root / "gitops.git", "main", {"environments/dev/digits/values.yaml": TEMPLATE}
    )
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("GIT_SSL_CAINFO", str(cert))
    token = "ghp_" + uuid.uuid4().hex
    with https_git(root, cert, key, token=token) as (base, seen):
        yield f"{base}/gitops.git", root / "gitops.git", token, seen


@contextmanager
def json_api(answer) -> Iterator[tuple[str, list[str | None]]]:
    """An HTTP API on loopback for a client under test: `answer(path)` gives (status, JSON
    body) for each GET. Yields its URL and the Authorization header of every request."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append(self.headers.get("Authorization"))
            status, body = answer(self.path)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:  # the test's output stays its own
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def uvicorn_thread(app) -> Iterator[str]:
    """`app` under uvicorn on a free loopback port in this process, until the block ends."""
    import threading

    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="critical")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.config.port}"
        wait_for_http(f"{url}/v2/health/live")
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def count_aws_requests(monkeypatch: pytest.MonkeyPatch, calls: Counter) -> None:
    """Count every request any boto3 client sends (S3, SQS), by operation, into `calls`."""
    from botocore.client import BaseClient

    real = BaseClient._make_api_call

    def counting(self, operation, params):
        calls[operation] += 1
        return real(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
