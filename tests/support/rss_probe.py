"""Peak memory of the model server and of the monitor under hostile inputs, each in a
process of its own (`python -m tests.support.rss_probe server|monitor ...`): prints the process's
peak RSS in kB and what it measured, as JSON."""

from __future__ import annotations

import json
import sys
import tempfile
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import numpy as np


def peak_kb() -> int:
    """This process's peak RSS (VmHWM: ru_maxrss would carry the parent's peak over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def server(buffer_mb: float, requests: int) -> dict:
    """The real app under uvicorn with its storage down: `requests` requests of 1024 rows
    each pile up in the log buffer, bounded by `buffer_mb`."""
    from mlops_assets.serving.app import create_app
    from mlops_assets.serving.inference_log import InferenceLog, LogSettings
    from mlops_assets.serving.limits import Limits
    from mlops_assets.storage.local import LocalStorage
    from tests.support.http_servers import uvicorn_thread
    from tests.support.model_servers import CountingAdapter, counting_model, infer_body

    root = Path(tempfile.mkdtemp())
    (root / "inference").write_text("a file where a folder should be: every write fails")
    settings = LogSettings(
        enabled=True,
        flush_rows=10**9,
        flush_seconds=3600,
        max_buffer_rows=10**9,  # the bytes bound alone
        max_buffer_mb=buffer_mb,
    )
    log = InferenceLog(LocalStorage(root=str(root)), "digits", "dev", settings)
    app = create_app(counting_model(CountingAdapter()), Limits(), inference_log=log)
    rng = np.random.default_rng(0)
    body = json.dumps(infer_body(rng.integers(0, 16, (1024, 64)).astype(float).tolist()))
    before = peak_kb()
    with uvicorn_thread(app) as url:
        for _ in range(requests):
            request = urllib.request.Request(
                url + "/v2/models/digits/infer",
                data=body.encode(),
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                assert response.status == 200
        buffered = log.buffered_bytes
    return {"before_kb": before, "buffered_bytes": buffered, "dropped": log.dropped}


def monitor(budget_mb: float, rows: int) -> dict:
    """The digest of one small file that decodes to `rows` kB, beside a good one."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops_assets.monitoring.digest import digest_new
    from mlops_assets.monitoring.provenance import DeployedVersions
    from mlops_assets.storage import Layout
    from mlops_assets.storage.local import LocalStorage

    now = datetime(2026, 12, 5, 12, 30, tzinfo=UTC)
    storage = LocalStorage(root=tempfile.mkdtemp())
    folder = f"inference/digits/dev/{now:%Y-%m-%d}/{now:%H}"

    def repeated(value: str) -> pa.Array:  # dictionary-encoded: small here, large decoded
        return pa.DictionaryArray.from_arrays(np.zeros(rows, "int32"), [value])

    micros = int(pd.Timestamp(now).value // 1000)
    table = {
        "request_id": repeated("x" * 1000),
        "row": pa.array(np.zeros(rows, "int32")),
        "time": pa.array(np.full(rows, micros, "int64"), pa.timestamp("us", tz="UTC")),
        "environment": repeated("dev"),
        "model_version": repeated("1"),
        "prediction": pa.array(np.zeros(rows, "int64")),
    }
    sink = pa.BufferOutputStream()
    # no Arrow schema in the file: readers decode the strings, not the dictionary
    pq.write_table(
        pa.table(table), sink, compression="zstd", row_group_size=rows, store_schema=False
    )
    storage.write_bytes(f"{folder}/bomb.parquet", sink.getvalue().to_pybytes())
    before = peak_kb()
    result = digest_new(
        storage,
        Layout("digits"),
        lambda version, mode: None,
        now,
        deployed=DeployedVersions({"dev": frozenset({"1"})}),
        budget_bytes=int(budget_mb * 1024 * 1024),
    )
    return {"before_kb": before, "refused": len(result.refused), "folded": result.log_files}


if __name__ == "__main__":
    mode, limit, count = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    found = server(limit, count) if mode == "server" else monitor(limit, count)
    print(json.dumps({**found, "peak_kb": peak_kb()}))
