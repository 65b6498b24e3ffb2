"""The storage interface behaves the same on a local folder and on S3."""

from __future__ import annotations

import pytest

from mlops_assets.storage import Layout, ObjectStorage, UnsafeKeyError, relative_name, safe_key


@pytest.mark.parametrize(
    "parts",
    [("..", "x"), ("raw", "../x"), ("/etc/passwd",), ("a//b",), ("a\\b",), ("a/./b",), ("",)],
)
def test_unsafe_keys_are_refused(parts):
    with pytest.raises(UnsafeKeyError):
        safe_key(*parts)


def test_relative_name_refuses_escape_from_prefix():
    assert relative_name("landing/digits/a/b.csv", "landing/digits") == "a/b.csv"
    for key in ("landing/digits/../x.csv", "landing/digits//etc/passwd", "landing/other/x.csv"):
        with pytest.raises(UnsafeKeyError):
            relative_name(key, "landing/digits")


def test_layout_matches_design():
    layout = Layout("digits")
    assert layout.raw("b1", "f.csv") == "raw/digits/b1/f.csv"
    assert layout.quarantine("b1", "rows.parquet") == "quarantine/digits/b1/rows.parquet"
    assert layout.dataset("v1", "train.parquet") == "datasets/digits/v1/train.parquet"


def test_round_trip_and_conditional_create(storage):
    assert not storage.exists("x/y.json")
    with pytest.raises(FileNotFoundError):
        storage.read_bytes("x/y.json")
    assert storage.write_json("x/y.json", {"a": 1}, if_absent=True)
    assert not storage.write_json("x/y.json", {"a": 2}, if_absent=True)
    assert storage.read_json("x/y.json") == {"a": 1}
    storage.write_json("x/y.json", {"a": 3})
    assert storage.read_json("x/y.json") == {"a": 3}
    storage.write_bytes("x/z/w.bin", b"abc")
    listed = {info.key: info for info in storage.list("x")}
    assert set(listed) == {"x/y.json", "x/z/w.bin"}
    assert listed["x/z/w.bin"].size == 3


def test_a_read_with_a_limit_reads_at_most_that_and_refuses_more(storage):
    from mlops_assets.storage.base import ObjectTooLargeError

    storage.write_bytes("x/big.bin", b"a" * 1000)
    assert storage.read_bytes("x/big.bin", limit=1000) == b"a" * 1000
    with pytest.raises(ObjectTooLargeError, match="x/big.bin"):
        storage.read_bytes("x/big.bin", limit=999)


def test_step_outputs_are_json_in_the_run_s_storage_and_bounded(storage, monkeypatch):
    """What one step hands the next: JSON at the run's, step's and output's key; a record
    over the limit is refused on write and on read, naming its key; no pickle is read."""
    import pickle

    import dagster as dg

    from mlops_assets.storage import step_outputs
    from mlops_assets.storage.step_outputs import StepOutputError, StepOutputs

    outputs = StepOutputs(storage)
    out = dg.build_output_context(step_key="uc__clean.plan", name="plan", run_id="r1")
    outputs.handle_output(out, {"slices": [[{"batch_id": "b1"}]]})
    assert storage.read_json("steps/r1/uc__clean.plan/plan.json") == {
        "slices": [[{"batch_id": "b1"}]]
    }
    assert outputs.load_input(dg.build_input_context(upstream_output=out)) == {
        "slices": [[{"batch_id": "b1"}]]
    }
    storage.write_bytes("steps/r1/uc__clean.plan/plan.json", pickle.dumps({"a": 1}))
    with pytest.raises(StepOutputError, match="plan.json"):  # not JSON: refused, not run
        outputs.load_input(dg.build_input_context(upstream_output=out))
    monkeypatch.setattr(step_outputs, "MAX_BYTES", 100)
    storage.write_bytes("steps/r1/uc__clean.plan/plan.json", b"[" + b"1," * 100 + b"1]")
    with pytest.raises(StepOutputError, match="plan.json"):
        outputs.load_input(dg.build_input_context(upstream_output=out))
    with pytest.raises(StepOutputError, match="uc__clean.plan"):
        outputs.handle_output(out, list(range(100)))


def test_listing_is_not_capped_at_a_page(storage):
    for i in range(1100):
        storage.write_bytes(f"many/{i:05d}", b"")
    assert len(storage.list("many")) == 1100


def test_folders_are_the_names_directly_under_a_prefix(storage):
    for key in ("zone/prod/2026/a.parquet", "zone/prod/b", "zone/dev/x/y/z", "zone/top.json"):
        storage.write_bytes(key, b"")
    storage.write_bytes("zone-other/qa/c", b"")  # shares the prefix's characters, not its folder
    assert storage.folders("zone") == ["dev", "prod"]  # files directly under it are no folders
    assert storage.folders("zone/prod") == ["2026"]
    assert storage.folders("zone/dev/x/y") == [] and storage.folders("absent") == []
    assert ObjectStorage.folders(storage, "zone") == storage.folders("zone")  # as a listing says


def test_writes_refuse_keys_that_escape(storage):
    with pytest.raises(UnsafeKeyError):
        storage.write_bytes("../outside.txt", b"no")


def test_local_symlink_out_of_root_is_refused(local_env, tmp_path):
    from mlops_assets.storage.local import LocalStorage

    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    storage = LocalStorage(root=str(tmp_path / "root"))
    (tmp_path / "root" / "landing").mkdir(parents=True)
    (tmp_path / "root" / "landing" / "link.csv").symlink_to(secret)
    with pytest.raises(UnsafeKeyError, match="outside the storage root"):
        storage.read_bytes("landing/link.csv")


def test_s3_errors_name_bucket_and_key(s3_env, monkeypatch):
    from mlops_assets.resources import build_storage
    from mlops_assets.settings import load_settings
    from mlops_assets.storage.s3 import S3StorageError

    monkeypatch.setenv("MLOPS_STORAGE_ROOT", "s3://no-such-bucket-here/p")
    storage = build_storage(load_settings())
    with pytest.raises(S3StorageError, match="s3://no-such-bucket-here/p/k.json"):
        storage.write_bytes("k.json", b"{}")


def test_compare_and_swap(storage):
    assert storage.read_versioned("a/alias.json") is None
    assert storage.replace_if("a/alias.json", b"1", None)
    assert not storage.replace_if("a/alias.json", b"x", None)  # someone created it first
    data, token = storage.read_versioned("a/alias.json")
    assert data == b"1"
    assert storage.replace_if("a/alias.json", b"2", token)
    assert not storage.replace_if("a/alias.json", b"3", token)  # stale token
    assert storage.read_bytes("a/alias.json") == b"2"
    assert [i.key for i in storage.list("a")] == ["a/alias.json"]


def test_compare_and_swap_under_contention(storage):
    """Eight threads each add one to a counter by compare-and-swap: no update is lost."""
    from concurrent.futures import ThreadPoolExecutor

    storage.write_bytes("c/counter", b"0")

    def increment(_: int) -> None:
        while True:
            data, token = storage.read_versioned("c/counter")
            if storage.replace_if("c/counter", str(int(data) + 1).encode(), token):
                return

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(increment, range(40)))
    assert storage.read_bytes("c/counter") == b"40"
