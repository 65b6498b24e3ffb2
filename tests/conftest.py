"""The fixtures every test folder shares: a moto S3 server on loopback, storage on the
local default or S3, and the GitOps remote over git daemon or HTTPS. Helpers live in
tests/support/."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gitops import HAND_WRITTEN, TEMPLATE, git_daemon
from tests.support.processes import free_port, stop, wait_for_http


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with slow end-to-end tests first. The suite runs in two workers that take a
    file at a time in this order; a slow file taken last would leave one worker idle while
    the other finishes it."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])  # stable: within a file, as written


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


@pytest.fixture
def https_git_server(tmp_path, monkeypatch):
    """The GitOps remote over HTTPS (git http-backend) on loopback, asking for TOKEN; git
    trusts its self-signed certificate. Yields (url, bare path, token, Authorization headers)."""
    from mlops_assets.gitops.git import ensure_local_remote
    from tests.support.https_git import https_git, self_signed

    root = tmp_path / "https"
    ensure_local_remote(
        root / "gitops.git", "main", {"environments/dev/digits/values.yaml": TEMPLATE}
    )
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("GIT_SSL_CAINFO", str(cert))
    token = "ghp_" + uuid.uuid4().hex
    with https_git(root, cert, key, token=token) as (base, seen):
        yield f"{base}/gitops.git", root / "gitops.git", token, seen
