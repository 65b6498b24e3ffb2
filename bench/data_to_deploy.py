"""From a file landing to the GitOps commit, under the real Dagster daemon.

For each landing-sensor interval (the default 30 s, and a short one), `dagster dev`
(webserver and daemon) runs on the local default with nobody pressing anything:
batches 1-3 land and the first release is deployed (warm-up, timed as `first`); then
batches 4 and 5 land one after the other, and each is timed from the moment its file
is written to the moment the GitOps repository has the commit deploying the model it
produced (or, if the gate rejects it, the moment the MLOps run has failed).
Goal: at most the sensor interval plus 20 s. Writes JSON, prints a table.

    uv run python -m bench.data_to_deploy [--intervals 30 5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import REPO, compile_bytecode, write_report

BIN = Path(sys.executable).parent

RUNS = """{ runsOrError { ... on Runs { results { jobName status } } } }"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        json.dumps({"query": query}).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def deploy_commits(bare: Path) -> list[str]:
    done = subprocess.run(
        ["git", "--git-dir", str(bare), "log", "--format=%s", "main"],
        capture_output=True,
        text=True,
    )
    return [s for s in done.stdout.splitlines() if s.startswith("Deploy ")]


def failed_mlops_runs(url: str) -> int:
    runs = graphql(url, RUNS)["runsOrError"]["results"]
    return sum(1 for r in runs if r["jobName"] == "digits_mlops" and r["status"] == "FAILURE")


def until(condition, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        time.sleep(0.2)
    raise TimeoutError("the loop did not close in time")


def measure(interval: int, work: Path) -> dict:
    from mlops_assets.demo.digits_data import seed_digits
    from mlops_assets.storage.local import LocalStorage

    home = work / "home"
    home.mkdir(parents=True)
    from mlops_assets.cli.demo import LOCAL_INSTANCE_YAML

    # the instance `mlops-assets demo` sets up, which `dagster dev` then uses
    (home / "dagster.yaml").write_text(LOCAL_INSTANCE_YAML + "telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "DAGSTER_", "AWS_"))}
    env |= {
        "DAGSTER_HOME": str(home),
        "MLOPS_STORAGE_ROOT": str(work / ".mlops"),
        "MLOPS_SENSOR_INTERVAL_SECONDS": str(interval),
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(work / "dagster-dev.log", "w")  # noqa: SIM115
    dev = subprocess.Popen(
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
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    storage = LocalStorage(root=str(work / ".mlops"))
    bare = work / ".mlops" / "gitops.git"
    try:
        until(lambda: _up(url), 180)
        time.sleep(interval + 2)  # the sensors have ticked once on an empty landing zone
        samples = {}
        for name, batches in (("first", [1, 2, 3]), ("batch_4", [4]), ("batch_5", [5])):
            deployed, failed = len(deploy_commits(bare)) if bare.exists() else 0, 0
            if bare.exists():
                failed = failed_mlops_runs(url)
            started = time.monotonic()
            seed_digits(storage, 5, batches)
            ended = until(
                lambda d=deployed, f=failed: (
                    (bare.exists() and len(deploy_commits(bare)) > d) or failed_mlops_runs(url) > f
                ),
                timeout=interval * 3 + 180,
            )
            outcome = (
                deploy_commits(bare)[0] if len(deploy_commits(bare)) > deployed else "rejected"
            )
            samples[name] = {"seconds": ended - started, "outcome": outcome}
            print(
                f"interval {interval:>3} s  {name:8} {ended - started:6.1f} s  {outcome}",
                flush=True,
            )
        return samples
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            dev.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(dev.pid, signal.SIGKILL)  # the code server and run workers too
        log.close()


def _up(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/server_info", timeout=1).close()
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intervals", type=int, nargs="+", default=[30, 5])
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/data_to_deploy.json")
    args = parser.parse_args()
    compile_bytecode()
    results = {}
    for interval in args.intervals:
        with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
            samples = measure(interval, Path(tmp))
        later = [samples["batch_4"]["seconds"], samples["batch_5"]["seconds"]]
        results[str(interval)] = {
            "samples": samples,
            "median_new_batch_s": statistics.median(later),
            "goal_s": interval + 20,
            "goal_met": max(later) <= interval + 20,
        }
    report = {
        "benchmark": "data_to_deploy",
        "results": results,
    }
    write_report(args.out, report)
    for interval, r in results.items():
        print(
            f"interval {interval} s: new batch to deploy, median {r['median_new_batch_s']:.1f} s "
            f"(goal <= {r['goal_s']} s: {'met' if r['goal_met'] else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
