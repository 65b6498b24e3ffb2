"""The production side of a use case's graph: `<name>/inference_log` (written by the model
server), `<name>/feedback`, `<name>/monitor` with its checks, the job and schedule that run
them, and the sensor that starts retraining when a check fails.

The monitor holds no GitOps credentials and never deploys: it runs in a DataOps-placed pod
and only ever starts the DataOps job, whose new dataset version goes through the gate.
"""

import json
from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import Any

import dagster as dg

from mlops_assets.gitops.resource import GitOpsResource
from mlops_assets.monitoring.provenance import read_deployed
from mlops_assets.monitoring.rollout_status import read_rollout, reading_enabled
from mlops_assets.pipeline.report import md_table
from mlops_assets.pipeline.spec import UseCaseSpec
from mlops_assets.pipeline.steps import step_key
from mlops_assets.storage import Layout, ObjectStorage

IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def monitoring_keys(name: str) -> dict[str, dg.AssetKey]:
    return {step: step_key(name, step) for step in ("inference_log", "feedback", "monitor")}


def build_monitoring(
    uc: UseCaseSpec, dataops_job: Any, running: bool, interval_seconds: int
) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """(assets, jobs, schedules, sensors) of the production side of `uc`."""
    name = uc.name
    per_step = uc.per_step
    layout = Layout(name)
    key = monitoring_keys(name)
    common = uc.common("monitor")
    config = uc.monitor
    environment = config.environment or uc.deploy.environment
    threshold = config.drift_threshold or uc.drift_threshold
    # under the per-step executor, the steps that read git get the read-only token only
    reads_git = {
        "dagster-k8s/config": uc.kubernetes.dataops.k8s_config(gitops_reader=uc.kubernetes.gitops)
    }

    @dg.asset(
        key=key["inference_log"],
        kinds={"parquet"},
        deps=[step_key(name, "deploy")],
        description=f"What the deployed model is asked and answers: the Parquet files model "
        f"servers write under inference/{name}/<environment>/<date>/<hour>/ (inference_log: in "
        "defs.yaml, or the chart's inferenceLog: values). Materializing it lists the last "
        "24 hours' of them.",
        **common,
    )
    def inference_log(context: dg.AssetExecutionContext, storage: ObjectStorage):
        from mlops_assets.monitoring.digest import recent_log_files

        files = recent_log_files(storage, layout, hours=24)
        per_environment: dict[str, list[int]] = {}
        for info in files:
            counts = per_environment.setdefault(info.key.split("/")[2], [0, 0])
            counts[0] += 1
            counts[1] += info.size
        newest = max(files, key=lambda i: i.modified_ns).key if files else ""
        return dg.MaterializeResult(
            data_version=dg.DataVersion(f"{len(files)}-{newest}"),
            metadata={  # of the files written in the last 24 hours (not the history)
                "files": len(files),
                "bytes": sum(i.size for i in files),
                "newest": newest,
                "environments": dg.MetadataValue.md(
                    md_table(
                        ["environment", "files", "bytes"],
                        [(env, n, size) for env, (n, size) in sorted(per_environment.items())],
                    )
                ),
            },
        )

    @dg.asset(
        key=key["feedback"],
        kinds={"parquet"},
        deps=[key["inference_log"]],
        op_tags=reads_git,
        description=f"Ground-truth labels landed under feedback/{name}/ (request_id, label), "
        "joined to the inference log; bad rows quarantined with their reason.",
        **common,
    )
    def feedback(context: dg.AssetExecutionContext, storage: ObjectStorage, gitops: GitOpsResource):
        started = perf_counter()
        from mlops_assets.monitoring.feedback import run_feedback
        from mlops_assets.monitoring.monitor import References

        references = References(storage, layout, uc.dataset, uc.gate.metric, config.drift_bins)
        result = run_feedback(
            storage,
            layout,
            references.classes,
            config.feedback_days,
            context.run.run_id,
            deployed=read_deployed(gitops.reader((name,)), name),
            budget_bytes=int(config.max_file_mb * 1024 * 1024),
        )
        for file, reason in result.refused:
            context.log.warning(f"quarantined {file}: {reason}")
        if result.quarantined:
            context.log.warning(
                f"{result.quarantined} feedback row(s) quarantined under "
                f"quarantine/{name}/feedback-*/rows.csv: "
                + ", ".join(f"{n} {kind}" for kind, n in sorted(result.reasons.items()))
            )
        return dg.MaterializeResult(
            metadata={
                "new_files": len(result.files) + len(result.refused),
                "accepted": result.accepted,
                "quarantined_rows": result.quarantined,
                "refused_files": len(result.refused),
                "files": dg.MetadataValue.md(
                    md_table(
                        ["file", "accepted", "quarantined", "already labelled"],
                        [
                            (f["file"], f["accepted"], f["quarantined"], f["already"])
                            for f in result.files
                        ]
                        + [(file, 0, f"whole file: {why}", 0) for file, why in result.refused],
                    )
                ),
                "compute_seconds": perf_counter() - started,
            }
        )

    @dg.asset(
        key=key["monitor"],
        kinds={"python"},
        # the schedule runs it every few minutes: a monitor silent for three windows of its
        # schedule's default is one nobody watches (the UI flags it)
        freshness_policy=dg.FreshnessPolicy.time_window(
            fail_window=timedelta(hours=2), warn_window=timedelta(minutes=40)
        ),
        deps=[step_key(name, "deploy"), key["inference_log"], key["feedback"]],
        op_tags=reads_git,
        description=f"Requests, label coverage, input drift and the live {uc.gate.metric} of "
        f"the version serving {environment}, over the last {config.window_hours} h, against "
        "its release.",
        check_specs=[
            dg.AssetCheckSpec(
                "live_metric_holds",
                asset=key["monitor"],
                description="the live metric's 95% interval reaches the release's test value "
                f"minus {config.tolerance:g}",
            ),
            dg.AssetCheckSpec(
                "inputs_not_drifting",
                asset=key["monitor"],
                description=f"no input feature's PSI reaches {threshold:g} (ERROR when "
                f"{config.drift_error_share:.0%} of them do)",
            ),
            dg.AssetCheckSpec(
                "enough_feedback",
                asset=key["monitor"],
                description=f"at least {config.min_labelled} labelled requests in the window",
            ),
        ],
        **common,
    )
    def monitor(context: dg.AssetExecutionContext, storage: ObjectStorage, gitops: GitOpsResource):
        started = perf_counter()
        from mlops_assets.monitoring.checks import TRIGGERS, verdicts
        from mlops_assets.monitoring.monitor import run_monitor
        from mlops_assets.monitoring.report import monitor_metadata
        from mlops_assets.monitoring.rollback import decide_cluster_rollback, decide_rollback

        deployed = read_deployed(gitops.reader((name,)), name)  # read-only: MLOPS_GITOPS_READ_TOKEN
        report = run_monitor(
            storage, layout, uc.dataset, config, environment, uc.gate.metric, deployed=deployed
        )
        found = verdicts(
            report,
            min_labelled=config.min_labelled,
            min_requests=config.min_requests,
            tolerance=config.tolerance,
            drift_threshold=threshold,
            drift_error_share=config.drift_error_share,
        )
        retrain = "; ".join(
            v.description for v in found if v.name in TRIGGERS and v.status == "ERROR"
        )
        cluster = None
        if reading_enabled():
            try:
                cluster = read_rollout(environment, uc.name)
            except Exception as error:  # the monitor's other findings still count
                context.log.warning(f"the Rollout of {environment} could not be read: {error}")
        if cluster is not None and cluster.diverged:
            context.log.warning(
                f"{cluster.name}: git names v{cluster.git_version}, the cluster serves "
                f"v{cluster.serving_version} (canary aborted: {cluster.message})"
            )
        rollback = None
        if config.rollback.enabled:
            rollback = decide_cluster_rollback(storage, layout, environment, cluster)
        rollback = rollback or decide_rollback(
            storage, layout, environment, config.rollback, config.window_hours, datetime.now(UTC)
        )
        if rollback:
            context.log.warning(f"rollback decided: {rollback.reason}")
        for _, reason in report.digest.refused:
            context.log.warning(f"refused and quarantined: {reason}")
        for verdict in found:
            (context.log.info if verdict.passed else context.log.warning)(verdict.description)
        metadata = monitor_metadata(report, found, retrain)
        metadata["rollback"] = dg.MetadataValue.json(rollback.as_dict() if rollback else {})
        metadata["rollout"] = dg.MetadataValue.json(cluster.as_dict() if cluster else {})
        metadata["compute_seconds"] = perf_counter() - started
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                dg.AssetCheckResult(
                    check_name=v.name,
                    passed=v.passed,
                    severity=dg.AssetCheckSeverity.WARN
                    if v.status == "WARN"
                    else dg.AssetCheckSeverity.ERROR,
                    description=v.description,
                    metadata={"status": v.status, **v.metadata},
                )
                for v in found
            ],
        )

    reader = uc.kubernetes.dataops.k8s_config(api=per_step, gitops_reader=uc.kubernetes.gitops)
    job = dg.define_asset_job(
        f"{name}_monitor",
        selection=dg.AssetSelection.assets(inference_log, feedback, monitor),
        description=f"Production side of {name}: the inference log's files, feedback, then "
        "the monitor.",
        # the run pod reads git with the read-only token (which versions were deployed)
        tags={**uc.run_tags("monitor"), "dagster-k8s/config": reader},
    )
    schedule = dg.ScheduleDefinition(
        name=f"{name}_monitor_schedule",
        job=job,
        cron_schedule=config.schedule,
        default_status=dg.DefaultScheduleStatus.RUNNING
        if running
        else dg.DefaultScheduleStatus.STOPPED,
        description="Feedback and the monitor, on the inference log's new files.",
    )
    trigger = build_retrain_trigger(uc, key["monitor"], dataops_job, running, interval_seconds)
    rollback_job = dg.define_asset_job(
        f"{name}_rollback",
        selection=dg.AssetSelection.assets(step_key(name, "deploy")),
        description=f"deploy alone, with a rollback in its config: what {name}_rollback_trigger "
        "starts when the monitor decides one.",
        tags={
            **uc.run_tags("deploy"),
            # in process, the run pod deploys and (only it) holds the GitOps credentials; under
            # the per-step executor it creates the deploy step's pod, which holds them
            "dagster-k8s/config": uc.kubernetes.dataops.k8s_config(api=True)
            if per_step
            else uc.deploy_pod_config(),
        },
    )
    rollback = build_rollback_trigger(uc, key["monitor"], rollback_job, running, interval_seconds)
    return [inference_log, feedback, monitor], [job, rollback_job], [schedule], [trigger, rollback]


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
        if busy:
            return dg.SensorResult(
                skip_reason=f"run {busy[0].dagster_run.run_id} of {name} is in progress",
                cursor=json.dumps(state),
            )
        from mlops_assets.monitoring.retrain import start_retraining

        started = start_retraining(storage, uc, now, event.storage_id)
        state["at"] = now.isoformat(timespec="seconds")
        context.log.info(f"retraining {name}: {reason}. {started.message}")
        return dg.SensorResult(run_requests=started.run_requests, cursor=json.dumps(state))

    return retrain_trigger
