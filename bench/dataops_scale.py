"""DataOps at table scale (issue: DataOps at table scale): what the steps after ingestion
cost in time, requests and memory as the history and the files grow.

1. History: a row index holding H rows of history (100k, 1M, 10M; written by the index's
   own commit, as clean leaves it, without cleaning H rows first), then 100k new rows of
   the 30-column table (`bench/tabular_train_validate.py`) in ten Parquet files: observe,
   clean, transform and split, each timed, on the local default and on a moto S3 server
   (every request counted; those to the row index apart). Each case in its own process.
   Against it, the bare pass: pyarrow reading the same new files and hashing their rows
   (pandas' vectorised row hash), on the same machine.
2. The user's run: 200k rows x 30 columns in 20 Parquet files of 10k through
   `dagster asset materialize --select '*table/split'` (wall time, definitions load and
   the run's own start included); again under the multiprocess executor with clean's
   backlog in two slices (two worker processes).
3. Peak RSS of the DataOps steps over one large landing Parquet file (2 GB by default),
   with the default memory setting, in its own process (`tests/support/dataops_rss.py`).
Writes JSON; prints the table.

    uv run python -m bench.dataops_scale [--histories 100000,1000000,10000000] [--big-gb 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from time import perf_counter

from bench.common import REPO, compile_bytecode, write_report
from bench.landing_scale_s3 import _moto
from bench.pipeline_overhead import materialize
from bench.tabular_train_validate import NAME, landed_project, table, use_case_yaml

NEW_ROWS, FILES = 100_000, 10
GOALS = {
    "clean_seconds_10m_over_100k_history": 1.5,
    "bare_pass_over_clean": 0.3,
    "user_run_seconds": 30,
    "index_requests_per_clean": 10,
}


def _use_case():
    import yaml

    from mlops_assets.components.tabular import TabularUseCase

    attributes = yaml.safe_load(use_case_yaml())["attributes"]
    return TabularUseCase.from_attributes_dict(attributes=attributes).blocks


def _history(storage, layout, rows: int) -> None:
    """H rows in the row index, as H rows cleaned before would leave it."""
    import numpy as np

    from mlops_assets.datasets.tabular.clean import open_index
    from mlops_assets.datasets.tabular.row_index import Claims

    rng = np.random.default_rng(7)
    claims = Claims()
    for start in range(0, rows, 10_000):  # as batches of 10k rows
        size = min(10_000, rows - start)
        claims.add(
            rng.integers(0, 2**63, size, dtype=np.uint64),
            rng.integers(0, 2**32, size, dtype=np.uint64).astype(np.uint32),
            f"h{start // 10_000:08d}",
            f"history/{start // 10_000:08d}.parquet",
            np.arange(1, size + 1),
        )
    open_index(storage, layout).commit(claims.part())


def one_case(backend: str, history: int) -> dict:
    """In its own process: the history, the new files, each step timed and counted."""
    from collections import Counter
    from io import BytesIO

    from botocore.client import BaseClient

    from mlops_assets.datasets.tabular.acquire import run_acquire
    from mlops_assets.datasets.tabular.clean import run_clean
    from mlops_assets.datasets.tabular.observe import run_observe
    from mlops_assets.datasets.tabular.split import run_split
    from mlops_assets.datasets.tabular.transform import run_transform
    from mlops_assets.resources import build_storage
    from mlops_assets.settings import load_settings
    from mlops_assets.storage import Layout

    uc, layout = _use_case(), Layout(NAME)
    storage = build_storage(load_settings())
    _history(storage, layout, history)
    frame = table(NEW_ROWS, seed=history % 997)
    per = NEW_ROWS // FILES
    for n in range(FILES):
        buffer = BytesIO()
        frame.iloc[n * per : (n + 1) * per].to_parquet(buffer)
        storage.write_bytes(f"landing/{NAME}/new-{n:03d}.parquet", buffer.getvalue())
    run_acquire(storage, layout, f"landing/{NAME}")

    calls: Counter[str] = Counter()
    index: Counter[str] = Counter()
    real = BaseClient._make_api_call

    def counting(self, operation, params):
        calls[operation] += 1
        keys = [params.get("Key", ""), params.get("Prefix", "")]
        keys += [o["Key"] for o in params.get("Delete", {}).get("Objects", [])]
        if any("/_row_index/" in k or "/_rows" in k for k in keys):
            index[operation] += 1
        return real(self, operation, params)

    BaseClient._make_api_call = counting
    steps = {
        "observe": lambda: run_observe(storage, layout, uc.dataset, uc.observe),
        "clean": lambda: run_clean(storage, layout, uc.dataset),
        "transform": lambda: run_transform(storage, layout, uc.dataset),
        "split": lambda: run_split(storage, layout, uc.dataset, uc.split),
    }
    out: dict = {"backend": backend, "history_rows": history, "new_rows": NEW_ROWS}
    for name, step in steps.items():
        calls.clear()
        index.clear()
        started = perf_counter()
        step()
        seconds = perf_counter() - started
        out[name] = {
            "seconds": seconds,
            "rows_per_s": NEW_ROWS / seconds,
            **(
                {
                    "requests": sum(calls.values()),
                    "requests_per_batch": sum(calls.values()) / FILES,
                    "index_requests": dict(index),
                }
                if backend == "s3"
                else {}
            ),
        }
    BaseClient._make_api_call = real
    out["bare_pass"] = bare_pass(storage)
    return out


def bare_pass(storage) -> dict:
    """pyarrow reading the new files and hashing their rows, nothing else."""
    import pandas as pd
    import pyarrow.parquet as pq

    keys = [i.key for i in storage.list(f"landing/{NAME}")]
    started = perf_counter()
    rows = 0
    for key in keys:
        with storage.local_file(key) as path:
            for batch in pq.ParquetFile(path).iter_batches():
                rows += len(pd.util.hash_pandas_object(batch.to_pandas(), index=False))
    seconds = perf_counter() - started
    return {"seconds": seconds, "rows_per_s": rows / seconds, "rows": rows}


def _run_case(backend: str, history: int) -> dict:
    env = dict(os.environ)
    moto = None
    with tempfile.TemporaryDirectory() as tmp:
        env.update(MLOPS_STORAGE_ROOT=str(Path(tmp) / "root"))
        env.pop("MLOPS_ENV", None)
        if backend == "s3":
            import boto3

            moto, url = _moto()
            bucket = "dataops-scale"
            env.update(
                MLOPS_STORAGE_ROOT=f"s3://{bucket}/team",
                MLOPS_S3_ENDPOINT_URL=url,
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                AWS_REGION="us-east-1",
            )
            boto3.client(
                "s3",
                endpoint_url=url,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            ).create_bucket(Bucket=bucket)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "bench.dataops_scale", "--one", backend, str(history)],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
            )
        finally:
            if moto is not None:
                moto.terminate()
                moto.wait()
    if done.returncode:
        raise RuntimeError(done.stderr[-4000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def user_run(rows: int, workers: int = 1) -> dict:
    """The run the issue's user made: `*table/split` through Dagster, from a fresh root; with
    `workers` > 1, under the multiprocess executor with clean's backlog cut into that many
    slices (a process each)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root, _, env = landed_project(work, rows)
        slices = 1
        if workers > 1:
            landed = sum(p.stat().st_size for p in (root / "landing" / NAME).iterdir())
            slice_mb = landed / workers / 2**20 * 1.01
            yaml = Path(env["PYTHONPATH"]) / "mlops_assets/defs" / NAME / "defs.yaml"
            text = yaml.read_text().replace(
                "  dataset:\n", f"  dataset:\n    slice_mb: {slice_mb}\n"
            )
            yaml.write_text(text)
            env = {**env, "MLOPS_EXECUTOR": "multiprocess"}
            slices = workers
        wall, _ = materialize(env, work, f"*{NAME}/split")
    return {
        "rows": rows,
        "files": rows // 10_000,
        "executor": "multiprocess" if workers > 1 else "in_process",
        "clean_slices": slices,
        "wall_s": wall,
    }


def big_file(gigabytes: float) -> dict:
    """Peak RSS of every DataOps step over one landing Parquet file of `gigabytes`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.support.dataops_rss import NAME as WIDE
    from tests.support.dataops_rss import frame

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "root" / "landing" / WIDE
        folder.mkdir(parents=True)
        path = folder / "export.parquet"
        rows = 0
        schema = pa.Schema.from_pandas(frame(1, 0), preserve_index=False)
        with pq.ParquetWriter(path, schema) as out:
            while path.stat().st_size < gigabytes * 2**30:
                out.write_table(pa.Table.from_pandas(frame(100_000, rows), preserve_index=False))
                rows += 100_000
        size = path.stat().st_size
        started = perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "tests.support.dataops_rss", str(Path(tmp) / "root"), "256"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        seconds = perf_counter() - started
    if done.returncode:
        raise RuntimeError(done.stderr[-4000:])
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "file_bytes": size,
        "rows": rows,
        "memory_mb_setting": 256,
        "rss_before_mb": measured["before_kb"] / 1024,
        "rss_peak_mb": measured["peak_kb"] / 1024,
        "grown_mb": (measured["peak_kb"] - measured["before_kb"]) / 1024,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--histories", default="100000,1000000,10000000")
    parser.add_argument("--backends", default="local,s3")
    parser.add_argument("--user-rows", type=int, default=200_000)
    parser.add_argument("--big-gb", type=float, default=2.0)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/dataops_scale.json")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_case(args.one[0], int(args.one[1]))))
        return
    compile_bytecode()
    histories = [int(h) for h in args.histories.split(",")]
    cases = [_run_case(b, h) for b in args.backends.split(",") for h in histories]
    user = user_run(args.user_rows) if args.user_rows else None
    two = user_run(args.user_rows, workers=2) if args.user_rows else None
    big = big_file(args.big_gb) if args.big_gb else None
    figures = {}
    for backend in args.backends.split(","):
        mine = [c for c in cases if c["backend"] == backend]
        if len(mine) > 1:
            figures[f"{backend}_clean_growth"] = (
                mine[-1]["clean"]["seconds"] / mine[0]["clean"]["seconds"]
            )
        figures[f"{backend}_bare_over_clean"] = min(
            c["bare_pass"]["seconds"] / c["clean"]["seconds"] for c in mine
        )
    report = {
        "benchmark": "dataops_scale",
        "new_rows": NEW_ROWS,
        "files": FILES,
        "goal": GOALS,
        "cases": cases,
        "figures": figures,
        "user_run": user,
        "user_run_two_workers": two,
        "big_file": big,
    }
    write_report(args.out, report)
    print(
        f"{'backend':8} {'history':>10} {'observe/s':>10} {'clean/s':>10} {'split/s':>10}"
        f" {'bare/s':>10} {'index req':>10}"
    )
    for c in cases:
        index = sum(c["clean"].get("index_requests", {}).values())
        print(
            f"{c['backend']:8} {c['history_rows']:>10} {c['observe']['rows_per_s']:>10.0f}"
            f" {c['clean']['rows_per_s']:>10.0f} {c['split']['rows_per_s']:>10.0f}"
            f" {c['bare_pass']['rows_per_s']:>10.0f} {index if c['backend'] == 's3' else '-':>10}"
        )
    print(json.dumps({"figures": figures, "user_run": user, "two": two, "big_file": big}, indent=1))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
