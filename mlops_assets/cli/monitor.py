"""`feedback` (ground truth for logged requests) and `traffic` (a running server asked
held-out rows, optionally drifted, with feedback for a share of them): the production
side of the loop, from the command line."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import click

from mlops_assets.cli.base import (
    CommandError,
    load_use_case,
    main,
    storage_of_settings,
    use_case_option,
)


def _feedback_key(use_case: str, stem: str, suffix: str = ".csv") -> str:
    from mlops_assets.storage import Layout, safe_key

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return safe_key(
        Layout(use_case).feedback_landing, f"{stem}-{stamp}-{os.urandom(3).hex()}{suffix}"
    )


def write_feedback(storage, use_case: str, rows: list[dict], stem: str) -> str:
    """`rows` (request_id, label, row, labelled_by) as a CSV under feedback/<use case>/."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["labelled_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    key = _feedback_key(use_case, stem)
    storage.write_bytes(key, frame.to_csv(index=False).encode(), if_absent=True)
    return key


@main.command()
@use_case_option
@click.option(
    "--label",
    "labels",
    nargs=2,
    multiple=True,
    metavar="REQUEST_ID LABEL",
    help="The true label of a logged request (repeatable). REQUEST_ID is the server's id of "
    "the request: its response's X-Request-Id header (also parameters.request_id), not the "
    "caller's own `id`.",
)
@click.option("--row", default=0, show_default=True, help="The row of a multi-row request.")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CSV or Parquet file of request_id (the server's X-Request-Id), label[, row, "
    "environment, labelled_by, labelled_at].",
)
@click.option("--by", envvar="USER", default="", help="Who labelled them (default: $USER).")
def feedback(use_case: str, labels, row: int, path: Path | None, by: str) -> None:
    """Land feedback labels for logged requests under feedback/<use case>/; the
    <use case>/feedback asset ingests them."""
    from mlops_assets.monitoring.feedback import FeedbackRejected, parse_feedback

    load_use_case(use_case)
    storage = storage_of_settings()
    if not labels and path is None:
        raise click.UsageError("give --label REQUEST_ID LABEL (repeatable) or --file")
    if path is not None:
        data = path.read_bytes()
        try:
            parse_feedback(data, path.name)  # refuse here what the asset would quarantine whole
        except FeedbackRejected as error:
            raise CommandError(str(error)) from None
        key = _feedback_key(use_case, path.stem, path.suffix.lower())
        storage.write_bytes(key, data, if_absent=True)
        click.echo(f"landed {path} as {storage.uri(key)}")
    if labels:
        rows = [
            {"request_id": rid, "label": label, "row": row, "labelled_by": by}
            for rid, label in labels
        ]
        key = write_feedback(storage, use_case, rows, "cli")
        click.echo(f"{len(rows)} label(s) landed as {storage.uri(key)}")


def drifted(rows, features: int, low: float, high: float):
    """Rows shifted the way production drifts: square images (8x8 digits) move two pixels
    to the right; other rows move up by a quarter of their range."""
    import numpy as np

    side = int(round(features**0.5))
    if side * side == features:
        images = rows.reshape(len(rows), side, side)
        moved = np.zeros_like(images)
        moved[:, :, 2:] = images[:, :, :-2]
        return moved.reshape(len(rows), features)
    return np.clip(rows + (high - low) / 4, low, high)


def _post(url: str, body: bytes, timeout: float) -> tuple[str, int]:
    request = urllib.request.Request(
        url, data=body, headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.loads(response.read())
        # the server's id (what feedback joins on), never the caller's own `id`
        return response.headers["x-request-id"], int(answer["outputs"][0]["data"][0])


@main.command()
@use_case_option
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="The server.")
@click.option("--requests", "count", default=400, show_default=True, help="Requests to send.")
@click.option("--drift", is_flag=True, help="Shift the inputs as a drifting production would.")
@click.option(
    "--feedback-share",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="The share of requests whose true label is written as feedback.",
)
@click.option("--concurrency", default=4, show_default=True)
@click.option("--seed", default=0, show_default=True)
def traffic(
    use_case: str,
    url: str,
    count: int,
    drift: bool,
    feedback_share: float,
    concurrency: int,
    seed: int,
) -> None:
    """Ask a running model server held-out rows (the serving champion's test split, one
    row per request) and land feedback for a share of them: what the monitor watches."""
    import numpy as np

    from mlops_assets.registry import ModelRegistry
    from mlops_assets.storage import Layout

    uc = load_use_case(use_case)
    if not hasattr(uc, "landing"):
        raise CommandError(f"traffic sends tabular rows; {use_case} is {uc.dataset.kind}")
    storage = storage_of_settings()
    champion = ModelRegistry(storage, use_case).champion()
    if champion is None:
        raise CommandError(f"{use_case} has no champion yet: run the pipeline first")
    metadata = ModelRegistry(storage, use_case).metadata(int(champion["version"]))
    split = uc.dataset.load_split(storage, Layout(use_case), metadata["dataset_version"], "test")
    x, y = split.arrays()
    rng = np.random.default_rng(seed)
    # distinct rows while there are enough: a repeated row would be one row once landed
    pick = rng.choice(len(y), size=count, replace=count > len(y))
    features = uc.dataset.features
    rows = np.round(x[pick].astype("float64") * uc.dataset.scale, 6)
    if drift:
        rows = drifted(rows, rows.shape[1], features.min, features.max)
    endpoint = f"{url.rstrip('/')}/v2/models/{use_case}/infer"
    bodies = [
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "rows",
                        "datatype": "FP32",
                        "shape": [1, rows.shape[1]],
                        "data": [r.tolist()],
                    }
                ]
            }
        ).encode()
        for r in rows
    ]
    try:
        with ThreadPoolExecutor(concurrency) as pool:
            answers = list(pool.map(lambda b: _post(endpoint, b, 30), bodies))
    except (urllib.error.URLError, OSError) as error:
        raise CommandError(f"{endpoint}: {error}") from None
    truth = y[pick]
    predicted = np.array([p for _, p in answers])
    labelled = rng.random(count) < feedback_share
    click.echo(
        f"sent {count} request(s){' (drifted)' if drift else ''} to {endpoint}: "
        f"{(predicted == truth).mean():.1%} answered right"
    )
    if labelled.any():
        key = write_feedback(
            storage,
            use_case,
            [
                {"request_id": rid, "label": int(label), "row": 0, "labelled_by": "traffic"}
                for (rid, _), label, keep in zip(answers, truth, labelled, strict=True)
                if keep
            ],
            "traffic",
        )
        click.echo(f"{int(labelled.sum())} label(s) landed as {storage.uri(key)}")
