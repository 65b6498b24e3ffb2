"""This model server against Seldon MLServer 1.7.1, side by side, on the same model.

Prepares the demo's released digits model (the demo pipeline on a temporary root); builds
MLServer's own virtual environment (`mlserver==1.7.1 mlserver-sklearn==1.7.1
"uvloop<0.22"`, the same scikit-learn as ours) and fits the same pipeline (StandardScaler,
then SVC with the released parameters) on the same train split there; starts each server
in turn, drives it with `wrk` (installed with apt-get if missing) pinned to one core with
`taskset`, at concurrency 1, 8 and 32, with one-row and 64-row requests; alternates the
servers and repeats each cell, reporting medians of req/s, p50 and p99, and the ratios.
MLServer runs twice: with its default worker pool and with `parallel_workers: 0`. It also
measures the model's in-process predict and this server's memory while it rejects a
stream of over-limit requests. Writes JSON, prints a table.

    uv run python -m bench.serving_vs_mlserver [--seconds 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import REPO, compile_bytecode, write_report
from tests.support.processes import clean_env, free_port, run_demo, wait_for_http

MLSERVER = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22"]
VENV = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlops_assets/mlserver"
CONCURRENCY = (1, 8, 32)
ROWS = (1, 64)
CLIENT_CORE = "1"

FIT = """
import sys, joblib, numpy as np, json
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
x, y = np.load(sys.argv[1]), np.load(sys.argv[2])
params = json.loads(sys.argv[3])
model = make_pipeline(StandardScaler(), SVC(random_state=params.pop("seed"), **params))
model.fit(x, y)
joblib.dump(model, sys.argv[4])
"""

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "rb")
wrk.body = f:read("*a")
f:close()
response = function(status, headers, body)
  if status ~= 200 then
    io.stderr:write("status " .. status .. ": " .. body .. "\\n")
    os.exit(1)
  end
end
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (apt-get) ...", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or sys.exit("wrk could not be installed")


def ensure_mlserver_venv() -> Path:
    """MLServer in its own environment (its pins clash with ours), made once."""
    import sklearn

    python = VENV / "bin/python"
    marker = VENV / f".ready-sklearn-{sklearn.__version__}"
    if marker.exists():
        return python
    print(f"building MLServer's environment in {VENV} ...", flush=True)
    packages = [*MLSERVER, f"scikit-learn=={sklearn.__version__}"]
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` says where it is
    if uv:
        subprocess.run([uv, "venv", "-q", "-p", sys._base_executable, str(VENV)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "-p", str(python), *packages], check=True)
    else:
        subprocess.run([sys._base_executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    marker.touch()
    return python


def wrk_run(wrk: str, url: str, body: Path, connections: int, seconds: float) -> dict:
    script = body.with_suffix(".lua")
    script.write_text(WRK_SCRIPT.format(body=body))
    out = subprocess.run(
        [
            "taskset",
            "-c",
            CLIENT_CORE,
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(f"wrk on {url} failed: {out.stderr[-2000:]}{out.stdout[-2000:]}")
    out = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    percentiles = {
        int(p): _ms(value, unit)
        for p, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors[1]} failed requests\n{out}")
    return {"rps": rps, "p50_ms": percentiles[50], "p99_ms": percentiles[99]}


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


class Server:
    """One server under test: a command, its inference URL and request bodies."""

    def __init__(
        self,
        name: str,
        command: list[str],
        cwd: Path,
        env: dict,
        port: int,
        ready: str,
        infer: str,
        bodies: dict[int, Path],
    ) -> None:
        self.name, self.command, self.cwd, self.env, self.port = name, command, cwd, env, port
        self.ready, self.infer, self.bodies = ready, infer, bodies
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_http(f"http://127.0.0.1:{self.port}{self.ready}", timeout=120)
        return self

    def __exit__(self, *exc) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.infer}"


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MiB."""
    total = 0
    pids = [str(pid)]
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    pids += children.stdout.split()
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def over_limit_stream(port: int, seconds: float) -> int:
    """Requests over the body limit, declared and chunked, for `seconds`; how many."""
    sent, deadline = 0, time.monotonic() + seconds
    chunk = b"[" * 65536
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            if sent % 2:
                sock.sendall(
                    b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: b\r\n"
                    b"Content-Length: 100000000\r\n\r\n"
                )
            else:
                sock.sendall(
                    b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: b\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                )
                try:
                    for _ in range(200):
                        sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                except OSError:
                    pass
            try:
                answer = sock.recv(64)
            except OSError:
                answer = b""
            assert not answer or answer.startswith(b"HTTP/1.1 413"), answer
        sent += 1
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per wrk run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/serving_vs_mlserver.json")
    args = parser.parse_args()
    compile_bytecode()
    wrk = ensure_wrk()
    mlserver_python = ensure_mlserver_venv()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = clean_env()
        run_demo(root, env).check_returncode()
        # like MLServer, record nothing (bench/inference_log_overhead.py measures the log)
        env["MLOPS_INFERENCE_LOG_ENABLED"] = "false"
        import numpy as np

        from mlops_assets.datasets.tabular.split import read_split
        from mlops_assets.serving.loader import load_from_registry
        from mlops_assets.storage import Layout
        from mlops_assets.storage.local import LocalStorage

        storage = LocalStorage(root=str(root / ".mlops"))
        loaded = load_from_registry(storage, "digits", adapter="sklearn_svc")
        layout = Layout("digits")
        version = loaded.metadata["dataset_version"]
        columns = [f"pixel_{i}" for i in range(64)]
        train = read_split(storage, layout, version, "train")
        test = read_split(storage, layout, version, "test")
        np.save(root / "x.npy", train[columns].to_numpy("float32"))
        np.save(root / "y.npy", train["label"].to_numpy("int64"))
        scaled = test[columns].to_numpy("float32")  # what the models take
        landed = scaled * 16  # what our server is sent: rows as they land

        # MLServer's model: the same pipeline, fitted on the same split, in its environment
        model_dir = root / "mlserver/digits"
        model_dir.mkdir(parents=True)
        training = loaded.metadata["training"]
        params = {**training["params"], "seed": training["seed"]}
        subprocess.run(
            [
                str(mlserver_python),
                "-c",
                FIT,
                str(root / "x.npy"),
                str(root / "y.npy"),
                json.dumps(params),
                str(model_dir / "model.joblib"),
            ],
            check=True,
        )
        (model_dir / "model-settings.json").write_text(
            json.dumps(
                {
                    "name": "digits",
                    "implementation": "mlserver_sklearn.SKLearnModel",
                    "parameters": {"uri": "./model.joblib", "version": "v1"},
                }
            )
        )

        # in process: predict on one row, the floor of any server's latency
        one = scaled[:1]
        timings = []
        for _ in range(2000):
            started = time.perf_counter()
            loaded.adapter.predict(loaded.model, one)
            timings.append(time.perf_counter() - started)
        predict_ms = statistics.median(timings) * 1e3

        def bodies(values, name: str) -> dict[int, Path]:
            made = {}
            for n in ROWS:
                path = root / f"{name}-{n}.json"
                path.write_text(
                    json.dumps(
                        {
                            "inputs": [
                                {
                                    "name": "rows" if name == "ours" else "input-0",
                                    "datatype": "FP32",
                                    "shape": [n, 64],
                                    "data": values[:n].ravel().tolist(),
                                }
                            ]
                        }
                    )
                )
                made[n] = path
            return made

        servers = []
        port = free_port()
        servers.append(
            Server(
                "mlops-assets",
                [
                    str(Path(sys.executable).parent / "mlops-assets"),
                    "serve",
                    "--version",
                    "1",
                    "--port",
                    str(port),
                ],
                root,
                env,
                port,
                "/v2/health/ready",
                "/v2/models/digits/infer",
                bodies(landed, "ours"),
            )
        )
        for workers, label in (
            (None, "MLServer (default pool)"),
            (0, "MLServer (parallel_workers: 0)"),
        ):
            folder = root / f"mlserver-{label.split()[-1].strip('()')}"
            shutil.copytree(root / "mlserver", folder)
            port = free_port()
            settings = {
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "debug": False,
            }
            if workers is not None:
                settings["parallel_workers"] = workers
            (folder / "settings.json").write_text(json.dumps(settings))
            servers.append(
                Server(
                    label,
                    [str(mlserver_python.parent / "mlserver"), "start", str(folder)],
                    folder,
                    {**env, "PATH": f"{mlserver_python.parent}:{env['PATH']}"},
                    port,
                    "/v2/health/ready",
                    "/v2/models/digits/infer",
                    bodies(scaled, "mlserver"),
                )
            )

        runs: dict[str, dict[str, list[dict]]] = {s.name: {} for s in servers}
        for repeat in range(args.repeats):
            order = servers if repeat % 2 == 0 else list(reversed(servers))
            for server in order:
                with server:
                    for rows in ROWS:  # warm up each body once
                        wrk_run(wrk, server.url, server.bodies[rows], 1, 1)
                    for concurrency in CONCURRENCY:
                        for rows in ROWS:
                            cell = f"c{concurrency}-rows{rows}"
                            result = wrk_run(
                                wrk, server.url, server.bodies[rows], concurrency, args.seconds
                            )
                            runs[server.name].setdefault(cell, []).append(result)
                            print(
                                f"[{repeat + 1}/{args.repeats}] {server.name:<32} {cell:<12}"
                                f" {result['rps']:>8.0f} req/s  p50 {result['p50_ms']:.2f}"
                                f"  p99 {result['p99_ms']:.2f} ms",
                                flush=True,
                            )

        # memory while rejecting over-limit requests
        memory = {}
        ours = servers[0]
        with ours:
            assert ours.process is not None
            time.sleep(1)
            idle = rss_mb(ours.process.pid)
            peak, stop = [idle], threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    peak.append(rss_mb(ours.process.pid))
                    time.sleep(0.2)

            sampler = threading.Thread(target=sample)
            sampler.start()
            rejected = over_limit_stream(ours.port, args.memory_seconds)
            stop.set()
            sampler.join()
            memory = {
                "idle_rss_mb": idle,
                "peak_rss_mb": max(peak),
                "ratio": max(peak) / idle,
                "requests_rejected": rejected,
                "seconds": args.memory_seconds,
            }

    medians = {
        name: {
            cell: {k: statistics.median(r[k] for r in results) for k in ("rps", "p50_ms", "p99_ms")}
            for cell, results in cells.items()
        }
        for name, cells in runs.items()
    }
    ours_name = servers[0].name
    mlservers = [s.name for s in servers[1:]]
    ratios = {}
    for cell in medians[ours_name]:
        best = max(mlservers, key=lambda n: medians[n][cell]["rps"])
        ratios[cell] = {
            "rps_over_best_mlserver": medians[ours_name][cell]["rps"] / medians[best][cell]["rps"],
            "best_mlserver": best,
            "p99_over_that_mlserver": medians[ours_name][cell]["p99_ms"]
            / medians[best][cell]["p99_ms"],
        }
    c8 = ratios["c8-rows1"]
    goals = {
        "c8_rows1_rps_at_least_2x_best_mlserver": c8["rps_over_best_mlserver"] >= 2,
        "c8_rows1_p99_at_most_that_mlservers": c8["p99_over_that_mlserver"] <= 1,
        "c1_rows1_p50_within_predict_plus_1ms": medians[ours_name]["c1-rows1"]["p50_ms"]
        <= predict_ms + 1,
        "memory_under_2x_idle_while_rejecting": memory["ratio"] < 2,
    }
    report = {
        "benchmark": "serving_vs_mlserver",
        "client": f"wrk, 1 thread, pinned to core {CLIENT_CORE} (taskset)",
        "seconds_per_run": args.seconds,
        "repeats": args.repeats,
        "in_process_predict_p50_ms": predict_ms,
        "medians": medians,
        "ratios": ratios,
        "memory": memory,
        "goals_met": goals,
        "runs": runs,
    }
    write_report(args.out, report)
    print()
    print(f"{'cell':<12}" + "".join(f"{n[:30]:>34}" for n in medians))
    for cell in medians[ours_name]:
        print(
            f"{cell:<12}"
            + "".join(
                f"{medians[n][cell]['rps']:>12.0f} r/s {medians[n][cell]['p50_ms']:>6.2f}"
                f"/{medians[n][cell]['p99_ms']:>6.2f} ms"
                for n in medians
            )
        )
    print(f"in-process predict p50 {predict_ms:.3f} ms; memory {memory}")
    print(f"goals: {goals}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
