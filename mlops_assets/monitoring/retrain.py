"""What the retraining trigger does, by kind: a tabular use case gets its labelled
production requests as an ordinary landing file (the landing sensor and the DataOps half
take it in like any batch, so the next dataset version holds them); a kind whose data
comes from a remote source gets a DataOps run on the source's newest release."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import dagster as dg

from mlops_assets.core.spec import UseCaseSpec
from mlops_assets.monitoring.digest import labelled_since
from mlops_assets.storage import Layout, ObjectStorage, safe_key

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Started:
    message: str
    run_requests: list[dg.RunRequest] = field(default_factory=list)


def labelled_in_window(
    storage: ObjectStorage, layout: Layout, since: datetime, until: datetime
) -> pd.DataFrame:
    """The labelled production requests made between `since` and `until`."""
    import pandas as pd

    frames = []
    for info in labelled_since(storage, layout, since):  # the window's batches only
        frame = storage.read_parquet(info.key)
        frames.append(frame[(frame["time"] >= since) & (frame["time"] <= until)])
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).drop_duplicates(["request_id", "row"])


def start_retraining(
    storage: ObjectStorage, uc: UseCaseSpec, now: datetime, event_id: int
) -> Started:
    since = now - timedelta(hours=uc.monitor.window_hours)
    labelled = labelled_in_window(storage, Layout(uc.name), since, now)
    batch = uc.production_batch(labelled) if uc.production_batch else None
    if batch is None:  # the kind retrains on its source's newest data
        return Started(
            "DataOps on the source's newest release.",
            [
                dg.RunRequest(
                    run_key=f"{uc.name}-monitor-{event_id}",
                    tags={"mlops/trigger": "monitor"},
                )
            ],
        )
    landing, data, rows = batch
    if not rows:
        return Started(
            "No labelled production request with logged inputs in the window: nothing new to "
            "train on (label some with `mlops-assets feedback`)."
        )
    key = safe_key(landing, f"feedback-{since:%Y%m%dT%H%M}-{now:%Y%m%dT%H%M}.parquet")
    storage.write_bytes(key, data, if_absent=True)
    return Started(
        f"{rows} labelled production row(s) landed as {key}; the landing sensor starts "
        "DataOps, and the new dataset version starts MLOps."
    )
