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

ROW_INDEX_BYTES = 150
"""What the row index's claims cost per row of a file while it is cleaned and committed,
with the allocator's slack (docs/architecture.md, "DataOps at table scale": about 100, up
to 150 measured): held for the whole file, whatever the setting."""


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
    assert grown_mb < 0.8 * size_mb  # not the file: it is never held whole
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


def test_a_file_read_in_chunks_is_checked_as_one_naming_its_own_rows(local_env):
    """Bad rows in the third and fourth of four chunks (a short row among them), and a row
    repeating one of the first chunk: the same quarantine, row numbers and reasons as the
    file read whole."""
    from mlops_assets.datasets.tabular.acquire import run_acquire
    from mlops_assets.datasets.tabular.catalog import load_catalog
    from mlops_assets.datasets.tabular.clean import run_clean
    from mlops_assets.storage import Layout
    from mlops_assets.storage.local import LocalStorage
    from tests.support.use_cases import digits_with

    header = ",".join([f"pixel_{i}" for i in range(64)] + ["label"])
    lines = [
        ",".join([str(n % 17), str(n // 17 % 17), str(n // 289 % 17)] + ["2"] * 61) + f",{n % 10}"
        for n in range(3_500)
    ]
    lines[2_499] = ",".join(["1"] * 60)  # a short row: its missing fields are blank
    lines[3_199] = lines[3_199].replace(",2,", ",99,", 1)  # a pixel out of range
    lines[3_299] = lines[10]  # a repeat of a row of the first chunk
    body = ("\n".join([header, *lines]) + "\n").encode()
    quarantined = {}
    for memory_mb in (0.01, 256.0):  # chunks of 1,000 rows; the file in one chunk
        root = local_env / f"root-{memory_mb}"
        storage = LocalStorage(root=str(root))
        storage.write_bytes("landing/digits/export.csv", body)
        uc = digits_with(dataset={"memory_mb": memory_mb}).blocks
        small = memory_mb < 1
        assert (uc.dataset.chunk_rows == 1_000) if small else (uc.dataset.chunk_rows > 3_500)
        run_acquire(storage, Layout("digits"), "landing/digits")
        run_clean(storage, Layout("digits"), uc.dataset)
        (batch,) = load_catalog(storage, Layout("digits"))
        frame = storage.read_parquet(Layout("digits").quarantine(batch["batch_id"], "rows.parquet"))
        quarantined[memory_mb] = list(zip(frame["row_number"], frame["reason"], strict=True))
    assert quarantined[0.01] == quarantined[256.0]
    numbers = [n for n, _ in quarantined[0.01]]
    assert numbers == [2_500, 3_200, 3_300]
    assert "missing value" in quarantined[0.01][0][1]
    assert quarantined[0.01][2][1] == "exact duplicate of row 11 of export.csv"
