"""The monitor and the feedback join read their window, not the history.

Every key the storage's listings return is recorded: with twenty days of hour summaries
and inference logs in two environments, nothing older than the window is listed, on the
local default and on S3, and the figures are those of the window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlops_assets.components.tree import load_use_case
from mlops_assets.monitoring.digest import hour_of
from mlops_assets.monitoring.feedback import logged_requests
from mlops_assets.monitoring.monitor import run_monitor
from mlops_assets.storage import Layout, ObjectStorage

LAYOUT = Layout("digits")
DAYS = 20


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
        storage, LAYOUT, use_case.dataset, use_case.monitor, "prod", use_case.gate.metric, now
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


def test_the_feedback_join_lists_the_logs_of_its_window_only(storage, listed):
    import pandas as pd

    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    for env in ("dev", "prod"):
        for day in range(DAYS):
            when = today - timedelta(days=day)
            frame = pd.DataFrame(
                {
                    "request_id": [f"{env}-{day}"],
                    "row": [0],
                    "time": [pd.Timestamp(when)],
                    "environment": [env],
                    "model_version": ["1"],
                    "prediction": [3],
                }
            )
            key = f"{LAYOUT.inference(env)}/{when:%Y-%m-%d}/{when:%H}/server-{day:06d}.parquet"
            storage.write_parquet(key, frame)
    storage.write_bytes(f"{LAYOUT.inference('bad name')}/2026-12-05/12/x.parquet", b"")
    listed.clear()

    log = logged_requests(storage, LAYOUT, days=7)

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
