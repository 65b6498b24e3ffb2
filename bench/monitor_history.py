"""The monitor's cost against the size of the inference log's history.

The same new traffic (10 log files of 1,000 one-row requests, full 64-value inputs, in the
current hour) is monitored on top of a history of 1x, 10x and 100x as many requests
(10k, 100k and 1M, spread over the last 30 days and folded into hour summaries by an
earlier run, not timed). What is timed is one monitor run as the asset makes it
(`run_monitor`: fold the new files, then report on the 24 h window), three times per
history size with fresh new files each time, median; the files it read are counted.
Goal: the run time grows with the new files, not with the history. Writes JSON, prints a
table.

    uv run python -m bench.monitor_history [--new-files 10] [--rows-per-file 1000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from io import BytesIO
from pathlib import Path

from bench.common import REPO, compile_bytecode, write_report
from tests.support.processes import clean_env, run_demo

REPEATS = 3
HISTORY = (1, 10, 100)


def log_file(rng, inputs, rows: int, when: datetime, request_base: int) -> bytes:
    """One file as the model server writes it (serving/inference_log.py's columns)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    picked = inputs[rng.integers(0, len(inputs), rows)].astype("float32")
    values = pa.array(picked.ravel())
    offsets = pa.array(np.arange(0, picked.size + 1, picked.shape[1], dtype="int32"))
    table = pa.table(
        {
            "request_id": [f"r{request_base + i}" for i in range(rows)],
            "time": pa.array([when] * rows, pa.timestamp("us", tz="UTC")),
            "model_name": ["digits"] * rows,
            "model_version": ["1"] * rows,
            "environment": ["dev"] * rows,
            "row": pa.array(np.zeros(rows, "int32")),
            "prediction": pa.array(rng.integers(0, 10, rows)),
            "latency_ms": pa.array(np.full(rows, 0.5, "float32")),
            "inputs": pa.ListArray.from_arrays(offsets, values),
        }
    )
    buffer = BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--new-files", type=int, default=10)
    parser.add_argument("--rows-per-file", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/monitor_history.json")
    args = parser.parse_args()
    compile_bytecode()
    import numpy as np

    from mlops_assets.components.tree import load_use_case
    from mlops_assets.monitoring.monitor import run_monitor
    from mlops_assets.monitoring.provenance import DeployedVersions
    from mlops_assets.storage import Layout
    from mlops_assets.storage.local import LocalStorage

    # what git deployed, as the monitor reads it from the GitOps repository: version 1,
    # the version every log file of this bench names
    git = DeployedVersions({"dev": frozenset({"1"})}, "the bench's git")

    class Counting(LocalStorage):
        def read_bytes(self, key: str) -> bytes:
            READS.append(key)
            return super().read_bytes(key)

    READS: list[str] = []
    uc = load_use_case("digits")
    layout = Layout("digits")
    new_rows = args.new_files * args.rows_per_file
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        demo.mkdir()
        run_demo(demo, clean_env()).check_returncode()
        for factor in HISTORY:
            root = Path(tmp) / f"history-{factor}x"
            # the released model and its dataset, without the logs of another history
            shutil.copytree(demo / ".mlops", root, ignore=shutil.ignore_patterns("inference"))
            storage = Counting(root=str(root))
            version = storage.read_json(layout.dataset_latest)["dataset_version"]
            # the test split's model inputs, through the kind (a version is a manifest)
            inputs, _ = uc.dataset.load_split(storage, layout, version, "test").arrays()
            inputs = inputs.astype("float32")
            rng = np.random.default_rng(factor)
            now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
            monitor = partial(  # one run as the asset makes it, on this history
                run_monitor,
                storage,
                layout,
                uc.dataset,
                uc.monitor,
                "dev",
                uc.gate.metric,
                now=now,
                deployed=git,
            )
            history_files = factor * args.new_files
            started = time.perf_counter()
            for n in range(history_files):
                when = now - timedelta(hours=1 + n * 24 * 30 // history_files)
                key = f"{layout.inference('dev')}/{when:%Y-%m-%d}/{when:%H}/old-{n:06d}.parquet"
                storage.write_bytes(key, log_file(rng, inputs, args.rows_per_file, when, n << 20))
            monitor()
            setup = time.perf_counter() - started
            timings, reads, listed = [], [], []
            for repeat in range(REPEATS):
                for n in range(args.new_files):
                    key = (
                        f"{layout.inference('dev')}/{now:%Y-%m-%d}/{now:%H}/"
                        f"new{repeat}-{n:06d}.parquet"
                    )
                    base = (1 << 40) + (repeat << 30) + (n << 20)
                    storage.write_bytes(key, log_file(rng, inputs, args.rows_per_file, now, base))
                READS.clear()
                started = time.perf_counter()
                report = monitor()
                timings.append(time.perf_counter() - started)
                reads.append(sum(k.startswith("inference/") for k in READS))
                listed.append(report.digest.log_files_listed)
                assert report.digest.log_files == args.new_files
            results.append(
                {
                    "history_factor": factor,
                    "history_requests": history_files * args.rows_per_file,
                    "history_files": history_files,
                    "new_requests": new_rows,
                    "new_files": args.new_files,
                    "setup_seconds": setup,
                    "monitor_seconds": timings,
                    "median_seconds": statistics.median(timings),
                    "log_files_read": reads,
                    "log_keys_listed": listed,
                }
            )
            print(
                f"history {factor:>3}x ({history_files * args.rows_per_file:>9,} requests): "
                f"monitor {statistics.median(timings):.3f} s for {new_rows:,} new, "
                f"log files read {reads}, log keys listed {listed}",
                flush=True,
            )
    base = results[0]["median_seconds"]
    for result in results:
        result["ratio_to_1x"] = result["median_seconds"] / base
    report = {
        "benchmark": "monitor_history",
        "results": results,
        "goal": "the monitor's run time grows with the new log files, not the history",
    }
    write_report(args.out, report)
    print(f"\n{'history':>8} {'requests':>10} {'median s':>9} {'ratio':>6}")
    for result in results:
        print(
            f"{result['history_factor']:>7}x {result['history_requests']:>10,} "
            f"{result['median_seconds']:>9.3f} {result['ratio_to_1x']:>6.2f}"
        )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
