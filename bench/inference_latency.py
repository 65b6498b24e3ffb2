"""Single-row inference over loopback HTTP versus the model's in-process predict.

Prepares a released digits model (the demo pipeline on a temporary root), starts the
server with `mlops-assets serve` (uvicorn), sends single-row Open Inference Protocol v2
requests from a fixed number of client threads over keep-alive connections, and calls
predict in process on the same rows. Writes JSON, prints a table.

    uv run python -m bench.inference_latency [--requests 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench.common import REPO, compile_bytecode, write_report
from tests.support.processes import clean_env, model_server, run_demo


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/inference_latency.json")
    args = parser.parse_args()
    compile_bytecode()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = clean_env()
        run_demo(root, env).check_returncode()
        from mlops_assets.datasets.tabular.split import read_split
        from mlops_assets.serving.loader import load_from_registry
        from mlops_assets.storage import Layout
        from mlops_assets.storage.local import LocalStorage

        storage = LocalStorage(root=str(root / ".mlops"))
        loaded = load_from_registry(storage, "digits", adapter="sklearn_svc")
        version = storage.read_json(Layout("digits").dataset_latest)["dataset_version"]
        test = read_split(storage, Layout("digits"), version, "test")
        rows = test[[f"pixel_{i}" for i in range(64)]].to_numpy(dtype="float32")
        landed = rows * 16  # what clients send: rows as they land (the server scales them)

        # in process: one predict call per row, the same rows in the same order
        local = []
        for i in range(args.requests):
            x = rows[i % len(rows)].reshape(1, -1)
            started = time.perf_counter()
            loaded.adapter.predict(loaded.model, x)
            local.append(time.perf_counter() - started)

        with model_server(root, env) as address:
            host, port = address.split(":")
            latencies: list[float] = []
            lock = threading.Lock()
            bodies = [
                json.dumps(
                    {
                        "inputs": [
                            {
                                "name": "rows",
                                "shape": [1, 64],
                                "datatype": "FP32",
                                "data": landed[i % len(rows)].tolist(),
                            }
                        ]
                    }
                ).encode()
                for i in range(args.requests)
            ]

            def client(worker: int) -> None:
                connection = http.client.HTTPConnection(host, int(port))
                mine = []
                for i in range(worker, args.requests, args.concurrency):
                    started = time.perf_counter()
                    connection.request(
                        "POST",
                        "/v2/models/digits/infer",
                        bodies[i],
                        {"content-type": "application/json"},
                    )
                    response = connection.getresponse()
                    response.read()
                    assert response.status == 200
                    mine.append(time.perf_counter() - started)
                with lock:
                    latencies.extend(mine)

            threads = [threading.Thread(target=client, args=(w,)) for w in range(args.concurrency)]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started

    report = {
        "benchmark": "inference_latency",
        "requests": args.requests,
        "concurrency": args.concurrency,
        "http": {
            "p50_ms": percentile(latencies, 0.5) * 1e3,
            "p99_ms": percentile(latencies, 0.99) * 1e3,
            "throughput_rps": args.requests / elapsed,
        },
        "in_process": {
            "p50_ms": percentile(local, 0.5) * 1e3,
            "p99_ms": percentile(local, 0.99) * 1e3,
            "throughput_rps": len(local) / sum(local),
            "mean_ms": statistics.mean(local) * 1e3,
        },
    }
    report["ratios"] = {
        "p50_http_over_in_process": report["http"]["p50_ms"] / report["in_process"]["p50_ms"],
        "throughput_in_process_over_http": (
            report["in_process"]["throughput_rps"] / report["http"]["throughput_rps"]
        ),
    }
    write_report(args.out, report)
    print(f"{'':<12}{'p50 ms':>9}{'p99 ms':>9}{'rows/s':>10}")
    for name in ("http", "in_process"):
        r = report[name]
        print(f"{name:<12}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['throughput_rps']:>10.0f}")
    for name, value in report["ratios"].items():
        print(f"{name}: {value:.1f}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
