"""The use-case component base: one `defs.yaml` becomes the asset graph of a use case.

Each dataset kind subclasses it with its own `dataset:` model (and any settings only it
has): `mlops_assets.components.tabular.TabularUseCase`, `mlops_assets.components.lsfb.LsfbUseCase`.
The base builds what every kind shares (the MLOps half, the jobs, the schedules) and asks
the kind for the rest. A new project is a new YAML file; `dg list defs` and `dg check
yaml` work on it. What the environment decides (the executor, a sensor interval, whether
this is a branch deployment) comes in as `BuildOptions`, which `build_defs` reads from the
settings: `dg list defs` and `dg check defs` under `MLOPS_ENV=k8s` see what the code server
builds there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import dagster as dg
from pydantic import Field, field_validator, model_validator

from mlops_assets.core.config import (
    TASK_METRICS,
    DeployConfig,
    GateConfig,
    InferenceLogConfig,
    KubernetesConfig,
    ModelConfig,
    MonitorConfig,
    ScheduleConfig,
    SensorConfig,
    ServingConfig,
    Task,
)
from mlops_assets.core.kind import DatasetKind
from mlops_assets.core.spec import UseCaseSpec
from mlops_assets.core.steps import step_key
from mlops_assets.mlops.assets import build_mlops_assets
from mlops_assets.mlops.consistency import build_consistency_check
from mlops_assets.mlops.sensor import build_gate_sensor, build_new_dataset_sensor
from mlops_assets.monitoring.assets import build_monitoring
from mlops_assets.settings import Settings, load_settings


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


def build_options(settings: Settings) -> BuildOptions:
    """What of the environment changes a use case's definitions."""
    return BuildOptions(
        executor=settings.executor,
        sensor_interval_seconds=settings.sensor_interval_seconds,
        branch_deployment=settings.env == "branch",
    )


def _production_sample(*args: Any, **kwargs: Any) -> Any:
    """The production wing's labelled requests, for validate's shadow evaluation (its
    module imports numpy: at run time, not when the definitions load)."""
    from mlops_assets.monitoring.shadow import production_sample

    return production_sample(*args, **kwargs)


class UseCase(dg.Component, dg.Model, dg.Resolvable):
    """A use case: its assets (`<name>/<step>`), checks, sensors, jobs and schedules.
    Subclasses declare `dataset`, a model implementing `DatasetKind`."""

    if TYPE_CHECKING:
        dataset: DatasetKind

    name: str
    description: str = ""
    owners: list[str] = Field(
        default_factory=list,
        description="who owns the use case's assets: emails or team:<name>, as the UI shows them",
    )
    task: Task = Field(
        "classification",
        description="classification (class labels of any type: binary or multiclass) or "
        "regression (a numeric target); it decides the metrics a gate may name",
    )
    sensor: SensorConfig = SensorConfig()
    training: ModelConfig = ModelConfig()
    gate: GateConfig = GateConfig()
    deploy: DeployConfig = DeployConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    schedules: ScheduleConfig = ScheduleConfig()
    serving: ServingConfig = ServingConfig()
    inference_log: InferenceLogConfig = InferenceLogConfig()
    monitor: MonitorConfig = MonitorConfig()

    default_adapter: ClassVar[str] = "sklearn"
    """What trains when the YAML names no adapter."""

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError(f"use case name {value!r} must match [a-z][a-z0-9_]*")
        return value

    @model_validator(mode="after")
    def _task(self) -> UseCase:
        if self.gate.metric not in TASK_METRICS[self.task]:
            raise ValueError(
                f"gate.metric {self.gate.metric!r} is not a {self.task} metric: one of "
                f"{', '.join(TASK_METRICS[self.task])}"
            )
        problem = self.dataset.task_problem(self.task)
        if problem:
            raise ValueError(problem)
        self.training = self.training.resolved(self.task, self.default_adapter)
        return self

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        """The use case's definitions for the environment the settings describe (what the
        code location, `dg list defs` and `dg check defs` build alike)."""
        return self.definitions(build_options(load_settings()))

    # --- the Dagster side of the kind: each kind's component type implements it
    def dataops_assets(self, spec: UseCaseSpec) -> list[dg.AssetsDefinition]:
        """The five assets `<name>/acquire..split`, with their checks."""
        raise NotImplementedError(f"{type(self).__name__} builds no DataOps assets")

    def trigger_sensor(self, spec: UseCaseSpec, job: Any) -> dg.SensorDefinition:
        """The sensor that starts the DataOps job when new data arrives."""
        raise NotImplementedError(f"{type(self).__name__} has no trigger sensor")

    def extra_definitions(self, spec: UseCaseSpec) -> tuple[list[Any], list[Any]]:
        """Jobs and schedules of this kind beyond the use case's own (none by default)."""
        return [], []

    def drift_threshold(self) -> float:
        """PSI at which the monitor counts an input feature as drifted."""
        return 0.2

    def production_batch(self, labelled: Any) -> tuple[str, bytes, int] | None:
        """Labelled production requests (the inference log's columns, `inputs` in the
        model's input space, and `label`) as a landing file of this kind: (landing prefix,
        content, rows). None (the default): the kind cannot take them, and retraining runs
        DataOps on its source's newest data."""
        return None

    def spec(self, options: BuildOptions) -> UseCaseSpec:
        """What the builders are told of this use case for one build: its blocks and what
        the environment's options decide (nothing of it is kept here)."""
        return UseCaseSpec(
            name=self.name,
            task=self.task,
            dataset=self.dataset,
            training=self.training,
            gate=self.gate,
            deploy=self.deploy,
            kubernetes=self.kubernetes,
            schedules=self.schedules,
            serving=self.serving,
            inference_log=self.inference_log,
            monitor=self.monitor,
            sensor=self.sensor,
            per_step=options.executor == "k8s_job",
            # on a branch deployment nothing starts a run by itself until someone turns it on
            running=self.sensor.default_status == "running" and not options.branch_deployment,
            sensor_interval_seconds=options.sensor_interval_seconds or self.sensor.interval_seconds,
            drift_threshold=self.drift_threshold(),
            production_batch=self.production_batch,
            owners=tuple(self.owners),
            production_samples=_production_sample,
        )

    def definitions(self, options: BuildOptions) -> dg.Definitions:
        spec = self.spec(options)
        assets = self.dataops_assets(spec)
        split_key = step_key(self.name, "split")
        gate_assets, release_assets = build_mlops_assets(spec, split_key)
        dataops_job = dg.define_asset_job(
            spec.dataops_job_name,
            selection=dg.AssetSelection.assets(*assets),
            description=f"DataOps of {self.name}: acquire, observe, clean, transform, split.",
            tags=spec.run_tags("dataops"),
        )
        running, interval = spec.running, spec.sensor_interval_seconds
        sensor = self.trigger_sensor(spec, dataops_job)
        mlops_job = dg.define_asset_job(
            spec.mlops_job_name,
            selection=dg.AssetSelection.assets(*gate_assets),
            description=f"MLOps of {self.name}: train, then validate (the gate). A REJECT fails "
            f"the run with the gate's reason; otherwise {spec.release_job_name} follows.",
            # with the per-step executor the run pod only coordinates (CPU placement) and the
            # train step's own pod trains; the chart limits concurrent runs by mlops/gpu, which
            # a run that leaves the GPU to a KFP cluster does not hold
            tags={
                **spec.tags(
                    "mlops",
                    # the per-step run pod creates the step pods: it needs the API
                    self.kubernetes.dataops.k8s_config(api=True)
                    if spec.per_step
                    else spec.training_pod_config(),
                ),
                **({} if spec.trains_on_kfp_cluster else {"mlops/gpu": "true"}),
            },
        )
        release_job = dg.define_asset_job(
            spec.release_job_name,
            selection=dg.AssetSelection.assets(*release_assets),
            description=f"Release and deploy of {self.name}: the candidate the gate passed into "
            f"the registry, the champion into the GitOps repository. {self.name}_gate_sensor "
            "starts it.",
            # in process the run pod (a CPU pod) deploys and is the one that holds the GitOps
            # credentials; under the per-step executor it creates the step pods
            tags=spec.tags(
                "release",
                self.kubernetes.dataops.k8s_config(api=True)
                if spec.per_step
                else spec.deploy_pod_config(),
            ),
        )
        dataset_sensor = build_new_dataset_sensor(self.name, split_key, mlops_job, running)
        gate_sensor = build_gate_sensor(
            self.name, step_key(self.name, "validate"), mlops_job.name, release_job, running
        )
        extra_jobs, extra_schedules = self.extra_definitions(spec)
        production, monitor_jobs, monitor_schedules, monitor_sensors = build_monitoring(
            spec, dataops_job, running, interval
        )
        retrain = self.schedules.retrain_enabled and not options.branch_deployment
        return dg.Definitions(
            # each asset links to the code that defines it (and to git, with MLOPS_CODE_REPO_URL)
            # each asset's code reference (definitions.py links them all to git)
            assets=list(
                dg.with_source_code_references(
                    [*assets, *gate_assets, *release_assets, *production]
                )
            ),
            asset_checks=[build_consistency_check(self.name, self.deploy.environment)],
            jobs=[dataops_job, mlops_job, release_job, *extra_jobs, *monitor_jobs],
            sensors=[sensor, dataset_sensor, gate_sensor, *monitor_sensors],
            schedules=[
                self._retrain_schedule(mlops_job, retrain),
                *extra_schedules,
                *monitor_schedules,
            ],
        )

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
