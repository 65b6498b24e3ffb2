"""The monitor and the feedback join read their window, and the digest the last hours of
the log, not the history.

Every key the storage's listings return is recorded: with twenty days of hour summaries
and inference logs, nothing older than the window (or, for the digest of new log files,
than LAG_HOURS before its cursor) is listed, on the local default and on S3, and the
figures are those of the window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlops_assets.components.tree import load_use_case
from mlops_assets.monitoring.digest import LAG_HOURS, digest_new, hour_of, recent_log_files
from mlops_assets.monitoring.feedback import logged_requests
from mlops_assets.monitoring.monitor import run_monitor
from mlops_assets.monitoring.provenance import DeployedVersions
from mlops_assets.storage import Layout, ObjectStorage

LAYOUT = Layout("digits")
DAYS = 20
GIT = DeployedVersions({"dev": frozenset({"1"}), "prod": frozenset({"1"})}, "the test's git")
"""What git deployed, as the monitor reads it from the GitOps repository."""


@pytest.fixture
def listed(storage: ObjectStorage, monkeypatch) -> list[str]:
    """The keys every listing of `storage` returned, in order."""
    keys: list[str] = []
    for method in ("list", "list_after"):
        real = getattr(type(storage), method)

        def recording(self, *args, _real=real, **kwargs):
            found = _real(self, *args, **kwargs)
            keys.extend(info.key for info in found)
            return found

        monkeypatch.setattr(type(storage), method, recording)
    return keys


def counts(rows: int, last: datetime) -> dict:
    return {
        "rows": rows,
        "requests": rows,
        "errors": 0,
        "labelled": 0,
        "correct": 0,
        "predictions": {"3": rows},
        "last": last.isoformat(),
    }


def test_the_monitor_lists_and_reads_the_summaries_of_its_window_only(storage, listed):
    now = datetime(2026, 12, 5, 12, 30, tzinfo=UTC)
    for env in ("dev", "prod"):
        for h in range(DAYS * 24):
            when = now - timedelta(hours=h)
            summary = {"files": [f"{env}-{h}"], "versions": {"1": counts(h + 1, when)}}
            storage.write_json(LAYOUT.monitor("hours", env, f"{hour_of(when)}.json"), summary)
    # a folder that is no plain name is left alone, and blocks nothing
    storage.write_json(LAYOUT.monitor("hours", "not=a-name", f"{hour_of(now)}.json"), {})
    use_case = load_use_case("digits")
    window = use_case.monitor.window_hours
    listed.clear()

    report = run_monitor(
        storage,
        LAYOUT,
        use_case.dataset,
        use_case.monitor,
        "prod",
        use_case.gate.metric,
        now,
        deployed=GIT,
    )

    summaries = [key for key in listed if key.startswith(LAYOUT.monitor("hours") + "/")]
    assert len(summaries) == 2 * window  # 2 x 20 days of them stored
    assert report.hours_read == 2 * window
    assert min(key.rsplit("/", 1)[-1] for key in summaries) == f"{report.window[0]}.json"
    assert [(r.environment, r.rows) for r in report.versions] == [
        ("dev", sum(h + 1 for h in range(window))),
        ("prod", sum(h + 1 for h in range(window))),
    ]
    assert report.judged is not None and report.judged.environment == "prod"


def test_the_rollback_decision_lists_its_lookback_only(storage, listed):
    from mlops_assets.core.config import RollbackConfig
    from mlops_assets.monitoring.rollback import LOOKBACK_HOURS, decide_rollback

    now = datetime(2026, 12, 5, 12, 30, tzinfo=UTC)
    hours = LOOKBACK_HOURS + 48
    for h in range(hours):
        when = now - timedelta(hours=h)
        version = "1" if h > 30 else "2"  # v2 deployed 30 hours ago, v1 before
        summary = {"files": [f"f{h}"], "versions": {version: counts(10, when)}}
        storage.write_json(LAYOUT.monitor("hours", "prod", f"{hour_of(when)}.json"), summary)
    listed.clear()
    decision = decide_rollback(storage, LAYOUT, "prod", RollbackConfig(), 24, now)
    assert decision is None  # no labels and no errors: nothing to roll back for
    summaries = [key for key in listed if key.startswith(LAYOUT.monitor("hours") + "/")]
    assert len(summaries) == LOOKBACK_HOURS + 1  # of the lookback + 48 hours stored


def test_the_feedback_join_lists_the_logs_of_its_window_only(storage, listed):
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    for env in ("dev", "prod"):
        for day in range(DAYS):
            write_log(storage, env, today - timedelta(days=day), f"{env}-{day}")
    storage.write_bytes(f"{LAYOUT.inference('bad name')}/2026-12-05/12/x.parquet", b"")
    listed.clear()

    log = logged_requests(storage, LAYOUT, days=7, deployed=GIT)

    logs = [key for key in listed if key.startswith(LAYOUT.inference() + "/")]
    since = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%d")
    assert logs and all(key.split("/")[3] >= since for key in logs)  # nothing older listed
    assert set(log["request_id"]) == {
        f"{env}-{day}"
        for env in ("dev", "prod")
        for day in range(DAYS)
        if f"{today - timedelta(days=day):%Y-%m-%d}" >= since
    }
    assert len(logs) == len(set(log["request_id"]))


def write_log(storage: ObjectStorage, env: str, when: datetime, name: str) -> str:
    """One logged request in the hour folder of `when`, as a server writing then would."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "request_id": [name],
            "row": [0],
            "time": [pd.Timestamp(when)],
            "environment": [env],
            "model_version": ["1"],
            "prediction": [3],
        }
    )
    key = f"{LAYOUT.inference(env)}/{when:%Y-%m-%d}/{when:%H}/{name}.parquet"
    storage.write_parquet(key, frame)
    return key


def no_edges(version: str, mode: str) -> None:
    return None


def rows_in_summaries(storage: ObjectStorage, env: str) -> int:
    return sum(
        sum(v["rows"] for v in storage.read_json(info.key)["versions"].values())
        for info in storage.list(LAYOUT.monitor("hours", env))
    )


@pytest.mark.parametrize("days", [2, 8])
def test_the_digest_lists_the_last_hours_of_the_log_whatever_its_history(storage, listed, days):
    now = datetime(2026, 12, 5, 12, 30, tzinfo=UTC)
    for h in range(1, days * 24):
        write_log(storage, "prod", now - timedelta(hours=h), f"old-{h:05d}")
    first = digest_new(storage, LAYOUT, no_edges, now - timedelta(hours=1), deployed=GIT)
    assert first.log_files == days * 24 - 1  # the first run lists the environment whole
    assert storage.read_json(LAYOUT.monitor("_cursors", "prod.json")) == {
        "hour": hour_of(now - timedelta(hours=1))
    }

    new = [write_log(storage, "prod", now, f"new-{n}") for n in range(3)]
    # a server flushing late into the hour before, after the cursor reached it
    new.append(write_log(storage, "prod", now - timedelta(hours=1, minutes=10), "late"))
    listed.clear()
    second = digest_new(storage, LAYOUT, no_edges, now, deployed=GIT)

    assert second.log_files == 4 and second.refused == []
    logs = [key for key in listed if key.startswith(LAYOUT.inference() + "/")]
    assert set(new) <= set(logs)
    assert second.log_files_listed == len(logs) <= (LAG_HOURS + 1) + 4  # not the history's
    assert rows_in_summaries(storage, "prod") == days * 24 - 1 + 4  # each file counted once
    assert digest_new(storage, LAYOUT, no_edges, now, deployed=GIT).log_files == 0


def test_a_server_clock_ahead_does_not_move_the_cursor_past_now(storage):
    """Changed on purpose (the trust boundaries issue): a file in an hour folder later than
    now was folded at once; it now waits for its hour, since no summary later than now is
    read."""
    now = datetime(2026, 12, 5, 12, 30, tzinfo=UTC)
    write_log(storage, "prod", now, "on-time")
    write_log(storage, "prod", now + timedelta(hours=5), "ahead")
    first = digest_new(storage, LAYOUT, no_edges, now, deployed=GIT)
    assert (first.log_files, first.ahead) == (1, 1)
    assert storage.read_json(LAYOUT.monitor("_cursors", "prod.json")) == {"hour": hour_of(now)}
    # the servers on time still write into this hour, and are found
    write_log(storage, "prod", now + timedelta(minutes=20), "on-time-2")
    later = now + timedelta(minutes=25)
    assert digest_new(storage, LAYOUT, no_edges, later, deployed=GIT).log_files == 1
    # the file ahead is folded when its hour comes
    assert (
        digest_new(storage, LAYOUT, no_edges, now + timedelta(hours=5), deployed=GIT).log_files == 1
    )


def test_a_cursor_that_is_no_hour_lists_the_environment_whole(storage):
    now = datetime(2026, 12, 5, 12, 30, tzinfo=UTC)
    write_log(storage, "prod", now - timedelta(days=3), "older")
    for stored in ({"hour": "zz/../../etc"}, {"hour": "2026-13-45T99"}, ["not", "a", "map"]):
        storage.write_json(LAYOUT.monitor("_cursors", "prod.json"), stored)
        for info in storage.list(LAYOUT.monitor("_digested")):
            storage.delete(info.key)
        assert digest_new(storage, LAYOUT, no_edges, now, deployed=GIT).log_files == 1
        assert storage.read_json(LAYOUT.monitor("_cursors", "prod.json")) == {
            "hour": hour_of(now - timedelta(days=3))  # repaired
        }


def test_an_older_roots_index_of_every_log_file_is_migrated(storage):
    """Before per-folder indexes, digested.json named every log file ever folded."""
    now = datetime(2026, 12, 5, 12, 30, tzinfo=UTC)
    folded = [write_log(storage, "prod", now - timedelta(hours=h), f"f{h}") for h in (1, 30)]
    digest_new(storage, LAYOUT, no_edges, now, deployed=GIT)
    for key in (LAYOUT.monitor("_cursors", "prod.json"), LAYOUT.monitor("digested.json")):
        storage.delete(key)
    for info in storage.list(LAYOUT.monitor("_digested")):
        storage.delete(info.key)
    labelled = {"monitor/digits/labelled/b.parquet": "v1"}  # the index's other entries stay
    old_index = {info.key: info.version for info in storage.list(LAYOUT.inference())}
    storage.write_json(LAYOUT.monitor("digested.json"), {**old_index, **labelled})
    assert set(old_index) == set(folded)
    new = write_log(storage, "prod", now, "new")

    result = digest_new(storage, LAYOUT, no_edges, now, deployed=GIT)

    assert result.log_files == 1  # the new file; the two folded before are not read again
    assert rows_in_summaries(storage, "prod") == 3
    assert storage.read_json(LAYOUT.monitor("digested.json")) == labelled
    indexed = {
        key
        for info in storage.list(LAYOUT.monitor("_digested", "prod"))
        for key in storage.read_json(info.key)
    }
    assert indexed == {*folded, new}
    assert digest_new(storage, LAYOUT, no_edges, now, deployed=GIT).log_files == 0


def test_the_inference_log_asset_lists_the_last_day_only(storage, listed):
    now = datetime.now(UTC)
    for h in range(3 * 24):
        write_log(storage, "prod" if h % 2 else "dev", now - timedelta(hours=h), f"f{h:03d}")
    listed.clear()
    files = recent_log_files(storage, LAYOUT, hours=24, now=now)
    assert sorted(info.key.rsplit("/", 1)[-1] for info in files) == [
        f"f{h:03d}.parquet" for h in range(24)
    ]
    assert len([key for key in listed if key.startswith(LAYOUT.inference())]) == 24


def test_labelled_batches_are_listed_by_their_window(storage, listed):
    """Feedback writes each labelled batch into the folder of its day: the digest, the
    join's labels-seen-before and retraining's window list those days, not the history."""
    import pandas as pd

    from mlops_assets.monitoring.digest import labelled_key
    from mlops_assets.monitoring.feedback import labelled_so_far
    from mlops_assets.monitoring.retrain import labelled_in_window

    now = datetime.now(UTC)
    for day in range(DAYS):
        when = now - timedelta(days=day)
        frame = pd.DataFrame(
            {
                "request_id": [f"r{day}"],
                "row": [0],
                "time": [pd.Timestamp(when)],
                "environment": ["prod"],
                "model_version": ["1"],
                "prediction": [3],
                "label": [3],
            }
        )
        storage.write_parquet(labelled_key(LAYOUT, when, f"b{day:02d}"), frame)
    listed.clear()
    assert sorted(labelled_so_far(storage, LAYOUT, days=7)["request_id"]) == sorted(
        f"r{day}" for day in range(8)
    )
    start = now - timedelta(hours=30)
    window = labelled_in_window(storage, LAYOUT, start, now)
    assert sorted(window["request_id"]) == ["r0", "r1"]
    window_days = (now.date() - start.date()).days + 1  # 2, or 3 just after midnight
    result = digest_new(storage, LAYOUT, no_edges, now, deployed=GIT)
    assert result.labelled_files == 3  # the last LABELLED_LAG_DAYS' folders and today's
    labelled = [key for key in listed if key.startswith(LAYOUT.monitor("labelled") + "/")]
    oldest = min(key.split("/")[3] for key in labelled)
    assert oldest >= f"{now - timedelta(days=7):%Y-%m-%d}"
    assert len(labelled) == 8 + window_days + 3
