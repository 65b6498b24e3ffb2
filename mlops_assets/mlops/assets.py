"""The MLOps assets of a use case: train, validate (with the blocking gate) and release.

Bodies are thin and import their work lazily, like the DataOps assets.
"""

from time import perf_counter
from typing import Any

import dagster as dg

from mlops_assets.gitops.resource import GitOpsResource
from mlops_assets.mlops.deploy import RollbackRefused, auto_rollback, run_deploy
from mlops_assets.mlops.validate_report import validation_metadata
from mlops_assets.pipeline.report import md_table
from mlops_assets.pipeline.spec import UseCaseSpec
from mlops_assets.pipeline.steps import MLOPS_STEPS, step_key
from mlops_assets.storage import Layout, ObjectStorage


class DeployRunConfig(dg.Config):
    """Set by the rollback sensor when the monitor decided a rollback (or by a person)."""

    rollback_from: int = 0
    """The version to roll back (0: deploy the champion, as always)."""
    rollback_to: int = 0
    reason: str = ""


class TrainConfig(dg.Config):
    """Per-run overrides, from the Launchpad or `run_config`."""

    params: dict[str, Any] = {}
    retrain: bool = False
    """Train even when a candidate with the same dataset, parameters and code was trained."""


def _candidate_id(context: dg.AssetExecutionContext, train_key: dg.AssetKey) -> str:
    """The candidate of the latest train materialization (this run's, or the parent run's
    when a run is re-executed from a failed validate or release)."""
    event = context.instance.get_latest_materialization_event(train_key)
    if event is None or event.asset_materialization is None:
        raise RuntimeError(f"{train_key.to_user_string()} has never been materialized")
    return event.asset_materialization.metadata["candidate_id"].value


def build_mlops_assets(uc: UseCaseSpec, split_key: dg.AssetKey) -> list[dg.AssetsDefinition]:
    name = uc.name
    layout = Layout(name)
    key = {step: step_key(name, step) for step in MLOPS_STEPS}
    common = uc.common("mlops")
    # For the per-step k8s_job_executor: the train step's own pod goes to the GPU pool (or,
    # when a KFP cluster trains, gets the token to call its API); validate and release get
    # the DataOps CPU placement (dagster-k8s builds a step's pod from its own tags only).
    train_op_tags = {"dagster-k8s/config": uc.training_pod_config()}
    cpu_op_tags = {"dagster-k8s/config": uc.kubernetes.dataops.k8s_config()}
    metric = uc.gate.metric

    @dg.asset(
        key=key["train"],
        deps=[split_key],
        kinds={uc.model_kind, *(("kubeflow",) if uc.training.backend == "kubeflow" else ())},
        op_tags=train_op_tags,
        output_required=False,  # nothing new to train: validate, release and deploy skip
        description=f"Fits a candidate ({uc.training.adapter.rsplit(':', 1)[-1]}) on the training "
        "split of the current dataset version.",
        **common,
    )
    def train(context: dg.AssetExecutionContext, config: TrainConfig, storage: ObjectStorage):
        started = perf_counter()
        from mlops_assets.mlops.train import run_train, trained_before

        earlier = (
            None if config.retrain else trained_before(storage, layout, uc.training, config.params)
        )
        if earlier:
            outcome = (
                f"released as v{earlier['version']}"
                if "version" in earlier
                else f"held by the gate ({earlier['held']})"
                if "held" in earlier
                else f"rejected by the gate ({earlier['rejected']})"
            )
            context.log.info(
                f"Not training: candidate {earlier['candidate_id']} had the same dataset "
                f"version, parameters, seed and code, and was {outcome}. Change a parameter, "
                "or set retrain: true in the run config, to train anyway."
            )
            return

        kubeflow: dict[str, Any] = {}
        if uc.training.backend == "kubeflow":
            from mlops_assets.kubeflow.backend import run_on_kubeflow

            candidate, kfp_run = run_on_kubeflow(
                storage, uc, context.run.run_id, config.params, context.log.info
            )
            kubeflow = {"kfp_runner": kfp_run.runner, "kfp_state": kfp_run.state}
            if kfp_run.run_id:
                kubeflow["kfp_run_id"] = kfp_run.run_id
                kubeflow["kfp_run_url"] = dg.MetadataValue.url(kfp_run.url)
        else:
            candidate = run_train(
                storage, layout, uc.dataset, uc.training, context.run.run_id, config.params
            )
        context.log.info(
            f"trained candidate on dataset {candidate['dataset_version']} with "
            f"{candidate['params']} in {candidate['training_seconds']:.2f} s"
        )
        yield dg.MaterializeResult(
            metadata={
                "candidate_id": candidate["candidate_id"],
                "dataset_version": candidate["dataset_version"],
                "params": dg.MetadataValue.md(
                    md_table(["parameter", "value"], sorted(candidate["params"].items()))
                ),
                "seed": candidate["seed"],
                "rows_train": candidate["rows_train"],
                "rows_val": candidate["rows_val"],
                "val_accuracy": candidate["val_accuracy"],
                "training_seconds": candidate["training_seconds"],
                "code_version": candidate["code_version"],
                "artifact_sha256": candidate["artifact_sha256"],
                "backend": uc.training.backend,
                "keras_backend": candidate.get("keras_backend") or "",
                **kubeflow,
                "compute_seconds": perf_counter() - started,
            }
        )

    @dg.asset(
        key=key["validate"],
        kinds={uc.model_kind},
        deps=[key["train"]],
        op_tags=cpu_op_tags,
        description="Candidate and champion on the same test split; the gate decides.",
        check_specs=[
            dg.AssetCheckSpec(
                "gate",
                asset=key["validate"],
                blocking=True,
                description=(
                    f"{metric} ({uc.gate.direction}) reaches {uc.gate.threshold}, and beats the "
                    f"champion significantly (paired test, alpha {uc.gate.alpha}) by at least "
                    f"{uc.gate.min_effect}; a difference that is not significant is a HOLD "
                    f"({uc.gate.on_hold})."
                ),
            )
        ],
        **common,
    )
    def validate(context: dg.AssetExecutionContext, storage: ObjectStorage):
        started = perf_counter()
        from mlops_assets.mlops.validate import run_validate

        validation = run_validate(
            storage,
            layout,
            uc.dataset,
            uc.gate,
            _candidate_id(context, key["train"]),
            uc.training.adapter,
            uc.deploy.environment,
            uc.production_samples,
        )
        (context.log.info if validation["passed"] else context.log.warning)(validation["summary"])
        comparison = validation["comparison"] or {}
        metadata = validation_metadata(validation)
        metadata["compute_seconds"] = perf_counter() - started
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[
                dg.AssetCheckResult(
                    check_name="gate",
                    passed=validation["passed"],
                    # a HOLD stops nothing by failing: release sees it and skips (blocking
                    # checks stop what follows only at ERROR)
                    severity=dg.AssetCheckSeverity.WARN
                    if validation["decision"] == "HOLD"
                    else dg.AssetCheckSeverity.ERROR,
                    description=validation["summary"],
                    metadata={
                        "decision": validation["decision"],
                        "candidate": validation["candidate_metrics"][metric],
                        "champion": (validation["champion_metrics"] or {}).get(metric, "none"),
                        "champion_version": validation["champion_version"] or "none",
                        "difference": comparison.get("difference", "none"),
                        "ci_low": comparison.get("low", "none"),
                        "ci_high": comparison.get("high", "none"),
                        "p_value": comparison.get("p_value", "none"),
                        "test": comparison.get("test", "none"),
                        "alpha": validation["alpha"],
                        "min_effect": validation["min_effect"],
                        "threshold": validation["threshold"],
                    },
                )
            ],
        )

    @dg.asset(
        key=key["release"],
        kinds={"python"},
        deps=[key["validate"]],
        op_tags=cpu_op_tags,
        output_required=False,  # a HOLD that keeps the champion releases nothing
        description=f"The validated candidate as a new version in models/{name}/, moving the "
        "champion alias atomically unless it is pinned.",
        **common,
    )
    def release(context: dg.AssetExecutionContext, storage: ObjectStorage):
        started = perf_counter()
        from mlops_assets.mlops.release import held, run_release

        candidate_id = _candidate_id(context, key["train"])
        hold = held(storage, layout, candidate_id, context.run.run_id)
        if hold:
            context.log.info(f"nothing to release: {hold}")
            return
        result, metadata = run_release(
            storage, layout, candidate_id, context.run.run_id, adapter=uc.training.adapter
        )
        context.log.info(f"released {name} v{result.version}: {result.reason}")
        yield dg.MaterializeResult(
            data_version=dg.DataVersion(str(result.version)),
            metadata={
                "model_version": result.version,
                "artifact_sha256": result.sha256,
                "promoted": result.promoted,
                "promotion": result.reason,
                f"test_{metric}": metadata["metrics"][metric],
                "gate": metadata["gate"]["summary"],
                "dataset_version": metadata["dataset_version"],
                "model_location": dg.MetadataValue.path(storage.uri(layout.model(result.version))),
                "compute_seconds": perf_counter() - started,
            },
        )

    @dg.asset(
        key=key["deploy"],
        kinds={"git", "kubernetes"},
        deps=[key["release"]],
        # under the per-step executor, the only pod that holds the GitOps credentials
        op_tags={"dagster-k8s/config": uc.deploy_pod_config()},
        description=f"The champion into environments/{uc.deploy.environment}/{name}/values.yaml "
        "of the GitOps repository, as one commit (or an approval branch).",
        **common,
    )
    def deploy(
        context: dg.AssetExecutionContext,
        config: DeployRunConfig,
        storage: ObjectStorage,
        gitops: GitOpsResource,
    ):
        started = perf_counter()

        rollback: dict[str, Any] = {}
        if config.rollback_from:
            try:
                result, request, moved = auto_rollback(
                    storage,
                    gitops,
                    name,
                    uc.deploy,
                    context.run.run_id,
                    uc.training.adapter,
                    config.rollback_from,
                    config.rollback_to,
                    config.reason,
                )
            except RollbackRefused as refused:  # recorded, not retried: nothing changed
                context.log.warning(str(refused))
                return dg.MaterializeResult(
                    metadata={
                        "environment": uc.deploy.environment,
                        "changed": False,
                        "result": str(refused),
                        "rollback_refused": str(refused),
                        "compute_seconds": perf_counter() - started,
                    }
                )
            context.log.warning(f"rollback of v{config.rollback_from}: {moved}; {config.reason}")
            rollback = {"rolled_back_version": config.rollback_from, "rollback": config.reason}
        else:
            result, request = run_deploy(
                storage, gitops, name, uc.deploy, context.run.run_id, uc.training.adapter
            )
        context.log.info(result.reason)
        return dg.MaterializeResult(
            metadata={
                "environment": uc.deploy.environment,
                "model_version": int(request.model["version"]),
                "changed": result.changed,
                "result": result.reason,
                "commit": result.commit or "",
                "commit_url": dg.MetadataValue.url(gitops.link(result.commit))
                if result.commit
                else "",
                "branch": result.branch,
                "previous_version": result.previous_version or "",
                "values_file": request.path,
                **rollback,
                "compute_seconds": perf_counter() - started,
            }
        )

    return [train, validate, release, deploy]
