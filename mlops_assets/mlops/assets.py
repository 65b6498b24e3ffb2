"""The MLOps assets of a use case: train, validate (with the blocking gate), release, deploy.

One function builds each asset from the use case's spec; the bodies are thin (the work is in
train.py, validate.py, release.py and deploy.py) and import only the heavy modules lazily.
"""

from dataclasses import replace
from time import perf_counter
from typing import Any, Literal

import dagster as dg

from mlops_assets.core.config import ModelConfig
from mlops_assets.core.report import md_table
from mlops_assets.core.spec import UseCaseSpec
from mlops_assets.core.step_failures import step_failures
from mlops_assets.core.steps import MLOPS_STEPS, step_keys
from mlops_assets.gitops.resource import GitOpsResource
from mlops_assets.mlops.deploy import RollbackRefused, auto_rollback, run_deploy
from mlops_assets.mlops.validate_report import validation_metadata
from mlops_assets.storage import Layout, ObjectStorage


class DeployRunConfig(dg.Config):
    """Set by the rollback sensor when the monitor decided a rollback (or by a person)."""

    rollback_from: int = 0
    """The version to roll back (0: deploy the champion, as always)."""
    rollback_to: int = 0
    reason: str = ""


class ReleaseConfig(dg.Config):
    """Which candidate to release: the gate sensor names the one its validation was about."""

    candidate_id: str = ""
    """'' (a run launched by hand): the latest train materialization's candidate."""


class TrainConfig(dg.Config):
    """Per-run overrides, from the Launchpad or `run_config`."""

    params: dict[str, Any] = {}
    retrain: bool = False
    """Train even when a candidate with the same dataset, parameters and code was trained."""
    backend: Literal["", "dagster", "kubeflow", "kubeflow-local"] = ""
    """Where this run trains, instead of the YAML's `training.backend`: `kubeflow-local` runs
    the Kubeflow pipeline with kfp.local in the run's process, no cluster and no YAML edit."""


def training_for(uc: UseCaseSpec, backend: str) -> ModelConfig:
    """The use case's training config with a run's backend override applied."""
    if not backend:
        return uc.training
    if backend == "dagster":
        return uc.training.model_copy(update={"backend": "dagster"})
    runner = "local" if backend == "kubeflow-local" else "cluster"
    kubeflow = uc.training.kubeflow.model_copy(update={"runner": runner})
    return uc.training.model_copy(update={"backend": "kubeflow", "kubeflow": kubeflow})


def _candidate_id(context: dg.AssetExecutionContext, train_key: dg.AssetKey) -> str:
    """The candidate of the latest train materialization (this run's, the parent run's when
    a run is re-executed from a failed validate, or the last one's for a release by hand)."""
    event = context.instance.get_latest_materialization_event(train_key)
    if event is None or event.asset_materialization is None:
        raise RuntimeError(f"{train_key.to_user_string()} has never been materialized")
    return event.asset_materialization.metadata["candidate_id"].value


def build_mlops_assets(
    uc: UseCaseSpec, split_key: dg.AssetKey
) -> tuple[list[dg.AssetsDefinition], list[dg.AssetsDefinition]]:
    """(train -> validate, release -> deploy), after the use case's split: the gate's run and
    the release run the gate sensor starts when it passes (docs/concepts/gate.md)."""
    return [train_asset(uc, split_key), validate_asset(uc)], [release_asset(uc), deploy_asset(uc)]


def _keys(uc: UseCaseSpec) -> dict[str, dg.AssetKey]:
    return step_keys(uc.name, MLOPS_STEPS)


def _cpu_op_tags(uc: UseCaseSpec) -> dict[str, Any]:
    """Validate and release get the DataOps CPU placement under the per-step executor
    (dagster-k8s builds a step's pod from its own tags only)."""
    return {"dagster-k8s/config": uc.kubernetes.dataops.k8s_config()}


def _not_training(earlier: dict[str, Any]) -> str:
    outcome = (
        f"released as v{earlier['version']}"
        if "version" in earlier
        else f"held by the gate ({earlier['held']})"
        if "held" in earlier
        else f"rejected by the gate ({earlier['rejected']})"
    )
    return (
        f"Not training: candidate {earlier['candidate_id']} had the same dataset version, "
        f"parameters, seed and code, and was {outcome}. Change a parameter, or set "
        "retrain: true in the run config, to train anyway."
    )


def _train_on_kubeflow(
    uc: UseCaseSpec, storage: ObjectStorage, run_id: str, params: dict[str, Any], log: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The candidate trained by a KFP run, and the run's metadata."""
    from mlops_assets.kubeflow.backend import run_on_kubeflow

    candidate, kfp_run = run_on_kubeflow(storage, uc, run_id, params, log.info)
    kubeflow: dict[str, Any] = {"kfp_runner": kfp_run.runner, "kfp_state": kfp_run.state}
    if kfp_run.run_id:
        kubeflow["kfp_run_id"] = kfp_run.run_id
        kubeflow["kfp_run_url"] = dg.MetadataValue.url(kfp_run.url)
    return candidate, kubeflow


def train_metadata(uc: UseCaseSpec, candidate: dict[str, Any]) -> dict[str, Any]:
    """What the train asset shows of a candidate."""
    return {
        "candidate_id": candidate["candidate_id"],
        "dataset_version": candidate["dataset_version"],
        "params": dg.MetadataValue.md(
            md_table(["parameter", "value"], sorted(candidate["params"].items()))
        ),
        "seed": candidate["seed"],
        "rows_train": candidate["rows_train"],
        "rows_val": candidate["rows_val"],
        **{k: candidate[k] for k in ("val_accuracy", "val_rmse") if k in candidate},
        "estimator": candidate.get("estimator") or "",
        "training_seconds": candidate["training_seconds"],
        "code_version": candidate["code_version"],
        "artifact_sha256": candidate["artifact_sha256"],
        "backend": uc.training.backend,
        "keras_backend": candidate.get("keras_backend") or "",
        "warning": candidate.get("warning") or "",
    }


def train_asset(uc: UseCaseSpec, split_key: dg.AssetKey) -> dg.AssetsDefinition:
    """Fits a candidate on the current dataset version, unless the same one was trained."""
    layout = Layout(uc.name)

    @dg.asset(
        key=_keys(uc)["train"],
        deps=[split_key],
        kinds={uc.model_kind, *(("kubeflow",) if uc.training.backend == "kubeflow" else ())},
        # the train step's own pod goes to the GPU pool (or, when a KFP cluster trains, gets
        # the token to call its API)
        op_tags={"dagster-k8s/config": uc.training_pod_config()},
        output_required=False,  # nothing new to train: validate, release and deploy skip
        description=f"Fits a candidate ({uc.training.adapter.rsplit(':', 1)[-1]}) on the training "
        "split of the current dataset version.",
        **uc.common("mlops"),
    )
    def train(context: dg.AssetExecutionContext, config: TrainConfig, storage: ObjectStorage):
        with step_failures():
            started = perf_counter()
            from mlops_assets.mlops.train import run_train, trained_before

            earlier = (
                None
                if config.retrain
                else trained_before(storage, layout, uc.training, config.params)
            )
            if earlier:
                context.log.info(_not_training(earlier))
                return
            kubeflow: dict[str, Any] = {}
            training = training_for(uc, config.backend)
            if training.backend == "kubeflow":
                candidate, kubeflow = _train_on_kubeflow(
                    replace(uc, training=training),
                    storage,
                    context.run.run_id,
                    config.params,
                    context.log,
                )
            else:
                candidate = run_train(
                    storage,
                    layout,
                    uc.dataset,
                    uc.training,
                    context.run.run_id,
                    config.params,
                    warn=context.log.warning,
                )
            context.log.info(
                f"trained candidate on dataset {candidate['dataset_version']} with "
                f"{candidate['params']} in {candidate['training_seconds']:.2f} s"
            )
            yield dg.MaterializeResult(
                metadata={
                    **train_metadata(replace(uc, training=training), candidate),
                    **kubeflow,
                    "compute_seconds": perf_counter() - started,
                }
            )

    return train


def gate_check(validation: dict[str, Any], metric: str) -> dg.AssetCheckResult:
    """The blocking gate's result: a REJECT fails at ERROR (stopping release and deploy), a
    HOLD at WARN (stopping nothing by failing: release sees it and skips)."""
    comparison = validation["comparison"] or {}
    return dg.AssetCheckResult(
        check_name="gate",
        passed=validation["passed"],
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


def rejection(validation: dict[str, Any]) -> dg.Failure:
    """A REJECT as the run's failure: the gate's line is the description (what the run page
    and the console show), not Dagster's generic error for a failed blocking check."""
    return dg.Failure(
        description=validation["summary"],
        metadata={
            "decision": "REJECT",
            "candidate_id": validation["candidate_id"],
            "champion_version": validation["champion_version"] or "none",
        },
        allow_retries=False,  # the same candidate is rejected again
    )


def validate_asset(uc: UseCaseSpec) -> dg.AssetsDefinition:
    """Candidate and champion on the same test split, with the gate as a blocking check."""
    layout = Layout(uc.name)
    key = _keys(uc)
    gate = uc.gate

    @dg.asset(
        key=key["validate"],
        kinds={uc.model_kind},
        deps=[key["train"]],
        op_tags=_cpu_op_tags(uc),
        description="Candidate and champion on the same test split; the gate decides.",
        check_specs=[
            dg.AssetCheckSpec(
                "gate",
                asset=key["validate"],
                blocking=True,
                description=(
                    f"{gate.metric} ({gate.better}) reaches {gate.threshold}, and beats the "
                    f"champion significantly (paired test, alpha {gate.alpha}) by at least "
                    f"{gate.min_effect}; a difference that is not significant is a HOLD "
                    f"({gate.on_hold})."
                ),
            )
        ],
        **uc.common("mlops"),
    )
    def validate(context: dg.AssetExecutionContext, storage: ObjectStorage):
        with step_failures():
            started = perf_counter()
            from mlops_assets.mlops.validate import run_validate

            validation = run_validate(
                storage,
                layout,
                uc.dataset,
                gate,
                _candidate_id(context, key["train"]),
                uc.training,
                uc.deploy.environment,
                uc.production_samples,
            )
            (context.log.info if validation["passed"] else context.log.warning)(
                validation["summary"]
            )
            metadata = validation_metadata(validation)
            metadata["compute_seconds"] = perf_counter() - started
            yield dg.MaterializeResult(
                metadata=metadata, check_results=[gate_check(validation, gate.metric)]
            )
            if validation["decision"] == "REJECT":  # the run fails, saying why, not a check error
                raise rejection(validation)

    return validate


def release_asset(uc: UseCaseSpec) -> dg.AssetsDefinition:
    """The validated candidate as a new registry version, the champion alias moved."""
    layout = Layout(uc.name)
    key = _keys(uc)
    metric = uc.gate.metric

    @dg.asset(
        key=key["release"],
        kinds={"python"},
        deps=[key["validate"]],
        op_tags=_cpu_op_tags(uc),
        output_required=False,  # a HOLD that keeps the champion releases nothing
        description=f"The validated candidate as a new version in models/{uc.name}/, moving the "
        "champion alias atomically unless it is pinned.",
        **uc.common("mlops"),
    )
    def release(context: dg.AssetExecutionContext, config: ReleaseConfig, storage: ObjectStorage):
        with step_failures():
            started = perf_counter()
            from mlops_assets.mlops.release import held, run_release

            candidate_id = config.candidate_id or _candidate_id(context, key["train"])
            hold = held(storage, layout, candidate_id, context.run.run_id)
            if hold:
                context.log.info(f"nothing to release: {hold}")
                return
            result, metadata = run_release(
                storage,
                layout,
                candidate_id,
                context.run.run_id,
                adapter=uc.training.adapter,
                estimator=uc.training.estimator,
            )
            context.log.info(f"released {uc.name} v{result.version}: {result.reason}")
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
                    "model_location": dg.MetadataValue.path(
                        storage.uri(layout.model(result.version))
                    ),
                    "compute_seconds": perf_counter() - started,
                },
            )

    return release


def _deploy_metadata(
    uc: UseCaseSpec, gitops: GitOpsResource, result: Any, request: Any
) -> dict[str, Any]:
    return {
        "environment": uc.deploy.environment,
        "model_version": int(request.model["version"]),
        "changed": result.changed,
        "result": result.reason,
        "commit": result.commit or "",
        "commit_url": dg.MetadataValue.url(gitops.link(result.commit)) if result.commit else "",
        "branch": result.branch,
        "previous_version": result.previous_version or "",
        "values_file": request.path,
    }


def deploy_asset(uc: UseCaseSpec) -> dg.AssetsDefinition:
    """The champion (or a rollback the monitor decided) as one commit to the GitOps repo."""
    key = _keys(uc)

    @dg.asset(
        key=key["deploy"],
        kinds={"git", "kubernetes"},
        deps=[key["release"]],
        # under the per-step executor, the only pod that holds the GitOps credentials
        op_tags={"dagster-k8s/config": uc.deploy_pod_config()},
        description=f"The champion into environments/{uc.deploy.environment}/{uc.name}/"
        "values.yaml of the GitOps repository, as one commit (or an approval branch).",
        **uc.common("mlops"),
    )
    def deploy(
        context: dg.AssetExecutionContext,
        config: DeployRunConfig,
        storage: ObjectStorage,
        gitops: GitOpsResource,
    ):
        with step_failures():
            started = perf_counter()
            run_id, adapter = context.run.run_id, uc.training.adapter
            if not config.rollback_from:
                result, request = run_deploy(storage, gitops, uc.name, uc.deploy, run_id, adapter)
                context.log.info(result.reason)
                return dg.MaterializeResult(
                    metadata={
                        **_deploy_metadata(uc, gitops, result, request),
                        "compute_seconds": perf_counter() - started,
                    }
                )
            try:
                result, request, moved = auto_rollback(
                    storage,
                    gitops,
                    uc.name,
                    uc.deploy,
                    run_id,
                    adapter,
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
            context.log.info(result.reason)
            return dg.MaterializeResult(
                metadata={
                    **_deploy_metadata(uc, gitops, result, request),
                    "rolled_back_version": config.rollback_from,
                    "rollback": config.reason,
                    "compute_seconds": perf_counter() - started,
                }
            )

    return deploy
