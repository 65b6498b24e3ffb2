"""The landing sensor: one DataOps run per set of new landing files."""

from __future__ import annotations

import time
from typing import Any

import dagster as dg

from mlops_assets.core.steps import step_key
from mlops_assets.datasets.tabular.config import LandingConfig
from mlops_assets.datasets.tabular.landing import LandingTick, new_landing_files, not_ingested
from mlops_assets.datasets.tabular.notifications import (
    FILES_PER_RUN,
    VISIBILITY_SECONDS,
    QueueCursor,
    current,
    delete,
    receive,
    sqs_client,
    take,
)
from mlops_assets.storage import Layout, ObjectInfo, ObjectStorage


def build_landing_sensor(
    use_case: str,
    landing: str,
    job: Any,
    interval_seconds: int,
    running: bool,
    config: LandingConfig | None = None,
) -> dg.SensorDefinition:
    discovery = config.discovery if config else "listing"
    layout = Layout(use_case)

    @dg.sensor(
        name=f"{use_case}_landing_sensor",
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=(
            dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
        ),
        description=f"Starts {job.name} when files land in {landing}/ (local folder or S3; "
        f"discovery: {discovery}).",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, storage: ObjectStorage):
        if discovery == "notifications":
            assert config is not None
            return _queue_tick(context, storage, layout, landing, config)
        tick = new_landing_files(storage, layout, landing, context.cursor, discovery)
        if not tick.files:
            return dg.SensorResult(
                skip_reason=f"no new files in {storage.uri(landing)}", cursor=tick.cursor
            )
        return dg.SensorResult(
            run_requests=[_request(context, landing, tick.files, tick.run_key)],
            cursor=tick.cursor,
        )

    return landing_sensor


def _request(
    context: dg.SensorEvaluationContext,
    landing: str,
    files: list[ObjectInfo],
    run_key: str,
    acquire_op: str | None = None,
) -> dg.RunRequest:
    names = sorted(f.key for f in files)
    context.log.info(
        f"{len(names)} new file(s) in {landing}/: {', '.join(names[:10])}"
        + (" ..." if len(names) > 10 else "")
    )
    return dg.RunRequest(
        run_key=run_key,
        # notifications: acquire looks at exactly these files, never at the whole zone
        run_config={"ops": {acquire_op: {"config": {"files": names}}}} if acquire_op else {},
        tags={
            # labelled production requests the monitor's trigger landed
            "mlops/trigger": "monitor"
            if all(n.rsplit("/", 1)[-1].startswith("feedback-") for n in names)
            else "landing",
            "mlops/new_files": str(len(names)),
        },
    )


def _queue_tick(
    context: dg.SensorEvaluationContext,
    storage: ObjectStorage,
    layout: Layout,
    landing: str,
    config: LandingConfig,
) -> dg.SensorResult:
    """Acknowledge what earlier ticks' runs now hold, take new messages, request runs."""
    from mlops_assets.storage.s3 import S3Storage

    if not isinstance(storage, S3Storage):
        raise dg.DagsterInvariantViolationError(
            f"{layout.use_case}: dataset.landing.discovery is notifications, which needs the "
            f"landing zone on S3; the storage is {storage.uri('')}"
        )
    if not config.queue_url:
        raise dg.DagsterInvariantViolationError(
            f"{layout.use_case}: dataset.landing.discovery is notifications but "
            "dataset.landing.queue_url is empty (mlops-assets landing setup-notifications "
            "creates the queue and prints it)"
        )
    queue = config.queue_url
    client = sqs_client(queue, storage.s3.region_name)
    state = QueueCursor.load(context.cursor)

    waiting = []
    for entry in state.pending:
        if all(_run_exists(context.instance, key) for key in entry["run_keys"]):
            for reason in delete(client, queue, entry["handles"]):
                context.log.warning(f"a message of {queue} was not deleted: {reason}")
        elif time.time() - entry["at"] < VISIBILITY_SECONDS:
            waiting.append(entry)  # its runs may not be launched yet
        # else: the handles expired and the messages came back; they are handled anew
    state.pending = waiting

    taken = take(receive(client, queue), storage.bucket, storage.prefix, landing)
    for ident, reason in taken.skipped:
        context.log.warning(f"skipped a message of {queue} ({ident}): {reason}")
    infos, gone = current(storage, sorted(taken.keys))
    for key in gone:
        context.log.warning(f"skipped {key}: named by a message of {queue}, no longer exists")
    found = {info.key: info for info in infos}
    if state.reconcile_due(config.reconcile_hours):
        listed = state.reconcile(storage, landing)
        found = {**{info.key: info for info in listed}, **found}
        context.log.info(
            f"reconciliation: {len(listed)} recently changed file(s) listed"
            + (" (pass continues)" if state.pass_after is not None else " (pass complete)")
        )
    new = sorted(not_ingested(storage, layout, landing, list(found.values())), key=lambda f: f.key)
    wanted = {f.key for f in new}
    held = {h for key, handles in taken.keys.items() if key in wanted for h in handles}
    done = (set(taken.done) | {h for hs in taken.keys.values() for h in hs}) - held
    for reason in delete(client, queue, sorted(done)):
        context.log.warning(f"a message of {queue} was not deleted: {reason}")

    acquire_op = step_key(layout.use_case, "acquire").to_python_identifier()
    requests = []
    for start in range(0, len(new), FILES_PER_RUN):
        chunk = new[start : start + FILES_PER_RUN]
        key = LandingTick(files=chunk, cursor="").run_key
        requests.append(_request(context, landing, chunk, key, acquire_op))
    if requests:
        state.pending.append(
            {"run_keys": [r.run_key for r in requests], "handles": sorted(held), "at": time.time()}
        )
        return dg.SensorResult(run_requests=requests, cursor=state.dump())
    return dg.SensorResult(skip_reason=f"no new files named by {queue}", cursor=state.dump())


def _run_exists(instance: dg.DagsterInstance, run_key: str) -> bool:
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1
    )
    return bool(records)
