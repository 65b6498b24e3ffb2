"""The MLOps sensors: a new dataset version starts the gate's run; a gate that did not
reject starts the release run."""

from typing import Any

import dagster as dg

from mlops_assets.core.steps import step_key
from mlops_assets.errors import MlopsError
from mlops_assets.registry import ModelRegistry
from mlops_assets.storage import ObjectStorage

DATA_VERSION_TAG = "dagster/data_version"


def build_new_dataset_sensor(
    use_case: str, split_key: dg.AssetKey, job: Any, running: bool
) -> dg.SensorDefinition:
    @dg.asset_sensor(
        name=f"{use_case}_new_dataset_sensor",
        asset_key=split_key,
        job=job,
        # it reads only the Dagster event log: cheap, so it may look often, and the time
        # from landing to deploy is the landing sensor's interval plus the runs
        minimum_interval_seconds=5,
        default_status=(
            dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
        ),
        description=f"Starts {job.name} for each new dataset version of "
        f"{split_key.to_user_string()}.",
    )
    def new_dataset_sensor(
        context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry, storage: ObjectStorage
    ):

        materialization = asset_event.asset_materialization
        version = (materialization.tags or {}).get(DATA_VERSION_TAG) if materialization else None
        if not version:
            return dg.SkipReason("materialization without a data version")
        registry = ModelRegistry(storage, use_case)
        champion = registry.champion()
        if champion and registry.metadata(champion["version"]).get("dataset_version") == version:
            # e.g. the demo trained on it already, or a run was launched by hand
            return dg.SkipReason(
                f"champion v{champion['version']} was trained on dataset {version} already"
            )
        # One run per dataset version: the run key makes a second request a no-op.
        return dg.RunRequest(
            run_key=f"{use_case}-dataset-{version}",
            tags={"mlops/trigger": "new_dataset", "mlops/dataset_version": version},
        )

    return new_dataset_sensor


GATE_BATCH = 25
"""Validations one tick looks at; the rest wait for the next tick (the cursor moves)."""


def release_request(
    use_case: str,
    record: Any,
    instance: dg.DagsterInstance,
    gate_job: str,
    registry: ModelRegistry | None = None,
) -> dg.RunRequest | str:
    """The release run for one validate materialization, or why there is none. The event's
    claims are checked against where it was found (a run of the gate's job); release reads
    the gate's decision again from storage, so a reported event releases nothing itself.
    With `registry`, a candidate released already (the demo's, before the sensor ran) is
    not started again."""
    materialization = record.asset_materialization
    metadata = materialization.metadata if materialization else {}
    run = instance.get_run_by_id(record.run_id) if record.run_id else None
    if run is None or run.job_name != gate_job:
        return f"a validate event not from a {gate_job} run (run {record.run_id or 'none'})"
    decision = metadata.get("gate_decision")
    candidate = metadata.get("candidate_id")
    if decision is None or candidate is None:
        return f"a validate event of run {record.run_id} without a gate decision"
    summary = metadata["decision"].value if "decision" in metadata else ""
    if decision.value == "REJECT":
        return f"candidate {candidate.value} rejected: {summary}"
    try:
        released = registry.released_as(str(candidate.value)) if registry else None
    except (MlopsError, OSError, ValueError):  # one unreadable version blocks no release:
        released = None  # the release run checks again, and fails saying why
    if released:
        return f"candidate {candidate.value} was released as v{released} already"
    return dg.RunRequest(
        # one release run per candidate: a second request is a no-op
        run_key=f"{use_case}-release-{candidate.value}",
        run_config={
            "ops": {
                step_key(use_case, "release").to_python_identifier(): {
                    "config": {"candidate_id": candidate.value}
                }
            }
        },
        tags={"mlops/trigger": "gate", "mlops/candidate_id": str(candidate.value)},
    )


def build_gate_sensor(
    use_case: str, validate_key: dg.AssetKey, gate_job: str, release_job: Any, running: bool
) -> dg.SensorDefinition:
    """Starts the release run (release, deploy) for each candidate the gate did not reject.

    The gate's own run fails on a REJECT with the reason; release and deploy were never
    planned in it, so the lineage shows them as they were, not failed."""

    @dg.sensor(
        name=f"{use_case}_gate_sensor",
        job=release_job,
        minimum_interval_seconds=5,  # the event log only, as the dataset sensor
        default_status=(
            dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
        ),
        description=f"Starts {release_job.name} for each validation of "
        f"{validate_key.to_user_string()} that passed or held (a HOLD that keeps the "
        "champion is recorded by release, which then releases nothing); a REJECT is a "
        "skipped tick naming the reason.",
    )
    def gate_sensor(context: dg.SensorEvaluationContext, storage: ObjectStorage) -> dg.SensorResult:
        instance, registry = context.instance, ModelRegistry(storage, use_case)
        if context.cursor is None:  # first tick: the newest validation only, not history
            found = instance.fetch_materializations(validate_key, limit=1)
        else:
            found = instance.fetch_materializations(
                validate_key, limit=GATE_BATCH, cursor=context.cursor, ascending=True
            )
        requests, reasons = [], []
        for record in found.records:
            outcome = release_request(use_case, record, instance, gate_job, registry)
            (requests if isinstance(outcome, dg.RunRequest) else reasons).append(outcome)
        return dg.SensorResult(
            run_requests=requests,
            skip_reason=None if requests else ("; ".join(reasons) or "no new validation"),
            cursor=found.cursor if found.records else context.cursor,
        )

    return gate_sensor


def release_after(
    instance: dg.DagsterInstance, use_case: str, gate_run_id: str
) -> dg.RunRequest | str:
    """What the gate sensor would start after one gate run (for callers that run the jobs
    themselves, as the demo does): the release run, or why there is none."""
    found = instance.fetch_materializations(step_key(use_case, "validate"), limit=1)
    record = found.records[0] if found.records else None
    if record is None or record.run_id != gate_run_id:
        return f"run {gate_run_id} validated nothing (nothing new to train)"
    return release_request(use_case, record, instance, f"{use_case}_mlops")
