"""The landing sensor, evaluated as the daemon would, on a local folder and on S3."""

from __future__ import annotations

import dagster as dg
import pytest

from mlops_assets.definitions import build_definitions

SENSOR = "digits_landing_sensor"


def tick(storage, cursor: str | None):
    definitions = build_definitions()
    sensor = definitions.resolve_sensor_def(SENSOR)
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            resources={"storage": storage},
            definitions=definitions,
        ) as context,
    ):
        return sensor.evaluate_tick(context)


def test_one_run_per_set_of_new_files(storage):
    empty = tick(storage, None)
    assert empty.run_requests == [] and "no new files" in empty.skip_message

    storage.write_bytes("landing/digits/a.csv", b"pixel_0,label\n")
    storage.write_bytes("landing/digits/b.csv", b"pixel_0,label\n")
    storage.write_bytes("landing/digits/.hidden", b"")
    first = tick(storage, None)
    assert len(first.run_requests) == 1
    (request,) = first.run_requests
    assert request.tags["mlops/new_files"] == "2"
    assert build_definitions().resolve_sensor_def(SENSOR).job_name == "digits_dataops"

    again = tick(storage, first.cursor)
    assert again.run_requests == []
    # without the cursor, the same files give the same run key: the daemon launches once
    assert tick(storage, None).run_requests[0].run_key == request.run_key

    storage.write_bytes("landing/digits/c.csv", b"pixel_0,label\n")
    third = tick(storage, again.cursor or first.cursor)
    assert len(third.run_requests) == 1
    assert third.run_requests[0].tags["mlops/new_files"] == "1"
    assert third.run_requests[0].run_key != request.run_key


def test_rewritten_file_triggers_again(storage):
    storage.write_bytes("landing/digits/a.csv", b"v1")
    first = tick(storage, None)
    storage.write_bytes("landing/digits/a.csv", b"version 2")  # within the same clock second
    second = tick(storage, first.cursor)
    assert len(second.run_requests) == 1
    assert tick(storage, second.cursor).run_requests == []


@pytest.mark.slow
def test_1500_new_files_in_one_tick(storage):
    for i in range(1500):
        storage.write_bytes(f"landing/digits/part-{i:05d}.csv", b"pixel_0,label\n")
    result = tick(storage, None)
    assert len(result.run_requests) == 1
    assert result.run_requests[0].tags["mlops/new_files"] == "1500"
    assert tick(storage, result.cursor).run_requests == []


def test_files_already_ingested_launch_nothing(storage):
    """A sensor turned on over a landing zone the demo already ingested stays quiet."""
    from mlops_assets.datasets.tabular.acquire import run_acquire
    from mlops_assets.demo.digits_data import seed_digits
    from mlops_assets.storage import Layout

    seed_digits(storage, 5, [1, 2])
    run_acquire(storage, Layout("digits"), "landing/digits")
    assert tick(storage, None).run_requests == []
    seed_digits(storage, 5, [3])
    result = tick(storage, None)
    assert [r.tags["mlops/new_files"] for r in result.run_requests] == ["1"]
