"""The production side's sensors: retrain when the monitor says so, roll back when it decides.

They read the monitor's latest materialization; each starts a run at most once per
monitor run (the cursor is the monitor's storage id).
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from mlops_assets.core.spec import UseCaseSpec
from mlops_assets.storage import ObjectStorage

IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def latest_monitor(context: dg.SensorEvaluationContext, key: dg.AssetKey, after: int):
    """The monitor's latest materialization record when it is newer than `after` (a storage
    id the sensor's cursor keeps), else None; and its metadata."""
    records = context.instance.fetch_materializations(key, limit=1).records
    if not records or records[0].storage_id <= after:
        return None, {}
    return records[0], records[0].asset_materialization.metadata


def build_rollback_trigger(
    uc: UseCaseSpec, monitor_key: dg.AssetKey, job: Any, running: bool, interval: int
) -> dg.SensorDefinition:
    name = uc.name

    @dg.sensor(
        name=f"{name}_rollback_trigger",
        job=job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING
        if running and uc.monitor.rollback.enabled
        else dg.DefaultSensorStatus.STOPPED,
        description=f"When {name}/monitor decides that the version deployed last regressed: "
        f"{job.name}, which moves the champion back and commits the previous version.",
    )
    def rollback_trigger(context: dg.SensorEvaluationContext):
        record, metadata = latest_monitor(context, monitor_key, int(context.cursor or 0))
        if record is None:
            return dg.SkipReason(f"no new {monitor_key.to_user_string()} materialization")
        decided = metadata["rollback"].value if "rollback" in metadata else {}
        if not decided:
            return dg.SensorResult(skip_reason="no rollback decided", cursor=str(record.storage_id))
        deploy = f"{name}__deploy"
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    # one rollback per bad version, however often the monitor repeats it
                    run_key=f"{name}-rollback-v{decided['version']}",
                    run_config={
                        "ops": {
                            deploy: {
                                "config": {
                                    "rollback_from": decided["version"],
                                    "rollback_to": decided["to"],
                                    "reason": decided["reason"],
                                }
                            }
                        }
                    },
                    tags={"mlops/trigger": "rollback"},
                )
            ],
            cursor=str(record.storage_id),
        )

    return rollback_trigger


def build_retrain_trigger(
    uc: UseCaseSpec, monitor_key: dg.AssetKey, dataops_job: Any, running: bool, interval: int
) -> dg.SensorDefinition:
    name = uc.name
    config = uc.monitor

    @dg.sensor(
        name=f"{name}_retrain_trigger",
        job=dataops_job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING
        if running and config.retrain
        else dg.DefaultSensorStatus.STOPPED,
        description=f"When {name}/monitor's live_metric_holds or inputs_not_drifting fails "
        "with ERROR: retraining, at most once per cool-down and never beside a running one.",
    )
    def retrain_trigger(context: dg.SensorEvaluationContext, storage: ObjectStorage):
        state = json.loads(context.cursor) if context.cursor else {"event": 0, "at": None}
        event, metadata = latest_monitor(context, monitor_key, state["event"])
        if event is None:
            return dg.SkipReason(f"no new {monitor_key.to_user_string()} materialization")
        state["event"] = event.storage_id
        reason = metadata["retrain"].value if "retrain" in metadata else ""
        if "rollback" in metadata and metadata["rollback"].value:
            return dg.SensorResult(
                skip_reason="the monitor decided a rollback: it goes first, retraining after",
                cursor=json.dumps(state),
            )
        if not reason:
            return dg.SensorResult(
                skip_reason="the monitor's checks hold", cursor=json.dumps(state)
            )
        now = datetime.now(UTC)
        if state["at"]:
            until = datetime.fromisoformat(state["at"]) + timedelta(hours=config.cooldown_hours)
            if now < until:
                return dg.SensorResult(
                    skip_reason=f"cool-down: the last retraining started at {state['at']}; "
                    f"none before {until.isoformat(timespec='seconds')}",
                    cursor=json.dumps(state),
                )
        busy = context.instance.get_run_records(
            dg.RunsFilter(tags={"mlops/use_case": name}, statuses=IN_PROGRESS), limit=1
        )
        if busy:  # the decision waits: the cursor stays before it, the next tick decides
            return dg.SensorResult(
                skip_reason=f"run {busy[0].dagster_run.run_id} of {name} is in progress",
                cursor=context.cursor,
            )
        from mlops_assets.monitoring.retrain import start_retraining

        started = start_retraining(storage, uc, now, event.storage_id)
        state["at"] = now.isoformat(timespec="seconds")
        context.log.info(f"retraining {name}: {reason}. {started.message}")
        return dg.SensorResult(run_requests=started.run_requests, cursor=json.dumps(state))

    return retrain_trigger
