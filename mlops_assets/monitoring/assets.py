"""The production side of a use case's graph: `<name>/inference_log` (written by the model
server), `<name>/feedback`, `<name>/monitor` with its checks, the job and schedule that run
them, and the sensor that starts retraining when a check fails.

The monitor holds no GitOps credentials and never deploys: it runs in a DataOps-placed pod
and only ever starts the DataOps job, whose new dataset version goes through the gate.
"""

from datetime import UTC, datetime, timedelta
from time import perf_counter
from typing import Any

import dagster as dg

from mlops_assets.core.report import md_table
from mlops_assets.core.spec import UseCaseSpec
from mlops_assets.core.step_failures import step_failures
from mlops_assets.core.steps import step_key, step_keys
from mlops_assets.gitops.resource import GitOpsResource
from mlops_assets.monitoring.provenance import read_deployed
from mlops_assets.monitoring.rollout_status import read_rollout, reading_enabled
from mlops_assets.monitoring.sensors import build_retrain_trigger, build_rollback_trigger
from mlops_assets.storage import Layout, ObjectStorage


def monitoring_keys(name: str) -> dict[str, dg.AssetKey]:
    return step_keys(name, ("inference_log", "feedback", "monitor"))


def build_monitoring(
    uc: UseCaseSpec, dataops_job: Any, running: bool, interval_seconds: int
) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """(assets, jobs, schedules, sensors) of the production side of `uc`."""
    assets = [inference_log_asset(uc), feedback_asset(uc), monitor_asset(uc)]
    job, schedule = monitor_job(uc, assets, running)
    rollback_job = deploy_rollback_job(uc)
    monitor = monitoring_keys(uc.name)["monitor"]
    sensors = [
        build_retrain_trigger(uc, monitor, dataops_job, running, interval_seconds),
        build_rollback_trigger(uc, monitor, rollback_job, running, interval_seconds),
    ]
    return assets, [job, rollback_job], [schedule], sensors


def monitor_job(
    uc: UseCaseSpec, assets: list[dg.AssetsDefinition], running: bool
) -> tuple[Any, dg.ScheduleDefinition]:
    """The production side's job (log, feedback, monitor) and its schedule."""
    reader = uc.kubernetes.dataops.k8s_config(api=uc.per_step, gitops_reader=uc.kubernetes.gitops)
    job = dg.define_asset_job(
        f"{uc.name}_monitor",
        selection=dg.AssetSelection.assets(*assets),
        description=f"Production side of {uc.name}: the inference log's files, feedback, then "
        "the monitor.",
        # the run pod reads git with the read-only token (which versions were deployed)
        tags={**uc.run_tags("monitor"), "dagster-k8s/config": reader},
    )
    schedule = dg.ScheduleDefinition(
        name=f"{uc.name}_monitor_schedule",
        job=job,
        cron_schedule=uc.monitor.schedule,
        default_status=dg.DefaultScheduleStatus.RUNNING
        if running
        else dg.DefaultScheduleStatus.STOPPED,
        description="Feedback and the monitor, on the inference log's new files.",
    )
    return job, schedule


def deploy_rollback_job(uc: UseCaseSpec) -> Any:
    """deploy alone, which the rollback trigger starts with a rollback in its config."""
    return dg.define_asset_job(
        f"{uc.name}_rollback",
        selection=dg.AssetSelection.assets(step_key(uc.name, "deploy")),
        description=f"deploy alone, with a rollback in its config: what {uc.name}_rollback_trigger "
        "starts when the monitor decides one.",
        tags={
            **uc.run_tags("deploy"),
            # in process, the run pod deploys and (only it) holds the GitOps credentials; under
            # the per-step executor it creates the deploy step's pod, which holds them
            "dagster-k8s/config": uc.kubernetes.dataops.k8s_config(api=True)
            if uc.per_step
            else uc.deploy_pod_config(),
        },
    )


def inference_log_asset(uc: UseCaseSpec) -> dg.AssetsDefinition:
    """The Parquet log files the model servers write, listed for the last 24 hours."""
    name = uc.name
    layout = Layout(name)
    key = monitoring_keys(name)
    common = uc.common("monitor")

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
        with step_failures():
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

    return inference_log


def feedback_asset(uc: UseCaseSpec) -> dg.AssetsDefinition:
    """Ground-truth labels joined to the logged requests by server id."""
    name = uc.name
    layout = Layout(name)
    key = monitoring_keys(name)
    common = uc.common("monitor")
    config = uc.monitor
    # under the per-step executor, the steps that read git get the read-only token only
    reads_git = {
        "dagster-k8s/config": uc.kubernetes.dataops.k8s_config(gitops_reader=uc.kubernetes.gitops)
    }

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
        with step_failures():
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

    return feedback


def monitor_asset(uc: UseCaseSpec) -> dg.AssetsDefinition:
    """Drift, live quality and the rollback decision over the production window."""
    name = uc.name
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
        with step_failures():
            started = perf_counter()
            from mlops_assets.monitoring.checks import TRIGGERS, verdicts
            from mlops_assets.monitoring.monitor import run_monitor
            from mlops_assets.monitoring.report import monitor_metadata
            from mlops_assets.monitoring.rollback import decide_cluster_rollback, decide_rollback

            # read-only: MLOPS_GITOPS_READ_TOKEN
            deployed = read_deployed(gitops.reader((name,)), name)
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
                storage,
                layout,
                environment,
                config.rollback,
                config.window_hours,
                datetime.now(UTC),
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

    return monitor
