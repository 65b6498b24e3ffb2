"""The use-case component base: one `defs.yaml` becomes the asset graph of a use case.

Each dataset kind subclasses it with its own `dataset:` model (and any settings only it
has): `mlops_assets.kinds.tabular.TabularUseCase`, `mlops_assets.kinds.lsfb.LsfbUseCase`.
The base builds what every kind shares (the MLOps half, the jobs, the schedules) and asks
the kind for the rest. A new project is a new YAML file; `dg list defs` and `dg check
yaml` work on it. What the environment decides (the executor, a sensor interval, whether
this is a branch deployment) comes in as `BuildOptions`: `build_defs` reads no setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import PrivateAttr, field_validator

from mlops_assets.components.config import (
    DeployConfig,
    GateConfig,
    InferenceLogConfig,
    KubernetesConfig,
    ModelConfig,
    MonitorConfig,
    ScheduleConfig,
    SensorConfig,
    ServingConfig,
)

if TYPE_CHECKING:
    from mlops_assets.pipeline.kind import DatasetKind


@dataclass(frozen=True)
class BuildOptions:
    """What the environment decides about the definitions, built from `settings.py` by
    `definitions.py` (the defaults are the local default's)."""

    executor: str = "in_process"
    """k8s_job: a pod per step, so the MLOps run pod only coordinates."""
    sensor_interval_seconds: int | None = None
    """Overrides every use case's sensor interval (demos, tests, the latency benchmark)."""
    branch_deployment: bool = False
    """A Dagster+ branch deployment: what launches runs by itself starts stopped."""


class UseCase(dg.Component, dg.Model, dg.Resolvable):
    """A use case: its assets (`<name>/<step>`), checks, sensors, jobs and schedules.
    Subclasses declare `dataset`, a model implementing `DatasetKind`."""

    if TYPE_CHECKING:
        dataset: DatasetKind

    name: str
    description: str = ""
    sensor: SensorConfig = SensorConfig()
    _per_step: bool = PrivateAttr(default=False)
    """Whether the definitions being built run a pod per step: then every run pod creates
    its step pods, so it (and no step pod) may call the Kubernetes API."""
    training: ModelConfig = ModelConfig()
    gate: GateConfig = GateConfig()
    deploy: DeployConfig = DeployConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    schedules: ScheduleConfig = ScheduleConfig()
    serving: ServingConfig = ServingConfig()
    inference_log: InferenceLogConfig = InferenceLogConfig()
    monitor: MonitorConfig = MonitorConfig()

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError(f"use case name {value!r} must match [a-z][a-z0-9_]*")
        return value

    @property
    def dataops_job_name(self) -> str:
        return f"{self.name}_dataops"

    @property
    def mlops_job_name(self) -> str:
        return f"{self.name}_mlops"

    @property
    def trains_on_kfp_cluster(self) -> bool:
        """A KFP cluster trains (on its own GPU pods); the Dagster pod only submits and follows."""
        return self.training.backend == "kubeflow" and self.training.kubeflow.runner == "cluster"

    def training_pod_config(self, gitops: bool = False) -> dict:
        """`dagster-k8s/config` of the pod the train step runs in: the GPU pool, or when a KFP
        cluster trains, a CPU pod (the DataOps placement) that can authenticate to its API.
        With `gitops` (the MLOps run pod of the in-process executor, which also deploys) it
        holds the GitOps credentials."""
        secrets = self.kubernetes.gitops if gitops else None
        if self.trains_on_kfp_cluster:
            return self.kubernetes.dataops.k8s_config(kfp_token=True, gitops=secrets)
        return self.kubernetes.mlops.k8s_config(gitops=secrets)

    def deploy_pod_config(self) -> dict:
        """`dagster-k8s/config` of the deploy step's own pod (per-step executor): a CPU pod,
        the only one that holds the GitOps credentials."""
        return self.kubernetes.dataops.k8s_config(gitops=self.kubernetes.gitops)

    def _run_tags(self, stage: str, k8s_config: dict) -> dict:
        """Tags of a job's runs; on Kubernetes `dagster-k8s/config` places the run's one pod,
        and the run queue lets one run per use case and stage (`mlops/lane`) run at a time."""
        return {
            "mlops/use_case": self.name,
            "mlops/stage": stage,
            "mlops/lane": f"{self.name}-{stage}",
            "dagster-k8s/config": k8s_config,
        }

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """What `dg list defs` and `dg check yaml` see: the local default's definitions
        (the code location builds them with the environment's options, definitions.py)."""
        return self.definitions(BuildOptions())

    def definitions(self, options: BuildOptions) -> dg.Definitions:
        from mlops_assets.mlops.assets import build_mlops_assets
        from mlops_assets.mlops.consistency import build_consistency_check
        from mlops_assets.mlops.sensor import build_new_dataset_sensor
        from mlops_assets.monitoring.assets import build_monitoring
        from mlops_assets.pipeline.steps import step_key

        self._per_step = options.executor == "k8s_job"
        assets = self.dataset.build_dataops(self)
        split_key = step_key(self.name, "split")
        mlops_assets = build_mlops_assets(self, split_key)
        dataops_job = dg.define_asset_job(
            self.dataops_job_name,
            selection=dg.AssetSelection.assets(*assets),
            description=f"DataOps of {self.name}: acquire, observe, clean, transform, split.",
            tags=self.run_tags("dataops"),
        )
        # on a branch deployment nothing starts a run by itself until someone turns it on
        running = self.sensor.default_status == "running" and not options.branch_deployment
        interval = options.sensor_interval_seconds or self.sensor.interval_seconds
        sensor = self.dataset.build_trigger_sensor(self, dataops_job, interval, running)
        per_step = self._per_step
        mlops_job = dg.define_asset_job(
            self.mlops_job_name,
            selection=dg.AssetSelection.assets(*mlops_assets),
            description=f"MLOps of {self.name}: train, validate (the gate), release, deploy.",
            # with the per-step executor the run pod only coordinates (CPU placement) and the
            # train step's own pod trains; the chart limits concurrent runs by mlops/gpu, which
            # a run that leaves the GPU to a KFP cluster does not hold
            tags={
                **self._run_tags(
                    "mlops",
                    # the per-step run pod creates the step pods: it needs the API
                    self.kubernetes.dataops.k8s_config(api=True)
                    if per_step
                    else self.training_pod_config(gitops=True),
                ),
                **({} if self.trains_on_kfp_cluster else {"mlops/gpu": "true"}),
            },
        )
        dataset_sensor = build_new_dataset_sensor(self.name, split_key, mlops_job, running)
        extra_jobs, extra_schedules = self.dataset.extra_definitions(self, running)
        production, monitor_jobs, monitor_schedules, monitor_sensors = build_monitoring(
            self, dataops_job, running, interval, per_step
        )
        retrain = self.schedules.retrain_enabled and not options.branch_deployment
        return dg.Definitions(
            assets=[*assets, *mlops_assets, *production],
            asset_checks=[build_consistency_check(self.name, self.deploy.environment)],
            jobs=[dataops_job, mlops_job, *extra_jobs, *monitor_jobs],
            sensors=[sensor, dataset_sensor, *monitor_sensors],
            schedules=[
                self._retrain_schedule(mlops_job, retrain),
                *extra_schedules,
                *monitor_schedules,
            ],
        )

    def run_tags(self, stage: str) -> dict:
        """Tags of a DataOps-placed job of this use case (a kind's extra jobs use them);
        under the per-step executor its run pod coordinates, with the API token to do so."""
        return self._run_tags(stage, self.kubernetes.dataops.k8s_config(api=self._per_step))

    def _retrain_schedule(self, mlops_job, running: bool) -> dg.ScheduleDefinition:
        return dg.ScheduleDefinition(
            name=f"{self.name}_retrain_schedule",
            job=mlops_job,
            cron_schedule=self.schedules.retrain_cron,
            execution_timezone=self.schedules.timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING
            if running
            else dg.DefaultScheduleStatus.STOPPED,
            description="Periodic retrain on the current dataset version (off by default).",
        )
