"""feedback: ground-truth labels for logged requests, ingested like landing files.

Files (CSV or Parquet with `request_id`, `label`, optional `row`, `environment`,
`labelled_by`, `labelled_at`) land under `feedback/<use case>/`. `request_id` is the
server's id of the request (the response's `X-Request-Id` header and its
`parameters.request_id`), never the caller's own `id`: only the server's is unique. Each
new file version is read once; the rows that name a logged request (in `environment`, when
given) and one of the answering model's classes are joined to the inference log and written
to `monitor/<use case>/labelled/<batch>.parquet`; every other row goes to
`quarantine/<use case>/feedback-<batch>/rows.csv` with its reason (an id the log holds more
than once is ambiguous: quarantined, never resolved by taking one), and a file that cannot
be read at all is quarantined whole. Nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from mlops_assets.core.classes import class_order
from mlops_assets.errors import MlopsError
from mlops_assets.monitoring.digest import believed_log, labelled_key, labelled_since, logs_from
from mlops_assets.monitoring.provenance import DEFAULT_MAX_FILE_MB, DeployedVersions
from mlops_assets.storage import Layout, ObjectStorage, UnsafeKeyError, relative_name

if TYPE_CHECKING:
    import pandas as pd

REQUIRED = ("request_id", "label")
OPTIONAL = ("row", "environment", "labelled_by", "labelled_at")
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
LOG_COLUMNS = ["request_id", "row", "time", "environment", "model_version", "prediction"]


class FeedbackRejected(MlopsError, ValueError):
    """A feedback file that cannot be ingested at all (the reason names the file)."""


@dataclass
class FeedbackResult:
    files: list[dict[str, Any]] = field(default_factory=list)
    """Per new file: name, batch, accepted, quarantined, already (labels seen before)."""
    refused: list[tuple[str, str]] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    """Quarantined rows per reason kind."""

    @property
    def accepted(self) -> int:
        return sum(f["accepted"] for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f["quarantined"] for f in self.files)


def parse_feedback(data: bytes, name: str) -> pd.DataFrame:
    """The file's rows with the feedback columns; raises FeedbackRejected naming the file."""
    import pandas as pd

    fmt = FORMATS.get(PurePosixPath(name).suffix.lower())
    if fmt is None:
        raise FeedbackRejected(f"{name}: unsupported file type (expected .csv or .parquet)")
    if not data.strip():
        raise FeedbackRejected(f"{name}: empty file")
    try:
        if fmt == "csv":
            frame = pd.read_csv(BytesIO(data), dtype=str, keep_default_na=False)
        else:
            frame = pd.read_parquet(BytesIO(data))
    except Exception as error:
        raise FeedbackRejected(f"{name}: cannot be parsed as {fmt}: {error}") from error
    missing = [c for c in REQUIRED if c not in frame.columns]
    extra = [str(c) for c in frame.columns if c not in REQUIRED + OPTIONAL]
    if missing or extra:
        parts = ([f"missing columns {', '.join(missing)}"] if missing else []) + (
            [f"unexpected columns {', '.join(extra[:5])}"] if extra else []
        )
        raise FeedbackRejected(
            f"{name}: wrong columns: {'; '.join(parts)} (expected request_id, label and "
            "optionally row, environment, labelled_by, labelled_at)"
        )
    if frame.empty:
        raise FeedbackRejected(f"{name}: no data rows")
    for column in OPTIONAL:
        if column not in frame.columns:
            frame[column] = "0" if column == "row" else ""
    return frame[list(REQUIRED + OPTIONAL)].astype(str).reset_index(drop=True)


def _integers(values: pd.Series) -> pd.Series:
    import pandas as pd

    number = pd.to_numeric(values.str.strip(), errors="coerce")
    return number.where(number == number.round())


def logged_requests(
    storage: ObjectStorage,
    layout: Layout,
    days: int,
    *,
    deployed: DeployedVersions,
    budget_bytes: int = int(DEFAULT_MAX_FILE_MB * 1024 * 1024),
) -> pd.DataFrame:
    """The inference log of the last `days` days (every environment), without inputs
    except where they were logged in full (for the retraining batch): only files the
    monitor believes (their key and git vouch for them), each read within `budget_bytes`.
    A (request_id, row) logged more than once is kept once, with `ambiguous` set."""
    import pandas as pd

    since = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%d")
    frames = []
    for info in logs_from(storage, layout, since):  # the window's dates, not the history
        parts = info.key.split("/")
        if not info.key.endswith(".parquet") or len(parts) != 6 or parts[3] < since:
            continue  # inference/<uc>/<env>/<date>/<hour>/<file>
        try:  # a file the monitor refuses is no evidence of a request here either
            frame = believed_log(storage, info, deployed, budget_bytes)
        except Exception:
            continue
        keep = [c for c in [*LOG_COLUMNS, "inputs", "inputs_json"] if c in frame.columns]
        frames.append(frame[keep])
    if not frames:
        return pd.DataFrame(columns=[*LOG_COLUMNS, "ambiguous"])
    frame = pd.concat(frames, ignore_index=True)
    twice = frame.duplicated(["request_id", "row"], keep=False)
    frame = frame.assign(ambiguous=twice.to_numpy())
    return frame.drop_duplicates(["request_id", "row"], keep="first")


def labelled_so_far(storage: ObjectStorage, layout: Layout, days: int) -> pd.DataFrame:
    """The labels of the batches written in the last `days` days: a request older than that
    is not in the log window, so no new label can be joined to it (or conflict with one)."""
    import pandas as pd

    since = datetime.now(UTC) - timedelta(days=days)
    frames = [
        storage.read_parquet(info.key, columns=["request_id", "row", "label"])
        for info in labelled_since(storage, layout, since)
    ]
    if not frames:
        return pd.DataFrame({"request_id": [], "row": [], "label": []})
    return pd.concat(frames, ignore_index=True)


def run_feedback(
    storage: ObjectStorage,
    layout: Layout,
    classes_of: Any,
    days: int = 7,
    run_id: str = "",
    *,
    deployed: DeployedVersions,
    budget_bytes: int = int(DEFAULT_MAX_FILE_MB * 1024 * 1024),
) -> FeedbackResult:
    """Ingest what is new under `feedback/<use case>/`. `classes_of(version)` gives the
    classes of a registered model version (the labels it can be told); `deployed` decides
    which log files are believed, as for the monitor."""
    result = FeedbackResult()
    landing = layout.feedback_landing
    index: dict[str, dict] = storage.read_json(layout.monitor("feedback_index.json"), default={})
    new = []
    for info in storage.list(landing):
        try:
            name = relative_name(info.key, landing)
        except UnsafeKeyError:
            continue
        if any(part.startswith((".", "_")) for part in PurePosixPath(name).parts):
            continue
        if index.get(name, {}).get("version") != info.version:
            new.append((name, info))
    if not new:
        return result
    log = logged_requests(storage, layout, days, deployed=deployed, budget_bytes=budget_bytes)
    seen = labelled_so_far(storage, layout, days)
    done: dict[str, dict] = {}
    for name, info in new:
        data = storage.read_bytes(info.key)
        batch = hashlib.sha256(data).hexdigest()[:16]
        entry = {"version": info.version, "batch": batch}
        try:
            frame = parse_feedback(data, name)
        except FeedbackRejected as error:
            result.refused.append((name, str(error)))
            _quarantine_file(storage, layout, batch, name, str(error))
            done[name] = {**entry, "refused": str(error)}
            continue
        outcome, labelled = _ingest(
            storage, layout, frame, name, batch, log, seen, classes_of, result, run_id, days
        )
        if labelled is not None:
            import pandas as pd

            seen = pd.concat([seen, labelled[["request_id", "row", "label"]]], ignore_index=True)
        result.files.append({"file": name, "batch": batch, **outcome})
        done[name] = {**entry, **outcome}
    storage.update_json(
        layout.monitor("feedback_index.json"), lambda stored: {**stored, **done}, {}
    )
    return result


def _ingest(
    storage, layout, frame, name, batch, log, seen, classes_of, result, run_id, days
) -> tuple[dict[str, int], Any]:
    import numpy as np

    reasons = np.full(len(frame), "", dtype=object)
    request_id = frame["request_id"].str.strip()
    text = frame["label"].str.strip()
    row = _integers(frame["row"])
    reasons[(request_id == "").to_numpy()] = "missing request_id"
    reasons[(text == "").to_numpy() & (reasons == "")] = "missing label"
    bad_row = row.isna().to_numpy() & (reasons == "")
    reasons[bad_row] = [f"row {v!r} is not an integer" for v in frame["row"][bad_row]]
    frame = frame.assign(request_id=request_id, label=text, row=row.fillna(-1))
    frame["row"] = frame["row"].astype("int64")
    joined = frame.merge(log, on=["request_id", "row"], how="left", suffixes=("", "_log"))
    unknown = joined["model_version"].isna().to_numpy() & (reasons == "")
    reasons[unknown] = [
        f"request {r!r} row {n} is not in the inference log of the last {days} days"
        for r, n in zip(joined["request_id"][unknown], joined["row"][unknown], strict=True)
    ]
    ambiguous = joined["ambiguous"].fillna(False).to_numpy(bool) & (reasons == "")
    reasons[ambiguous] = [
        f"request {r!r} row {n} is logged more than once: ambiguous, not joined"
        for r, n in zip(joined["request_id"][ambiguous], joined["row"][ambiguous], strict=True)
    ]
    wanted = joined["environment"].str.strip().to_numpy(str)
    served = joined["environment_log"].astype(str).to_numpy(str)
    elsewhere = (wanted != "") & (wanted != served) & (reasons == "")
    reasons[elsewhere] = [
        f"request {r!r} was served in {s}, not in {w}"
        for r, s, w in zip(
            joined["request_id"][elsewhere], served[elsewhere], wanted[elsewhere], strict=True
        )
    ]
    # each label in the type of the model version that answered (a class id, a class
    # name, a regression target), checked against what that version can be told
    values = np.full(len(joined), None, dtype=object)
    known: dict[str, Any] = {}  # each version's classes read once, not once per row
    for i in np.flatnonzero(reasons == ""):
        version = str(joined.at[i, "model_version"])
        if version not in known:
            known[version] = classes_of(version)
        values[i], why = parse_label(str(joined.at[i, "label"]), known[version], version)
        if why:
            reasons[i] = why
    joined["label"] = values
    # the same request told twice in this file, or told before, with another label
    key = joined["request_id"] + "#" + joined["row"].astype(str)
    before = dict(
        zip(
            seen["request_id"].astype(str) + "#" + seen["row"].astype("int64").astype(str),
            seen["label"],
            strict=True,
        )
    )
    firsts: dict[str, int] = {}
    already = np.zeros(len(joined), dtype=bool)
    for i in np.flatnonzero(reasons == ""):
        k, value = key.iat[i], joined.at[i, "label"]
        earlier = before.get(k, firsts.get(k))
        if earlier is None:
            firsts[k] = value
        elif earlier != value:
            reasons[i] = f"request {joined.at[i, 'request_id']!r} was labelled {earlier} before"
        else:
            already[i] = True  # the same label again: nothing new, nothing wrong
    ok = (reasons == "") & ~already
    bad = reasons != ""
    if bad.any():
        rejected = frame[bad].assign(reason=reasons[bad])
        storage.write_bytes(
            layout.quarantine(f"feedback-{batch}", "rows.csv"),
            rejected.to_csv(index=False).encode(),
        )
        storage.write_json(
            layout.quarantine(f"feedback-{batch}", "reason.json"),
            {"source": name, "rows": int(bad.sum()), "run_id": run_id},
        )
        for reason in reasons[bad]:
            kind = _kind(reason)
            result.reasons[kind] = result.reasons.get(kind, 0) + 1
    labelled = None
    if ok.any():
        labelled = joined[ok].reset_index(drop=True)
        # the environment that served it (the log's, which the feedback row agreed with)
        labelled["environment"] = labelled.pop("environment_log")
        labelled = labelled.drop(columns=["ambiguous"])
        labelled["label"] = _typed(labelled["label"])
        labelled["feedback_file"] = name
        storage.write_parquet(labelled_key(layout, datetime.now(UTC), batch), labelled)
    outcome = {
        "accepted": int(ok.sum()),
        "quarantined": int(bad.sum()),
        "already": int(already.sum()),
    }
    return outcome, labelled


def _kind(reason: str) -> str:
    if "not in the inference log" in reason:
        return "unknown request id"
    if "ambiguous" in reason:
        return "ambiguous request id"
    if "was served in" in reason:
        return "other environment"
    if "is not a class" in reason:
        return "label out of range"
    if "labelled" in reason and "before" in reason:
        return "conflicting label"
    return "malformed value"  # a missing request id or label, a label or row of no use


def parse_label(text: str, classes: list[Any] | None, version: str) -> tuple[Any, str]:
    """A feedback label in the type of the version's label, and why not ('' when it is
    one): a class id (an integer among its classes), a class name (one of them), or a
    regression target (a number; the version has no classes). An unknown version's
    classes are unknown: an integer stays one, other text stays text."""
    number = _number(text)
    if classes is None:
        return (int(number) if number is not None and number == int(number) else text), ""
    if not classes:
        if number is None:
            return None, f"label {text!r} is not a number"
        return number, ""
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        if number is None or number != int(number):
            return None, f"label {text!r} is not an integer"
        if int(number) not in classes:
            return (
                None,
                f"label {int(number)} is not a class of model v{version} ({_span(classes)})",
            )
        return int(number), ""
    names = {str(c) for c in classes}
    if text not in names:
        return None, f"label {text!r} is not a class of model v{version} ({_span(classes)})"
    return text, ""


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _typed(values: pd.Series) -> pd.Series:
    """The labelled batch's label column in one type: int64, float64 or text."""
    items = values.tolist()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        return values.astype("int64")
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
        return values.astype("float64")
    return values.astype(str)


def _span(classes: list[Any]) -> str:
    values = sorted(classes, key=lambda c: class_order(str(c)))
    if all(isinstance(v, int) for v in values) and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}..{values[-1]}"
    return ", ".join(map(str, values[:10])) + (" ..." if len(values) > 10 else "")


def _quarantine_file(storage, layout, batch: str, name: str, reason: str) -> None:
    storage.write_json(
        layout.quarantine(f"feedback-{batch}", "reason.json"),
        {"source": name, "reason": reason, "at": datetime.now(UTC).isoformat(timespec="seconds")},
    )
