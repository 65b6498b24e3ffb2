"""The settings a use case's `defs.yaml` carries, as typed models.

`dg check yaml` validates a `defs.yaml` against these; they are also handed,
unchanged, to the stage functions so a plain script can run the same code.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import dagster as dg
from dagster._utils.schedules import is_valid_cron_string  # the check Dagster's schedules make
from pydantic import Field, field_validator, model_validator

from mlops_assets.models.base import adapter_name


class SensorConfig(dg.Model, dg.Resolvable):
    interval_seconds: int = Field(30, ge=1)
    default_status: Literal["running", "stopped"] = "running"


class KubeflowConfig(dg.Model, dg.Resolvable):
    """Where the kubeflow backend runs the training pipeline."""

    runner: Literal["cluster", "local"] = Field(
        "cluster",
        description="cluster: submit to the KFP API; local: the same pipeline with kfp.local "
        "(SubprocessRunner) in the run's own process, for development and tests",
    )
    host: str = Field("", description="KFP API URL; MLOPS_KFP_HOST overrides it")
    namespace: str = Field("", description="the Kubeflow profile namespace (multi-user)")
    experiment: str = "mlops-assets"
    image: str = Field(
        "",
        description="the project image the tasks run on; MLOPS_KFP_IMAGE overrides it, "
        "default: ghcr.io/mlops-assets/mlops-assets:<MLOPS_IMAGE_TAG, else this release's version>",
    )
    secrets: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "mlops-s3-credentials": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        },
        description="Kubernetes secret -> its keys, given to the tasks as environment variables "
        "(the storage credentials; the secrets live in the KFP namespace)",
    )
    timeout_seconds: int = Field(6 * 3600, ge=1)
    poll_seconds: float = Field(10.0, gt=0)


class ModelConfig(dg.Model, dg.Resolvable):
    """The model family (an adapter class), its hyperparameters, and where it trains."""

    adapter: str = Field(
        "sklearn_svc",
        description="a registered model adapter: sklearn (the `estimator` below), lightgbm, "
        "sklearn_svc, keras_sequence, or one a plug-in registers under the entry-point group "
        "mlops_assets.adapters; left out of a use case's YAML: sklearn (histogram gradient "
        "boosting) for tables, keras_sequence for LSFB",
    )
    estimator: str = Field(
        "",
        description="for the sklearn adapter: any scikit-learn-compatible estimator class by "
        "import path (sklearn.ensemble.HistGradientBoostingClassifier, xgboost.XGBClassifier, "
        "my_package.models.MyEstimator), built with `params`; default: histogram gradient "
        "boosting for the task",
    )
    function: str = Field(
        "",
        description="your own training code: `package.module:fit`, called as fit(data, "
        "params, seed) with a TrainingData (mlops_assets/models/training_function.py) and "
        "returning a fitted scikit-learn-compatible model; the `function` adapter",
    )
    preprocessing: Literal["auto", "none"] = Field(
        "auto",
        description="auto: the pipeline imputes, encodes categories and scales numbers (for "
        "estimators that are not tree-based) from the dataset's columns; none: the estimator "
        "takes the rows as they land",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="hyperparameters; a run can override them in its config (Launchpad)",
    )
    seed: int = 0
    keras_backend: Literal["tensorflow", "jax", "torch"] = Field(
        "tensorflow",
        description="for Keras adapters: the backend training runs on (its framework must be "
        "installed: tensorflow by default, jax with the `jax` extra); the .keras artifact "
        "loads on any backend",
    )
    backend: Literal["dagster", "kubeflow"] = Field(
        "dagster",
        description="dagster: the train asset fits the model in its own process (the run "
        "pod); kubeflow: a KFP pipeline does, and the asset follows it",
    )
    kubeflow: KubeflowConfig = KubeflowConfig()

    @field_validator("adapter", mode="after")
    @classmethod
    def _registered(cls, value: str) -> str:
        return adapter_name(value)  # the name; an unknown one is an error listing the known

    @field_validator("estimator", "function", mode="after")
    @classmethod
    def _import_path(cls, value: str) -> str:
        # the class is imported where it trains, not when the definitions load (heavy)
        if value and not re.fullmatch(r"[A-Za-z_][\w.]*[.:][A-Za-z_]\w*", value):
            raise ValueError(f"estimator {value!r} is not an import path (package.module.Class)")
        return value

    def resolved(self, task: str, default_adapter: str = "sklearn") -> ModelConfig:
        """With the defaults a use case of `task` fills in: an adapter, and for the sklearn
        adapter an estimator (histogram gradient boosting: fit time linear in rows)."""
        given = "adapter" in self.model_fields_set
        adapter = self.adapter if given else ("sklearn" if self.estimator else default_adapter)
        if self.function:
            if self.estimator or (given and adapter != "function"):
                raise ValueError(
                    "training.function is your own training code: name no estimator and no "
                    "other adapter beside it"
                )
            # what made the model, recorded and pinned like an estimator (never imported
            # where the model is only loaded)
            return self.model_copy(update={"adapter": "function", "estimator": self.function})
        if adapter == "function":
            raise ValueError("training.adapter: function needs training.function")
        estimator = self.estimator
        defaults = ESTIMATOR_DEFAULTS.get(adapter)
        if defaults is None and self.estimator:
            raise ValueError(
                "training.estimator is for the adapters "
                f"{', '.join(ESTIMATOR_DEFAULTS)}; training.adapter is {adapter!r}"
            )
        if defaults is not None and not estimator:
            estimator = defaults[task]
        if adapter in ("lightgbm", "xgboost") and estimator not in defaults.values():
            raise ValueError(
                f"training.estimator {estimator!r}: the {adapter} adapter trains "
                f"{' or '.join(defaults.values())}"
            )
        return self.model_copy(update={"adapter": adapter, "estimator": estimator})


class ShadowConfig(dg.Model, dg.Resolvable):
    """Candidate and champion also scored on labelled production requests, as logged."""

    enabled: bool = Field(
        True, description="score both on the labelled production requests when there are enough"
    )
    window_hours: int = Field(168, ge=1, description="the most recent requests of this window")
    min_labelled: int = Field(
        200, ge=1, description="below this many usable labelled requests, no shadow evaluation"
    )
    when_worse: Literal["reject", "hold", "report"] = Field(
        "reject",
        description="a candidate significantly worse on production traffic is rejected, held, "
        "or only reported",
    )


GATE_METRICS: dict[str, Literal["maximize", "minimize"]] = {
    "accuracy": "maximize",
    "balanced_accuracy": "maximize",
    "f1_macro": "maximize",
    "f1_weighted": "maximize",
    "roc_auc": "maximize",
    "log_loss": "minimize",
    "top1": "maximize",
    "top5": "maximize",
    "macro_accuracy": "maximize",
    "macro_f1": "maximize",
    "rmse": "minimize",
    "mae": "minimize",
    "r2": "maximize",
}
"""The metrics validate computes, and which way is better: a gate names one, and the
direction follows from it."""
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": (
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "f1_weighted",
        "roc_auc",
        "log_loss",
        "top1",
        "top5",
        "macro_accuracy",
        "macro_f1",
    ),
    "regression": ("rmse", "mae", "r2"),
}
"""Which metrics each task's validate computes."""
Task = Literal["classification", "regression"]
DEFAULT_ESTIMATORS = {
    "classification": "sklearn.ensemble.HistGradientBoostingClassifier",
    "regression": "sklearn.ensemble.HistGradientBoostingRegressor",
}
"""What the sklearn adapter trains when the YAML names no estimator."""
LIGHTGBM_ESTIMATORS = {
    "classification": "lightgbm.LGBMClassifier",
    "regression": "lightgbm.LGBMRegressor",
}
"""What the lightgbm adapter trains, by task (its booster stored in LightGBM's own format)."""
XGBOOST_ESTIMATORS = {
    "classification": "xgboost.XGBClassifier",
    "regression": "xgboost.XGBRegressor",
}
"""What the xgboost adapter trains, by task (its booster stored as XGBoost's UBJSON)."""
ESTIMATOR_DEFAULTS = {
    "sklearn": DEFAULT_ESTIMATORS,
    "lightgbm": LIGHTGBM_ESTIMATORS,
    "xgboost": XGBOOST_ESTIMATORS,
}


class GateConfig(dg.Model, dg.Resolvable):
    """The champion/challenger gate: an absolute threshold, then a paired significance test
    of the candidate against the champion on the same rows (docs/architecture.md)."""

    metric: str = Field(
        "accuracy", description=f"what the gate compares: one of {', '.join(GATE_METRICS)}"
    )
    direction: Literal["maximize", "minimize"] | None = Field(
        None,
        description="follows from the metric; a value that contradicts it is refused",
    )
    threshold: float = Field(0.0, description="the candidate must reach this (or stay below)")
    alpha: float = Field(
        0.05, gt=0, lt=1, description="a difference with a p-value below this is significant"
    )
    min_effect: float = Field(
        0.0,
        ge=0,
        description="a significant improvement smaller than this is held, not promoted",
    )
    on_hold: Literal["keep_champion", "promote"] = Field(
        "keep_champion",
        description="HOLD (the difference is not significant): keep the champion, or promote",
    )
    bootstrap_resamples: int = Field(
        2000, ge=100, description="for metrics that are not accuracy-like (macro F1)"
    )
    seed: int = Field(0, description="of the bootstrap")
    shadow: ShadowConfig = ShadowConfig()

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in GATE_METRICS:
            raise ValueError(
                f"unknown metric {metric!r}: validate computes {', '.join(GATE_METRICS)}"
            )
        return metric

    @model_validator(mode="after")
    def _direction_of_the_metric(self) -> GateConfig:
        better = GATE_METRICS[self.metric]
        if self.direction not in (None, better):
            raise ValueError(
                f"direction {self.direction!r} contradicts {self.metric} ({better}); "
                "leave direction out: it follows from the metric"
            )
        return self

    @property
    def better(self) -> Literal["maximize", "minimize"]:
        """Which way the metric is better."""
        return GATE_METRICS[self.metric]


class DeployConfig(dg.Model, dg.Resolvable):
    """Where the champion goes in the GitOps repository."""

    environment: str = Field("dev", description="environments/<environment>/<use case>/values.yaml")
    approval: bool = Field(
        False, description="push a deploy/<env>/<use case>/<version> branch instead of main"
    )


# The service account's token for the `pipelines.kubeflow.org` audience, projected (and
# refreshed by the kubelet) where kfp.Client reads it (kfp's KF_PIPELINES_SA_TOKEN_PATH):
# how a pod calls the KFP API of a multi-user Kubeflow from inside the cluster.
_KFP_TOKEN_MOUNT = {
    "name": "kfp-token",
    "mount_path": "/var/run/secrets/kubeflow/pipelines",
    "read_only": True,
}
_KFP_TOKEN_VOLUME = {
    "name": "kfp-token",
    "projected": {
        "sources": [
            {
                "service_account_token": {
                    "path": "token",
                    "audience": "pipelines.kubeflow.org",
                    "expiration_seconds": 7200,
                }
            }
        ]
    },
}


class GitOpsSecrets(dg.Model, dg.Resolvable):
    """The Kubernetes Secrets with the GitOps credentials, given only to the pod that runs
    deploy: an HTTPS token (MLOPS_GITOPS_TOKEN) and, for SSH remotes, a key and known_hosts
    mounted at `ssh_mount_path` (point MLOPS_GITOPS_SSH_KEY_FILE and
    MLOPS_GITOPS_KNOWN_HOSTS_FILE there). Both are optional: a missing one is skipped."""

    token_secret: str = Field("mlops-gitops-credentials", description="holds MLOPS_GITOPS_TOKEN")
    ssh_secret: str = Field(
        "mlops-gitops-ssh", description="keys ssh-privatekey and known_hosts, for ssh:// remotes"
    )
    ssh_mount_path: str = "/etc/mlops-gitops"
    read_token_secret: str = Field(
        "mlops-gitops-read",
        description="holds MLOPS_GITOPS_READ_TOKEN, a token that can only read the GitOps "
        "repository: given to the monitor's and feedback's pods (which versions git "
        "deployed), never the one that can push",
    )

    def add_reader_to(self, container: dict[str, Any]) -> None:
        container.setdefault("env_from", []).append(
            {"secret_ref": {"name": self.read_token_secret, "optional": True}}
        )

    def add_to(self, container: dict[str, Any], pod: dict[str, Any]) -> None:
        container.setdefault("env_from", []).append(
            {"secret_ref": {"name": self.token_secret, "optional": True}}
        )
        container.setdefault("volume_mounts", []).append(
            {"name": "gitops-ssh", "mount_path": self.ssh_mount_path, "read_only": True}
        )
        pod.setdefault("volumes", []).append(
            {
                "name": "gitops-ssh",
                "secret": {"secret_name": self.ssh_secret, "optional": True, "default_mode": 0o400},
            }
        )


class PodPlacement(dg.Model, dg.Resolvable):
    """Where and how big a run's pod is, as Kubernetes sees it."""

    requests: dict[str, str | int | float] = Field(default_factory=dict)
    limits: dict[str, str | int | float] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, str | int]] = Field(default_factory=list)

    @field_validator("requests", "limits", mode="after")
    @classmethod
    def _quantities(cls, value: dict) -> dict[str, str]:
        # YAML (and Dagster's templating) turn `"2"` into 2; Kubernetes wants quantities.
        return {k: str(v) for k, v in value.items()}

    def k8s_config(
        self,
        kfp_token: bool = False,
        gitops: GitOpsSecrets | None = None,
        api: bool = False,
        gitops_reader: GitOpsSecrets | None = None,
    ) -> dict[str, Any]:
        """The value of a `dagster-k8s/config` tag; with `kfp_token`, the pod can also call
        the KFP API from inside the cluster; with `gitops`, it holds the GitOps credentials
        (only the pod that runs deploy). Without `api` no service-account token is mounted."""
        container: dict[str, Any] = {}
        resources = {k: v for k, v in (("requests", self.requests), ("limits", self.limits)) if v}
        if resources:
            container["resources"] = resources
        pod: dict[str, Any] = {}
        if self.node_selector:
            pod["node_selector"] = self.node_selector
        if self.tolerations:
            pod["tolerations"] = self.tolerations
        if kfp_token:
            container["volume_mounts"] = [_KFP_TOKEN_MOUNT]
            pod["volumes"] = [_KFP_TOKEN_VOLUME]
        if gitops is not None:
            gitops.add_to(container, pod)
        if gitops_reader is not None:
            gitops_reader.add_reader_to(container)
        if not api:
            pod["automount_service_account_token"] = False
        sections = (("container_config", container), ("pod_spec_config", pod))
        return {name: section for name, section in sections if section}


def _cpu_pod() -> PodPlacement:
    return PodPlacement(requests={"cpu": "500m", "memory": "1Gi"}, limits={"memory": "4Gi"})


def _gpu_pod() -> PodPlacement:
    return PodPlacement(
        requests={"cpu": "2", "memory": "8Gi"},
        limits={"memory": "16Gi", "nvidia.com/gpu": "1"},
        node_selector={"mlops-assets/pool": "gpu"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    )


class KubernetesConfig(dg.Model, dg.Resolvable):
    """Run pods on Kubernetes: the DataOps run on CPU nodes, the MLOps run on GPU nodes;
    the GitOps credentials only where deploy runs."""

    dataops: PodPlacement = Field(default_factory=_cpu_pod)
    mlops: PodPlacement = Field(default_factory=_gpu_pod)
    gitops: GitOpsSecrets = GitOpsSecrets()


def cron(value: str) -> str:
    """`value` if Dagster's schedules take it as a cron expression: refused when the YAML
    is checked, naming its key, not when the schedule is built."""
    if not is_valid_cron_string(value):
        raise ValueError(
            f"{value!r} is not a cron expression Dagster takes (five fields, e.g. '0 3 * * 0')"
        )
    return value


class ScheduleConfig(dg.Model, dg.Resolvable):
    retrain_cron: str = Field("0 3 * * 0", description="cron of the periodic retrain")
    retrain_enabled: bool = Field(False, description="the retrain schedule is off by default")
    timezone: str = "UTC"

    @field_validator("retrain_cron")
    @classmethod
    def _retrain_cron_is_cron(cls, value: str) -> str:
        return cron(value)


class ServingConfig(dg.Model, dg.Resolvable):
    """What one request may cost the model server, and how it batches; each is also an
    environment variable (MLOPS_SERVING_<NAME>, upper case) and a chart value."""

    max_body_mb: float = Field(
        8.0, gt=0, description="a larger body gets 413 before it is read past the limit"
    )
    max_rows: int = Field(1024, ge=1, description="rows (the first dimension) per request")
    max_depth: int = Field(8, ge=1, description="nesting of a tensor's JSON `data`")
    read_timeout_seconds: float = Field(
        10.0, gt=0, description="the whole body must arrive within this (slow clients: 408)"
    )
    batching: bool = Field(True, description="coalesce concurrent requests into one predict call")
    max_batch_rows: int = Field(256, ge=1, description="rows of one coalesced predict call")
    max_batch_wait_ms: float = Field(
        0.0,
        ge=0,
        description="wait this long for more requests before predicting; 0: predict at once "
        "when idle, and coalesce whatever queued while the previous call ran",
    )
    max_bisect_calls: int = Field(
        16,
        ge=0,
        description="extra predict calls a failed coalesced call may make to find the "
        "requests that failed it (the others are answered); 0: the whole call fails",
    )
    grace_seconds: float = Field(
        20.0, ge=0, description="on SIGTERM, requests in flight get this long to finish"
    )
    drain_seconds: float = Field(
        0.0,
        ge=0,
        description="on SIGTERM, report not ready and keep serving this long before closing "
        "the listener (the endpoints controller's delay)",
    )


class InferenceLogConfig(dg.Model, dg.Resolvable):
    """What the model server records of the requests it answers (the monitor reads it);
    each setting is also an environment variable, MLOPS_INFERENCE_LOG_<NAME>, and the
    chart's `inferenceLog:` values."""

    enabled: bool = Field(False, description="record answered requests in the storage")
    sample: float = Field(1.0, ge=0, le=1, description="the share of requests recorded")
    inputs: Literal["full", "summary", "none"] = Field(
        "full",
        description="the model's input as it was given to predict: every value, per-row "
        "statistics (large tensors), or nothing",
    )
    flush_rows: int = Field(1000, ge=1, description="write a file when this many are buffered")
    flush_seconds: float = Field(10.0, gt=0, description="or when the oldest is this old")
    max_buffer_rows: int = Field(
        100_000, ge=1, description="past this (storage down) the oldest records are dropped"
    )
    max_buffer_mb: float = Field(
        64.0,
        gt=0,
        description="or past this many MiB (well under the chart's 512Mi memory limit)",
    )


class RollbackConfig(dg.Model, dg.Resolvable):
    """When the monitor decides that a newly deployed version regressed."""

    enabled: bool = Field(True, description="the monitor decides rollbacks; a sensor runs them")
    min_labelled: int = Field(
        200, ge=1, description="labelled requests each version needs before they are compared"
    )
    alpha: float = Field(
        0.05, gt=0, lt=1, description="the new version is worse when Fisher's p is below this"
    )
    max_error_rate: float = Field(
        0.05, gt=0, le=1, description="or when this share of its requests failed"
    )
    min_requests: int = Field(100, ge=1, description="requests before the error rate counts")


class MonitorConfig(dg.Model, dg.Resolvable):
    """The production side: feedback, the monitor asset, its checks and the retraining
    they trigger (docs/architecture.md, "Monitoring")."""

    environment: str = Field(
        "", description="the environment the checks judge; empty: deploy.environment"
    )
    window_hours: int = Field(24, ge=1, description="the monitor reports on the last N hours")
    min_labelled: int = Field(
        200, ge=1, description="below this many labelled requests the checks say not enough data"
    )
    min_requests: int = Field(200, ge=1, description="below this many requests drift is not judged")
    tolerance: float = Field(
        0.02,
        ge=0,
        description="live_metric_holds fails when the live metric's 95% interval lies wholly "
        "below the release's test value minus this (a regression's RMSE or MAE: wholly above "
        "the test value times 1 + this)",
    )
    drift_threshold: float | None = Field(
        None,
        gt=0,
        description="PSI above which an input feature counts as drifted; empty: the kind's "
        "(observe's drift_threshold for tabular use cases, else 0.2)",
    )
    drift_error_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="inputs_not_drifting is an ERROR when this share of the features drifted, "
        "a WARN when any did",
    )
    drift_bins: int = Field(10, ge=2, description="quantile bins of the training split per feature")
    feedback_days: int = Field(
        7, ge=1, description="feedback is joined to the inference log of the last N days"
    )
    schedule: str = Field("*/10 * * * *", description="cron of the feedback and monitor run")

    @field_validator("schedule")
    @classmethod
    def _schedule_is_cron(cls, value: str) -> str:
        return cron(value)

    retrain: bool = Field(True, description="a failing check starts retraining")
    cooldown_hours: float = Field(
        6.0, ge=0, description="no second retraining from the monitor within this time"
    )
    rollback: RollbackConfig = RollbackConfig()
    max_file_mb: float = Field(
        256.0,
        gt=0,
        description="a log or labelled file decoding to more than this is refused, unread "
        "past it (the pod's memory is the bound: a tiny compressed file can decode to GBs)",
    )
