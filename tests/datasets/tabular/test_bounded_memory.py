"""A landing file larger than the memory setting goes through every DataOps step within it,
and a large file is copied to raw/ on S3 by a multipart copy, never through memory."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.aws import count_aws_requests
from tests.support.dataops_rss import NAME, frame
from tests.support.processes import REPO, clean_env

ROW_INDEX_BYTES = 100
"""What the row index's claims cost per row of a file while it is cleaned and committed
(docs/architecture.md, "DataOps at table scale"): held whole, whatever the setting."""


@pytest.mark.slow
def test_a_file_larger_than_the_memory_setting_is_processed_within_it(tmp_path):
    memory_mb = 64
    folder = tmp_path / "root" / "landing" / NAME
    folder.mkdir(parents=True)
    path = folder / "export.parquet"
    rows = 0
    with pq.ParquetWriter(path, pa.Schema.from_pandas(frame(1, 0), preserve_index=False)) as out:
        while path.stat().st_size < 200 * 1024 * 1024 and rows < 2_000_000:
            out.write_table(pa.Table.from_pandas(frame(50_000, rows), preserve_index=False))
            rows += 50_000
    size_mb = path.stat().st_size / 2**20
    assert size_mb > 3 * memory_mb
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.dataops_rss", str(tmp_path / "root"), str(memory_mb)],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    grown_mb = (measured["peak_kb"] - measured["before_kb"]) / 1024
    allowed_mb = memory_mb + rows * ROW_INDEX_BYTES / 2**20
    assert grown_mb < allowed_mb, (grown_mb, size_mb, measured)
    manifest = json.loads(
        (tmp_path / "root" / "datasets" / NAME / measured["latest"]["dataset_version"])
        .joinpath("manifest.json")
        .read_text()
    )
    assert sum(manifest["rows"].values()) == rows + 20_000  # every row, and the warm-up's


@pytest.mark.parametrize("storage_env", ["s3"], indirect=True)
def test_acquire_copies_a_large_file_on_s3_by_multipart_copy(storage_env, monkeypatch):
    from mlops_assets.components.tree import load_use_case
    from mlops_assets.datasets.tabular.acquire import run_acquire
    from mlops_assets.demo.digits_data import synthetic_batch, to_bytes
    from mlops_assets.resources import build_storage
    from mlops_assets.settings import load_settings
    from mlops_assets.storage import Layout

    monkeypatch.setenv("MLOPS_S3_PART_MB", "5")  # S3's smallest part
    storage = build_storage(load_settings())
    assert storage.part_mb == 5
    data = to_bytes(synthetic_batch(90_000, 3))  # about 13 MB of CSV
    assert len(data) > 2 * 5 * 2**20
    storage.write_bytes("landing/digits/export.csv", data)
    calls: Counter[str] = Counter()
    count_aws_requests(monkeypatch, calls)
    layout = Layout("digits")
    result = run_acquire(storage, layout, load_use_case("digits").landing)
    (batch,) = result.new
    assert calls["UploadPartCopy"] >= 3 and calls["CompleteMultipartUpload"] == 1
    assert calls["PutObject"] < 10  # markers, catalog, cursor: never the file's bytes
    assert storage.read_bytes(batch["raw_key"]) == data
