"""The inference log's cost: this model server with the log on and off, side by side.

The demo's released digits model, served twice by `mlops-assets serve` on the same
machine: once with `MLOPS_INFERENCE_LOG_ENABLED=false`, once with the log on as the digits
YAML ships it (every request, full inputs, written as Parquet to the local storage by the
background task). Each is driven by `wrk` pinned to one core, at concurrency 8 and 1 with
one-row requests; the two alternate and each cell repeats, and the medians are compared
(goal: p50 up and throughput down by at most 5% at concurrency 8). Writes JSON, prints a
table.

    uv run python -m bench.inference_log_overhead [--seconds 5] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from bench.common import REPO, compile_bytecode, write_report
from bench.serving_vs_mlserver import Server, ensure_wrk, wrk_run
from tests.support.processes import clean_env, free_port, run_demo

CELLS = ((8, "c8-rows1"), (1, "c1-rows1"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per wrk run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench/results/inference_log_overhead.json"
    )
    args = parser.parse_args()
    compile_bytecode()
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = clean_env()
        run_demo(root, env).check_returncode()
        import numpy as np

        from mlops_assets.datasets.tabular.split import read_split
        from mlops_assets.storage import Layout
        from mlops_assets.storage.local import LocalStorage

        storage = LocalStorage(root=str(root / ".mlops"))
        version = storage.read_json("datasets/digits/latest.json")["dataset_version"]
        test = read_split(storage, Layout("digits"), version, "test")
        row = (test[[f"pixel_{i}" for i in range(64)]].to_numpy("float32")[:1] * 16).astype(
            np.float64
        )
        body = root / "row.json"
        body.write_text(
            json.dumps(
                {
                    "inputs": [
                        {
                            "name": "rows",
                            "datatype": "FP32",
                            "shape": [1, 64],
                            "data": row.ravel().tolist(),
                        }
                    ]
                }
            )
        )
        servers = []
        for name, enabled in (("log off", "false"), ("log on (full inputs)", "true")):
            port = free_port()
            servers.append(
                Server(
                    name,
                    [
                        str(Path(sys.executable).parent / "mlops-assets"),
                        "serve",
                        "--version",
                        "1",
                        "--port",
                        str(port),
                    ],
                    root,
                    {**env, "MLOPS_INFERENCE_LOG_ENABLED": enabled},
                    port,
                    "/v2/health/ready",
                    "/v2/models/digits/infer",
                    {1: body},
                )
            )
        runs: dict[str, dict[str, list[dict]]] = {s.name: {} for s in servers}
        for repeat in range(args.repeats):
            for server in servers if repeat % 2 == 0 else list(reversed(servers)):
                with server:
                    wrk_run(wrk, server.url, body, 1, 1)  # warm up
                    for concurrency, cell in CELLS:
                        result = wrk_run(wrk, server.url, body, concurrency, args.seconds)
                        runs[server.name].setdefault(cell, []).append(result)
                        print(
                            f"[{repeat + 1}/{args.repeats}] {server.name:<22} {cell:<9}"
                            f" {result['rps']:>8.0f} req/s  p50 {result['p50_ms']:.3f} ms",
                            flush=True,
                        )
        logged = sum(
            len(storage.read_parquet(i.key))
            for i in storage.list("inference/digits")
            if i.key.endswith(".parquet")
        )
    medians = {
        name: {
            cell: {k: statistics.median(r[k] for r in results) for k in results[0]}
            for cell, results in cells.items()
        }
        for name, cells in runs.items()
    }
    off, on = medians["log off"], medians["log on (full inputs)"]
    ratios = {
        cell: {
            "throughput_on_over_off": on[cell]["rps"] / off[cell]["rps"],
            "p50_on_over_off": on[cell]["p50_ms"] / off[cell]["p50_ms"],
        }
        for _, cell in CELLS
    }
    report = {
        "benchmark": "inference_log_overhead",
        "seconds_per_run": args.seconds,
        "repeats": args.repeats,
        "records_logged": logged,
        "medians": medians,
        "ratios": ratios,
        "runs": runs,
        "goal": "at concurrency 8: p50 at most 1.05x, throughput at least 0.95x",
    }
    write_report(args.out, report)
    print(
        f"\n{'cell':<10} {'off req/s':>10} {'on req/s':>10} {'ratio':>7} "
        f"{'off p50':>9} {'on p50':>9} {'ratio':>7}"
    )
    for _, cell in CELLS:
        print(
            f"{cell:<10} {off[cell]['rps']:>10.0f} {on[cell]['rps']:>10.0f} "
            f"{ratios[cell]['throughput_on_over_off']:>7.3f} {off[cell]['p50_ms']:>9.3f} "
            f"{on[cell]['p50_ms']:>9.3f} {ratios[cell]['p50_on_over_off']:>7.3f}"
        )
    print(f"{logged} records logged; written to {args.out}")


if __name__ == "__main__":
    main()
