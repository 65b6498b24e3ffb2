"""Bad landing files and rows: clear reasons that name the file, row and column."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from mlops_assets.datasets.tabular.catalog import load_catalog
from mlops_assets.datasets.tabular.dataset import TabularDataset
from mlops_assets.datasets.tabular.rows import BatchRejected, check_rows, parse_batch
from mlops_assets.demo.digits_data import COLUMNS, digits_batches, seed_digits, to_bytes
from mlops_assets.resources import build_storage
from mlops_assets.settings import load_settings
from mlops_assets.storage import Layout
from tests.support.use_cases import materialize_steps, shipped

DATASET = TabularDataset()
HEADER = ",".join(COLUMNS).encode()


def good_rows(n: int = 3) -> pd.DataFrame:
    return digits_batches(5)[0].head(n)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.csv", b"", "empty file"),
        ("header-only.csv", HEADER + b"\n", "no data rows"),
        ("cols.csv", b"a,b\n1,2\n", "wrong columns: missing columns pixel_0"),
        ("broken.csv", HEADER + b'\n"1,2', "cannot be parsed as csv"),
        ("broken.parquet", b"PAR1 this is not parquet", "cannot be parsed as parquet"),
        ("notes.txt", b"hello", "unsupported file type"),
    ],
)
def test_unusable_files_are_rejected_with_their_name_and_reason(name, data, reason):
    with pytest.raises(BatchRejected, match=reason) as error:
        parse_batch(data, name, DATASET)
    assert str(error.value).startswith(f"{name}: ")


def test_extra_column_is_named():
    frame = good_rows().assign(comment="x")
    with pytest.raises(BatchRejected, match="unexpected columns comment"):
        parse_batch(to_bytes(frame), "extra.csv", DATASET)


def test_parquet_and_csv_parse_to_the_same_rows():
    frame = good_rows()
    csv = parse_batch(to_bytes(frame, "csv"), "a.csv", DATASET)
    parquet = parse_batch(to_bytes(frame, "parquet"), "a.parquet", DATASET)
    pd.testing.assert_frame_equal(csv, parquet)


def test_row_reasons_name_column_and_value():
    text = good_rows(5).astype(str)
    text.loc[0, "pixel_3"] = ""
    text.loc[1, "pixel_5"] = "abc"
    text.loc[2, "pixel_7"] = "17"
    text.loc[3, "label"] = "2.5"
    reasons = check_rows(text.reset_index(drop=True), DATASET).reasons.tolist()
    assert reasons == [
        "missing value in pixel_3",
        "non-numeric value 'abc' in pixel_5",
        "pixel_7=17 outside 0..16",
        "label=2.5 is not an integer in 0..9",
        "",
    ]


def test_symlink_out_of_the_landing_zone_is_refused_and_not_read(local_env):
    storage = build_storage(load_settings())
    seed_digits(storage, 5, [1])
    secret = local_env / "secret.csv"
    secret.write_bytes(to_bytes(good_rows()))
    (local_env / ".mlops" / "landing" / "digits" / "link.csv").symlink_to(secret)
    with dg.instance_for_test() as instance:
        result = materialize_steps(shipped("digits"), ["acquire"], instance)
    assert result.success
    (check,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "landing_names_safe"
    ]
    assert not check.passed and "link.csv" in check.description
    sources = [b["source"] for b in load_catalog(storage, Layout("digits"))]
    assert sources == ["digits-001-of-005.csv"]


def test_a_batch_whose_labels_are_all_strings_fails_observe_and_clean_with_the_reason(local_env):
    """A string label is no class of an integer-labelled use case: observe's label check
    fails naming an example (it used to count only numbers out of range, and passed), and
    clean, which keeps no row of the run, fails its check instead of passing on nothing."""
    storage = build_storage(load_settings())
    frame = good_rows(4)
    frame["label"] = ["seven", "one", "seven", "two"]
    storage.write_bytes("landing/digits/strings.csv", to_bytes(frame))
    with dg.instance_for_test() as instance:
        result = materialize_steps(shipped("digits"), ["acquire", "observe", "clean"], instance)
    found = {e.check_name: e for e in result.get_asset_check_evaluations()}
    labels = found["labels_in_range"]
    assert not labels.passed
    assert (
        "strings.csv: 4 row(s) with an unusable label (e.g. non-numeric value 'seven' in label)"
        in (labels.description)
    )
    kept = found["clean_rows_satisfy_contract"]
    assert not kept.passed and "4 row(s) and not one clean row" in kept.description
    assert not result.success  # the check blocks: nothing downstream runs on no rows


def test_a_split_with_no_clean_row_fails_in_one_line_naming_why(local_env):
    """The only landed file has other columns (a misnamed one quarantines it whole): split
    fails with the reason as the failure's description, not a traceback under Dagster's
    step error."""
    storage = build_storage(load_settings())
    frame = good_rows(4).rename(columns={"pixel_3": "pixel_three"})
    storage.write_bytes("landing/digits/misnamed.csv", to_bytes(frame))
    with dg.instance_for_test() as instance:
        steps = ["acquire", "observe", "clean", "transform", "split"]
        result = materialize_steps(shipped("digits"), steps, instance)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "digits__split"
    error = failure.step_failure_data.error
    assert error.message.strip() == (
        "dagster._core.definitions.events.Failure: no clean rows for digits yet: none of the "
        "batches ingested has a usable row (see quarantine/)"
    )
    assert error.cause is None  # no chained DagsterExecutionStepExecutionError
    assert failure.step_failure_data.user_failure_data.description.startswith("no clean rows")
