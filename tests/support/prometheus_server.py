"""A real Prometheus for the canary analysis tests: Debian's `prometheus` package.

On PATH it is used as it is; otherwise its .deb is fetched once (apt's own download where
the machine has package lists, else the pinned file from deb.debian.org, checked against
its sha256) and unpacked with dpkg-deb into a cache folder: no root needed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.file_lock import exclusive
from tests.support.processes import free_port, stop

DEB = "pool/main/p/prometheus/prometheus_2.42.0+ds-5+deb12u1_amd64.deb"
DEB_SHA256 = "81d59a24fce84f7fbe97a45a4f2914b6a5881b5cd1db2a6a0e129e515e1a5f55"
CACHE = Path.home() / ".cache" / "mlops-assets-tests" / "prometheus"


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found:
        return found
    with exclusive(CACHE.parent / "prometheus.lock"):
        return _cached_binary()


def _cached_binary() -> str:
    binary = CACHE / "usr" / "bin" / "prometheus"
    if binary.exists():
        return str(binary)
    if not shutil.which("dpkg-deb"):
        raise RuntimeError("these tests need Prometheus: install Debian's `prometheus` package")
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(
            ["apt-get", "download", "-q", "prometheus"], cwd=tmp, capture_output=True
        )
        debs = list(Path(tmp).glob("prometheus_*.deb"))
        if got.returncode or not debs:
            deb = Path(tmp) / "prometheus.deb"
            with urllib.request.urlopen(f"http://deb.debian.org/debian/{DEB}", timeout=120) as r:
                deb.write_bytes(r.read())
            if hashlib.sha256(deb.read_bytes()).hexdigest() != DEB_SHA256:
                raise RuntimeError(f"{DEB}: sha256 differs from the pinned one; refused")
            debs = [deb]
        unpacked = Path(tmp) / "unpacked"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], check=True)
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(CACHE, ignore_errors=True)
        shutil.move(str(unpacked), CACHE)
    return str(binary)


@contextmanager
def prometheus(targets: list[tuple[str, dict[str, str]]], tmp: Path) -> Iterator[str]:
    """Prometheus scraping each (host:port, labels) every second; yields its URL."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "model-api",
                "static_configs": [
                    {"targets": [target], "labels": labels} for target, labels in targets
                ],
            }
        ],
    }
    (tmp / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    process = subprocess.Popen(
        [
            prometheus_binary(),
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "prometheus.log").open("w"),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop(process)
                raise RuntimeError((tmp / "prometheus.log").read_text()[-2000:]) from None
            time.sleep(0.2)
    try:
        yield url
    finally:
        stop(process)


def query(url: str, promql: str) -> list[float]:
    """The values of an instant query's vector result."""
    params = urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return [float(item["value"][1]) for item in body["data"]["result"]]
