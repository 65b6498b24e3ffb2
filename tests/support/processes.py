"""Processes the tests and benches start: the CLI as a newcomer runs it, servers on free
loopback ports, and how to stop them."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def project_copy(folder: Path, *extra: str) -> Path:
    """The package and `pyproject.toml` (the project root Dagster finds), and the `extra`
    folders, copied into `folder`: a clone to edit without touching this one."""
    for part in ("mlops_assets", *extra):
        shutil.copytree(REPO / part, folder / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", folder / "pyproject.toml")
    return folder


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


def after_definitions_load(code: str, **env: str) -> str:
    """Run `code` in a fresh interpreter after loading the definitions; its stdout."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from mlops_assets.definitions import build_definitions\nbuild_definitions()\n" + code,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
