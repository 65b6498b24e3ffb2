"""The GitOps remote of the tests: the values files it starts with, `git daemon` serving it,
and its log."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import REPO, stop

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


def git_log(bare: Path, *args: str) -> str:
    """`git log` of a bare repository (the GitOps remote)."""
    return subprocess.run(
        ["git", "--git-dir", str(bare), "log", *args], capture_output=True, text=True, check=True
    ).stdout


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
