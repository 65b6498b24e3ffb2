"""The DataOps half end to end, on the local default and on S3 (moto server).

Three batches, then a fourth with about 10% bad rows and a fifth broken file:
the second run ingests only the new files, quarantines the bad rows and the
broken file with reasons, keeps every earlier row in its split, and makes a new
dataset version.
"""

from __future__ import annotations

import dagster as dg
import pytest

from mlops_assets.datasets.tabular.catalog import load_catalog
from mlops_assets.datasets.tabular.split import SPLITS, read_split_ids
from mlops_assets.definitions import build_definitions
from mlops_assets.demo.digits_data import seed_digits
from mlops_assets.storage import Layout

LAYOUT = Layout("digits")
JOB = "digits_dataops"


def run(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return (
        build_definitions()
        .resolve_job_def(JOB)
        .execute_in_process(instance=instance, raise_on_error=False)
    )


def checks(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def metadata(result, step: str) -> dict:
    (event,) = result.asset_materializations_for_node(f"digits__{step}")
    return {k: v.value for k, v in event.metadata.items()}


def split_ids(storage, version: str) -> dict[str, set[str]]:
    return {name: read_split_ids(storage, LAYOUT, version, name) for name in SPLITS}


@pytest.mark.slow
def test_grows_incrementally_and_quarantines_bad_input(storage, storage_env):
    with dg.instance_for_test() as instance:
        seed_digits(storage, 5, [1, 2, 3])
        first = run(instance)
        assert first.success
        assert len(metadata(first, "acquire")["new_batch_ids"]) == 3
        assert all(e.passed for e in first.get_asset_check_evaluations())
        v1 = metadata(first, "split")["dataset_version"]
        before = split_ids(storage, v1)
        rows_v1 = sum(len(ids) for ids in before.values())
        raw_v1 = {i.key: i.version for i in storage.list("raw/digits") if "/_" not in i.key}

        (bad_key,) = seed_digits(storage, 5, [4], bad_fraction=0.10)
        broken_key = "landing/digits/digits-005-of-005.csv"
        storage.write_bytes(broken_key, b'pixel_0,label\n1,2\n"never closed')
        second = run(instance)
        assert second.success  # bad input is quarantined, not a crash

        # only the two new files were ingested; earlier raw objects untouched
        new_ids = metadata(second, "acquire")["new_batch_ids"]
        assert len(new_ids) == 2
        catalog = load_catalog(storage, LAYOUT)
        assert [b["source"] for b in catalog][-2:] == [
            "digits-004-of-005.csv",
            "digits-005-of-005.csv",
        ]
        raw_now = {i.key: i.version for i in storage.list("raw/digits") if "/_" not in i.key}
        assert {k: raw_now[k] for k in raw_v1} == raw_v1

        # the broken file: quarantined whole, bytes and reason, named in a failed check
        broken = next(b for b in catalog if b["source"].endswith("005-of-005.csv"))
        record = storage.read_json(LAYOUT.quarantine(broken["batch_id"], "quarantine.json"))
        assert record["scope"] == "file" and "cannot be parsed" in record["reason"]
        assert storage.read_bytes(LAYOUT.quarantine(broken["batch_id"], broken["file"])) == (
            storage.read_bytes(broken_key)
        )
        schema_check = checks(second)["schema_matches_contract"]
        assert not schema_check.passed
        assert "digits-005-of-005.csv" in schema_check.description
        assert not checks(second)["labels_in_range"].passed  # batch 4 has labels like 12
        assert checks(second)["clean_rows_satisfy_contract"].passed

        # the bad rows: quarantined one by one with row number and reason
        bad = next(b for b in catalog if b["source"].endswith("004-of-005.csv"))
        rows = storage.read_parquet(LAYOUT.quarantine(bad["batch_id"], "rows.parquet"))
        batch_rows = len(storage.read_parquet(LAYOUT.staged("clean", bad["batch_id"], "parquet")))
        total = batch_rows + len(rows)
        assert len(rows) == int(total * 0.10)  # exactly the rows made bad
        assert rows["reason"].str.len().gt(0).all()
        assert rows["row_number"].between(1, total).all()
        kinds = " ".join(rows["reason"])
        for reason in ("missing value", "non-numeric", "outside 0..16", "label=12", "duplicate"):
            assert reason in kinds
        assert metadata(second, "clean")["rows_quarantined"] == len(rows)

        # new dataset version, every earlier row still in its split, nothing deleted
        v2 = metadata(second, "split")["dataset_version"]
        assert v2 != v1
        after = split_ids(storage, v2)
        for name in SPLITS:
            assert before[name] <= after[name], name
        assert sum(len(ids) for ids in after.values()) == rows_v1 + batch_rows
        assert checks(second)["test_set_keeps_earlier_rows"].passed
        assert {i.key for i in storage.list("landing/digits")} >= {bad_key, broken_key}

        # nothing new: acquire says so and the rest of the graph is skipped
        third = run(instance)
        assert third.success
        # by asset: clean's steps are its graph's (digits__clean.digits__clean_plan, ...)
        skipped = {e.step_key.split(".")[0] for e in third.get_step_skipped_events()}
        assert skipped == {f"digits__{s}" for s in ("observe", "clean", "transform", "split")}
        assert storage.read_json(LAYOUT.dataset_latest)["dataset_version"] == v2


def test_rewritten_file_is_a_new_batch_and_the_old_one_is_kept(storage):
    with dg.instance_for_test() as instance:
        (key,) = seed_digits(storage, 5, [1])
        assert run(instance).success
        (other,) = seed_digits(storage, 5, [2])
        # same name, new content (not byte for byte batch 2's: acquire takes two files of one
        # content in one run as one batch, and which name it keeps depends on the order the
        # listing gives them in, by modification time on S3)
        storage.write_bytes(key, storage.read_bytes(other) + b"\n")
        assert run(instance).success
        catalog = load_catalog(storage, LAYOUT)
        assert [b["source"] for b in catalog].count("digits-001-of-005.csv") == 2
        assert len({b["batch_id"] for b in catalog}) == len(catalog)
        for batch in catalog:
            assert storage.exists(batch["raw_key"])


def test_landing_name_escaping_the_zone_is_refused_on_s3(s3_env, moto_server):
    import boto3

    from mlops_assets.resources import build_storage
    from mlops_assets.settings import load_settings

    storage = build_storage(load_settings())
    client = boto3.client("s3", endpoint_url=moto_server)
    client.put_object(Bucket=s3_env, Key="team-a/landing/digits/../../escape.csv", Body=b"x")
    seed_digits(storage, 5, [1])
    with dg.instance_for_test() as instance:
        result = run(instance)
    assert result.success  # the good file still goes through
    check = checks(result)["landing_names_safe"]
    assert not check.passed and "escape.csv" in check.description
    catalog = load_catalog(storage, LAYOUT)
    assert [b["source"] for b in catalog] == ["digits-001-of-005.csv"]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_env)["Contents"]]
    assert all(k.startswith("team-a/") for k in keys)
    assert not any("escape" in k for k in keys if not k.startswith("team-a/landing/"))


def test_reobservation_measures_drift_of_all_data_without_new_files(local_env, storage):
    with dg.instance_for_test() as instance:
        seed_digits(storage, 5, [1, 2, 3])
        assert run(instance).success
        result = (
            build_definitions()
            .resolve_job_def("digits_reobserve")
            .execute_in_process(instance=instance, raise_on_error=False)
        )
    assert result.success
    meta = metadata(result, "observe")
    assert meta["rows_new"] == 0  # nothing new landed ...
    assert meta["drift_max_psi"] > 0  # ... but batches 2-3 are compared with the reference
    assert "drift_below_threshold" in checks(result)
