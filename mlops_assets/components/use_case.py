"""The use-case component: one `defs.yaml` becomes the asset graph of a use case.

A new project is a new YAML file; `dg list defs` and `dg check yaml` work on it.
"""

from __future__ import annotations

import re

import dagster as dg
from pydantic import field_validator

from mlops_assets.components.config import (
    DatasetConfig,
    DeployConfig,
    GateConfig,
    KubernetesConfig,
    ModelConfig,
    ObserveConfig,
    ScheduleConfig,
    SensorConfig,
    SplitConfig,
)


class UseCase(dg.Component, dg.Model, dg.Resolvable):
    """A use case: its data contract, its assets (`<name>/<step>`), checks, sensor and jobs."""

    name: str
    description: str = ""
    dataset: DatasetConfig = DatasetConfig()
    split: SplitConfig = SplitConfig()
    observe: ObserveConfig = ObserveConfig()
    sensor: SensorConfig = SensorConfig()
    training: ModelConfig = ModelConfig()
    gate: GateConfig = GateConfig()
    deploy: DeployConfig = DeployConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    schedules: ScheduleConfig = ScheduleConfig()

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError(f"use case name {value!r} must match [a-z][a-z0-9_]*")
        return value

    @property
    def landing(self) -> str:
        return (self.dataset.landing or f"landing/{self.name}").strip("/")

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
        from mlops_assets.dataops.assets import build_dataops_assets, step_key
        from mlops_assets.dataops.sensor import build_landing_sensor
        from mlops_assets.mlops.assets import build_mlops_assets
        from mlops_assets.mlops.consistency import build_consistency_check
        from mlops_assets.mlops.sensor import build_new_dataset_sensor

        lsfb = self.dataset.kind == "lsfb_isol"
        if lsfb:
            from mlops_assets.lsfb.assets import build_lsfb_dataops_assets
            from mlops_assets.lsfb.sensor import build_source_sensor

            assets = build_lsfb_dataops_assets(self)
        else:
            assets = build_dataops_assets(self)
        split_key = step_key(self.name, "split")
        mlops_assets = build_mlops_assets(self, split_key)
        dataops_job = dg.define_asset_job(
            self.dataops_job_name,
            selection=dg.AssetSelection.assets(*assets),
            description=f"DataOps of {self.name}: acquire, observe, clean, transform, split.",
            tags=self._run_tags("dataops", self.kubernetes.dataops.k8s_config()),
        )
        from mlops_assets.settings import load_settings

        settings = load_settings()
        running = self.sensor.default_status == "running"
        interval = settings.sensor_interval_seconds or self.sensor.interval_seconds
        sensor = (
            build_source_sensor(self.name, self.dataset.lsfb, dataops_job, interval, running)
            if lsfb
            else build_landing_sensor(self.name, self.landing, dataops_job, interval, running)
        )
        per_step = settings.executor == "k8s_job"
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
        dataset_sensor = build_new_dataset_sensor(
            self.name, split_key, mlops_job, self.sensor.default_status == "running"
        )
        jobs = [dataops_job, mlops_job]
        schedules = [self._retrain_schedule(mlops_job)]
        if not lsfb:  # drift of tabular features; a new LSFB release is observed when it comes
            jobs.append(reobserve_job := self._reobserve_job())
            schedules.append(self._reobserve_schedule(reobserve_job))
        return dg.Definitions(
            assets=[*assets, *mlops_assets],
            asset_checks=[build_consistency_check(self.name, self.deploy.environment)],
            jobs=jobs,
            sensors=[sensor, dataset_sensor],
            schedules=schedules,
        )

    def _reobserve_job(self):
        from mlops_assets.dataops.assets import step_key

        return dg.define_asset_job(
            f"{self.name}_reobserve",
            selection=dg.AssetSelection.assets(step_key(self.name, "observe")),
            description=f"Re-observes all of {self.name}'s data for drift against the reference.",
            config={"ops": {f"{self.name}__observe": {"config": {"full": True}}}},
            tags=self._run_tags("dataops", self.kubernetes.dataops.k8s_config()),
        )

    def _retrain_schedule(self, mlops_job) -> dg.ScheduleDefinition:
        return dg.ScheduleDefinition(
            name=f"{self.name}_retrain_schedule",
            job=mlops_job,
            cron_schedule=self.schedules.retrain_cron,
            execution_timezone=self.schedules.timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING
            if self.schedules.retrain_enabled
            else dg.DefaultScheduleStatus.STOPPED,
            description="Periodic retrain on the current dataset version (off by default).",
        )

    def _reobserve_schedule(self, reobserve_job) -> dg.ScheduleDefinition:
        return dg.ScheduleDefinition(
            name=f"{self.name}_reobserve_schedule",
            job=reobserve_job,
            cron_schedule=self.schedules.reobserve_cron,
            execution_timezone=self.schedules.timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING
            if self.sensor.default_status == "running"
            else dg.DefaultScheduleStatus.STOPPED,
            description="Full re-observation of the data for drift.",
        )
