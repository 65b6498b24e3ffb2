"""Hour summaries: the inference log and the labelled requests, each file read once.

A summary (`monitor/<use case>/hours/<environment>/<YYYY-MM-DDTHH>.json`) holds, per model
version, counts and fixed-bin histograms, so the monitor's report over any window is a
sum of small JSON files: its cost grows with the log files that are new since the last
run, never with the history. Each summary lists the files it holds and is updated by
compare-and-swap, so a file counted once is never counted again, even by two runs at once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_assets.monitoring.provenance import (
    DEFAULT_MAX_FILE_MB,
    DeployedVersions,
    RefusedFile,
    folder_of,
    provenance_problem,
    read_bounded,
)
from mlops_assets.storage import Layout, ObjectStorage

if TYPE_CHECKING:
    import pandas as pd

SUMMARY = ("input_mean", "input_std", "input_min", "input_max")


def input_mode(columns) -> str:
    if "inputs" in columns:
        return "full"
    if "inputs_json" in columns:
        return "table"  # a table's rows as sent: text, numbers and nulls, column by column
    if SUMMARY[0] in columns:
        return "summary"
    return "none"


def input_matrix(frame: pd.DataFrame, mode: str) -> np.ndarray | None:
    """The logged inputs as one row per record: every value, or the row statistics; a
    table's rows as an object array (a row that does not parse, or has another width than
    the first, is left out: it cannot be counted against the reference)."""
    if mode == "full":
        return np.stack(frame["inputs"].to_numpy()).astype("float64")
    if mode == "summary":
        return frame[list(SUMMARY)].to_numpy(dtype="float64")
    if mode == "table":
        rows = []
        for text in frame["inputs_json"].to_numpy():
            try:
                row = json.loads(text)
            except (TypeError, ValueError):
                continue
            if isinstance(row, list) and (not rows or len(row) == len(rows[0])):
                rows.append(row)
        matrix = np.empty((len(rows), len(rows[0]) if rows else 0), dtype=object)
        for i, row in enumerate(rows):
            matrix[i, :] = row
        return matrix
    return None


def histograms(values: np.ndarray, edges: list[Any]) -> list[list[int]]:
    """Counts per feature over bins split at `edges` (a value equal to an edge goes to the
    bin above it); NaN and null are not counted. A category column's edges are
    `{"categories": [...]}`: a count per known category, then one for every other value
    (the unseen categories)."""
    out = []
    for j, cut in enumerate(edges):
        column = values[:, j]
        if isinstance(cut, dict):
            known = {str(c): i for i, c in enumerate(cut["categories"])}
            counts = [0] * (len(known) + 1)
            for value in column:
                if value is not None:
                    counts[known.get(str(value), len(known))] += 1
            out.append(counts)
            continue
        if column.dtype == object:
            column = np.array(
                [
                    v if isinstance(v, int | float) and not isinstance(v, bool) else np.nan
                    for v in column
                ],
                dtype="float64",
            )
        column = column[~np.isnan(column)]
        bins = np.searchsorted(np.asarray(cut), column, side="right")
        out.append(np.bincount(bins, minlength=len(cut) + 1).astype(int).tolist())
    return out


def hour_of(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H")


@dataclass
class DigestResult:
    log_files: int = 0
    labelled_files: int = 0
    rows: int = 0
    log_files_listed: int = 0
    """Log keys the listings returned: the last hours', whatever the history."""
    refused: list[tuple[str, str]] = field(default_factory=list)
    """(key, reason) of files that could not be folded or were not believed; each is
    quarantined with its reason and skipped until it changes."""
    ahead: int = 0
    """Log files in an hour folder later than now: left for when that hour comes."""


class UnusableLogFile(ValueError):
    """A log file whose content cannot be summarised (the reason names the column)."""


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def checked_log(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Environment and model version become storage keys and registry lookups: only plain
    names and version numbers are taken, whatever a file in the bucket says."""
    for column in ("environment", "model_version", "time", "prediction"):
        if column not in frame.columns:
            raise UnusableLogFile(f"{source}: no column {column!r}")
    bad_env = sorted({str(v) for v in frame["environment"] if not _NAME.fullmatch(str(v))})
    if bad_env:
        raise UnusableLogFile(f"{source}: environment {bad_env[0]!r} is not a plain name")
    bad_version = sorted({str(v) for v in frame["model_version"] if not str(v).isdigit()})
    if bad_version:
        raise UnusableLogFile(f"{source}: model_version {bad_version[0]!r} is not a number")
    return frame


def environment_folders(storage: ObjectStorage, prefix: str) -> list[str]:
    """The environments under `prefix` (`inference/<uc>`, `monitor/<uc>/hours`) whose
    folder is a plain name: a reader walks them one at a time, from the window's start,
    instead of listing the whole history; any other folder is left alone."""
    return [name for name in storage.folders(prefix) if _NAME.fullmatch(name)]


COUNTS = ("rows", "errors", "requests", "labelled", "correct", "sq_error", "abs_error")
"""Summed over files and hours (the errors: of labelled regression answers)."""


def merge_version(into: dict[str, Any] | None, stats: dict[str, Any]) -> dict[str, Any]:
    """Two summaries of one version's requests as one: counts add, and histograms add when
    both were logged in the same input mode (else the first one's is kept)."""
    into = into or {}
    merged: dict[str, Any] = {name: into.get(name, 0) + stats.get(name, 0) for name in COUNTS}
    predictions = dict(into.get("predictions", {}))
    for cls, n in stats.get("predictions", {}).items():
        predictions[cls] = predictions.get(cls, 0) + n
    merged["predictions"] = predictions
    merged["last"] = max(into.get("last", ""), stats.get("last", ""))
    hist, mode = into.get("hist"), into.get("mode")
    if stats.get("hist") is not None:
        if hist is None:
            hist, mode = stats["hist"], stats["mode"]
        elif mode == stats["mode"]:
            hist = [
                [a + b for a, b in zip(x, y, strict=True)]
                for x, y in zip(hist, stats["hist"], strict=True)
            ]
    merged["hist"], merged["mode"] = hist, mode
    return merged


def _add(summary: dict, source: str, contributions: dict[str, dict]) -> dict:
    """`summary` with one file's contribution per version, unless it already holds it."""
    if source in summary.get("files", []):
        return summary
    versions = dict(summary.get("versions", {}))
    for version, part in contributions.items():
        versions[version] = merge_version(versions.get(version), part)
    return {"files": [*summary.get("files", []), source], "versions": versions}


LAG_HOURS = 2
"""How many hours before the newest hour folder already digested a new log file may still
appear. Servers key their files by the hour of the write, so only a server whose clock is
more than this behind the others' is missed."""

_HOUR_KEY = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}")


def _folder_hour(key: str) -> str | None:
    """`inference/<uc>/<env>/<date>/<HH>/<file>.parquet`: "<date>T<HH>"; None otherwise."""
    where = folder_of(key)
    return where[1] if where and _HOUR_KEY.fullmatch(where[1]) else None


def _hour_folder(logs: str, when: datetime) -> str:
    """The key of `when`'s hour folder under an environment's log, as servers write it."""
    return f"{logs}/{when:%Y-%m-%d}/{when:%H}"


def _mapping(stored: Any) -> dict:
    """A stored index or cursor as a mapping; anything else written there counts as none."""
    return stored if isinstance(stored, dict) else {}


def _hour_or_none(value: Any) -> str | None:
    """A stored cursor's hour when it is one ("YYYY-MM-DDTHH", a real date and hour)."""
    if not isinstance(value, str) or not _HOUR_KEY.fullmatch(value):
        return None
    try:
        datetime.strptime(value, "%Y-%m-%dT%H")
    except ValueError:
        return None
    return value


def _listing_start(logs: str, cursor: Any) -> str:
    """The key to list `logs` after: LAG_HOURS before the cursor's hour folder, or "" (the
    whole environment: its first run, or a cursor that is not an hour)."""
    hour = _hour_or_none(cursor)
    if hour is None:
        return ""
    back = datetime.strptime(hour, "%Y-%m-%dT%H") - timedelta(hours=LAG_HOURS)
    return _hour_folder(logs, back)


def logs_from(storage: ObjectStorage, layout: Layout, folder: str) -> list[Any]:
    """Every environment's log keys in `folder` ("YYYY-MM-DD" or "YYYY-MM-DD/HH") and the
    folders after it: each listed from there, so the window, not the history, sets the
    cost."""
    logs = layout.inference()
    return [
        info
        for env in environment_folders(storage, logs)
        for info in storage.list_after(f"{logs}/{env}", f"{logs}/{env}/{folder}")
    ]


def recent_log_files(
    storage: ObjectStorage, layout: Layout, hours: int, now: datetime | None = None
) -> list[Any]:
    """The log files written in the last `hours` hours, every environment."""
    since = (now or datetime.now(UTC)) - timedelta(hours=hours - 1)
    folder = f"{since:%Y-%m-%d}/{since:%H}"
    return [i for i in logs_from(storage, layout, folder) if _folder_hour(i.key) is not None]


def hour_summaries(
    storage: ObjectStorage, layout: Layout, environment: str, first: str, last: str
) -> list[tuple[str, str]]:
    """(hour, key) of an environment's hour summaries from hour `first` to hour `last`
    (now's, for every reader: a summary dated later was made of records no server could
    have written yet), in order."""
    folder = layout.monitor("hours", environment)
    found = []
    for info in storage.list_after(folder, f"{folder}/{first}"):
        hour = info.key.rsplit("/", 1)[-1].removesuffix(".json")
        if first <= hour <= last:
            found.append((hour, info.key))
    return found


MAX_ATTEMPTS = 2
"""A log file whose reading ended this many monitor runs before they marked it (a pod killed
for memory or time) is quarantined instead of read a third time."""


def quarantine_log(
    storage: ObjectStorage, layout: Layout, key: str, version: str, reason: str
) -> str:
    """Write why the log file at `key` (an hour folder's, as the digest lists them) was
    refused (the file stays where it is, unread again until it changes); returns the
    quarantine folder."""
    env, hour = folder_of(key) or ("", "")
    name = f"inference-{env}-{hour}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    storage.write_json(
        layout.quarantine(name, "reason.json"),
        {
            "source": key,
            "version": version,
            "reason": reason,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    return layout.quarantine(name)


def believed_log(
    storage: ObjectStorage,
    info: Any,
    deployed: DeployedVersions,
    budget_bytes: int,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """The log file at `info`, read within `budget_bytes`, when its rows agree with its key
    and git (provenance.py); RefusedFile or UnusableLogFile with the reason otherwise."""
    frame = checked_log(read_bounded(storage, info, budget_bytes, columns), info.key)
    problem = provenance_problem(frame, info.key, deployed)
    if problem:
        raise RefusedFile(f"{info.key}: {problem}")
    return frame


def digest_new(
    storage: ObjectStorage,
    layout: Layout,
    edges_of: Callable[[str, str], list[list[float]] | None],
    now: datetime | None = None,
    *,
    deployed: DeployedVersions,
    budget_bytes: int = int(DEFAULT_MAX_FILE_MB * 1024 * 1024),
) -> DigestResult:
    """Fold every log file and labelled file not folded before into its hour summaries.
    `edges_of(version, mode)` gives the bin edges of a model version's reference; a log
    file is folded only when `deployed` and its key vouch for it (provenance.py), and each
    file is read within `budget_bytes`.

    Log files are found per environment by listing from LAG_HOURS before its cursor (the
    newest hour folder digested, never later than `now`'s hour), and told apart from the
    ones already folded by a small index per hour folder: a run costs the last hours of
    the log, not its history. Labelled files (one per feedback file) keep one index."""
    result = DigestResult()
    now = now or datetime.now(UTC)
    index_key = layout.monitor("digested.json")
    index: dict[str, str] = _mapping(storage.read_json(index_key, default={}))
    logs = layout.inference()
    legacy = {k: v for k, v in index.items() if k.startswith(logs + "/")}
    for env in environment_folders(storage, logs):
        reader = _Reader(storage, layout, deployed, budget_bytes, result)
        _digest_environment(reader, env, edges_of, hour_of(now), legacy)
    if legacy:  # an older root's index of every log file: its entries now live per folder
        storage.update_json(
            index_key,
            lambda stored: {
                k: v for k, v in _mapping(stored).items() if not k.startswith(logs + "/")
            },
            {},
        )
    done: dict[str, str] = {}
    since = now - timedelta(days=LABELLED_LAG_DAYS)
    for info in labelled_since(storage, layout, since):  # the last days', not the history
        if index.get(info.key) == info.version:
            continue
        done[info.key] = info.version
        try:
            columns = ["time", "environment", "model_version", "prediction", "label"]
            frame = checked_log(read_bounded(storage, info, budget_bytes, columns), info.key)
            _fold_labels(storage, layout, info.key, frame)
        except Exception as error:
            result.refused.append((info.key, f"{type(error).__name__}: {error}"))
            continue
        result.labelled_files += 1
    if done:
        first = labelled_key(layout, since, "")
        storage.update_json(  # entries of folders the listing no longer reaches go
            index_key,
            lambda stored: {
                **{k: v for k, v in _mapping(stored).items() if k >= first},
                **done,
            },
            {},
        )
    return result


LABELLED_LAG_DAYS = 2
"""Labelled batches are written into the folder of their write's day: the digest lists the
last days' folders only."""


def labelled_key(layout: Layout, when: datetime, batch: str) -> str:
    """`monitor/<uc>/labelled/<YYYY-MM-DD>/<batch>.parquet`: the day feedback wrote it."""
    folder = layout.monitor("labelled", f"{when:%Y-%m-%d}")
    return f"{folder}/{batch}.parquet" if batch else folder


def labelled_since(storage: ObjectStorage, layout: Layout, since: datetime) -> list[Any]:
    """The labelled batches written on `since`'s day or later (each holds requests logged
    before its write, so a window starting at `since` finds all of its labels here)."""
    prefix = layout.monitor("labelled")
    return [
        info
        for info in storage.list_after(prefix, labelled_key(layout, since, ""))
        if info.key.endswith(".parquet") and info.key.count("/") == prefix.count("/") + 2
    ]


@dataclass
class _Reader:
    storage: ObjectStorage
    layout: Layout
    deployed: DeployedVersions
    budget_bytes: int
    result: DigestResult


def _digest_environment(
    reader: _Reader,
    env: str,
    edges_of: Callable[[str, str], list[list[float]] | None],
    now_hour: str,
    legacy: dict[str, str],
) -> None:
    storage, layout, result = reader.storage, reader.layout, reader.result
    logs = f"{layout.inference()}/{env}"
    cursor_key = layout.monitor("_cursors", f"{env}.json")
    cursor = _mapping(storage.read_json(cursor_key, default={})).get("hour")
    folders: dict[str, list] = {}
    for info in storage.list_after(logs, _listing_start(logs, cursor)):
        result.log_files_listed += 1
        hour = _folder_hour(info.key)
        if hour is None:
            continue
        if hour > now_hour:  # a clock ahead, or a forged date: read when that hour comes
            result.ahead += 1
            continue
        folders.setdefault(hour, []).append(info)
    newest = _hour_or_none(cursor) or ""
    for hour, infos in sorted(folders.items()):
        # per file: its version once folded or refused, {"reading": version, "runs": n}
        # while runs are at it (written before reading: a run killed on it is counted)
        folder_key = layout.monitor("_digested", env, f"{hour}.json")
        seen = _mapping(storage.read_json(folder_key, default={}))
        for info in infos:
            if seen.get(info.key) == info.version:
                continue
            if legacy.get(info.key) != info.version:  # else folded under the older index
                _digest_file(reader, info, seen.get(info.key), folder_key, edges_of)
            # folded, or refused: either way not read again
            storage.update_json(
                folder_key, lambda stored, i=info: {**_mapping(stored), i.key: i.version}, {}
            )
        newest = max(newest, hour)
    if newest and newest != cursor:
        storage.update_json(
            cursor_key,
            lambda stored: {"hour": max(_hour_or_none(_mapping(stored).get("hour")) or "", newest)},
            {},
        )


def _digest_file(reader: _Reader, info: Any, marked: Any, folder_key: str, edges_of) -> None:
    """Fold one log file, or refuse it with its reason. The runs that started on it are
    counted in its folder's index before it is read, so a file that kills its reader (a pod
    out of memory) is quarantined after MAX_ATTEMPTS runs instead of killing every run."""
    storage, layout, result = reader.storage, reader.layout, reader.result
    runs = 0
    if isinstance(marked, dict) and marked.get("reading") == info.version:
        runs = marked.get("runs", 0) if isinstance(marked.get("runs"), int) else MAX_ATTEMPTS
    if runs >= MAX_ATTEMPTS:
        reason = (
            f"{info.key}: {runs} monitor runs started reading it and none finished (killed: "
            "memory or time); not read again"
        )
        quarantine_log(storage, layout, info.key, info.version, reason)
        result.refused.append((info.key, reason))
        return
    attempt = {"reading": info.version, "runs": runs + 1}
    storage.update_json(folder_key, lambda stored: {**_mapping(stored), info.key: attempt}, {})
    try:
        frame = believed_log(storage, info, reader.deployed, reader.budget_bytes)
        _fold_log(storage, layout, info.key, frame, edges_of)
    except Exception as error:  # one bad file blocks none behind it
        reason = (
            str(error) if isinstance(error, RefusedFile) else f"{type(error).__name__}: {error}"
        )
        quarantine_log(storage, layout, info.key, info.version, reason)
        result.refused.append((info.key, reason))
        return
    result.log_files += 1
    result.rows += len(frame)


def _groups(frame: pd.DataFrame):
    hours = frame["time"].dt.strftime("%Y-%m-%dT%H")
    return frame.assign(_hour=hours).groupby(["environment", "_hour", "model_version"])


def _fold_log(storage, layout, source: str, frame: pd.DataFrame, edges_of) -> None:
    mode = input_mode(frame.columns)
    per_hour: dict[tuple[str, str], dict[str, dict]] = {}
    for (environment, hour, version), group in _groups(frame):
        failed = group["error"].to_numpy(bool) if "error" in group else np.zeros(len(group), bool)
        answered = group[~failed]
        part: dict[str, Any] = {
            "rows": len(group),
            "errors": int(failed.sum()),
            "requests": int(group["request_id"].nunique()),
            # a class per answer; a regression's answers are numbers, not counted one by one
            "predictions": {}
            if answered["prediction"].dtype.kind == "f"
            else {str(k): int(v) for k, v in answered["prediction"].value_counts().items()},
            "last": group["time"].max().isoformat(),
        }
        edges = edges_of(str(version), mode) if mode != "none" else None
        if edges is not None and len(answered):
            part["hist"] = histograms(input_matrix(answered, mode), edges)
            part["mode"] = mode
        per_hour.setdefault((environment, hour), {})[str(version)] = part
    for (environment, hour), contributions in per_hour.items():
        storage.update_json(
            layout.monitor("hours", environment, f"{hour}.json"),
            lambda summary, c=contributions: _add(summary, source, c),
            {},
        )


def _fold_labels(storage, layout, source: str, frame: pd.DataFrame) -> None:
    per_hour: dict[tuple[str, str], dict[str, dict]] = {}
    for (environment, hour, version), group in _groups(frame):
        if group["label"].dtype.kind == "f":  # a regression target: the errors' sums
            error = group["prediction"].astype("float64") - group["label"]
            part = {
                "labelled": len(group),
                "sq_error": float((error**2).sum()),
                "abs_error": float(error.abs().sum()),
            }
        else:
            part = {
                "labelled": len(group),
                "correct": int((group["prediction"] == group["label"]).sum()),
            }
        per_hour.setdefault((environment, hour), {})[str(version)] = part
    for (environment, hour), contributions in per_hour.items():
        storage.update_json(
            layout.monitor("hours", environment, f"{hour}.json"),
            lambda summary, c=contributions: _add(summary, source, c),
            {},
        )
