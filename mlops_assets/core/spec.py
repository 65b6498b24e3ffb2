"""What a builder is told of a use case: its YAML blocks and what the build decided.

The component (`components/use_case.py`) sits on top: it makes one frozen `UseCaseSpec` per
build and hands it to the builders below it (the MLOps half, the production side, a kind's
DataOps), which never see the component. So a builder imports nothing above this layer, and
nothing about one build (the executor, a sensor interval) is kept on the component.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_assets.core.config import (
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
from mlops_assets.core.kind import DatasetKind
from mlops_assets.core.production import ProductionSamples

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class UseCaseSpec:
    name: str
    dataset: DatasetKind
    training: ModelConfig
    gate: GateConfig
    deploy: DeployConfig
    kubernetes: KubernetesConfig
    schedules: ScheduleConfig
    serving: ServingConfig
    inference_log: InferenceLogConfig
    monitor: MonitorConfig
    sensor: SensorConfig
    per_step: bool = False
    """The definitions run a pod per step: every run pod creates its step pods, so it (and
    no step pod) may call the Kubernetes API."""
    running: bool = True
    """What starts runs by itself starts running (off on a branch deployment)."""
    sensor_interval_seconds: int = 30
    drift_threshold: float = 0.2
    """PSI at which the monitor counts a production input as drifted (the kind's)."""
    production_batch: Callable[[pd.DataFrame], tuple[str, bytes, int] | None] | None = None
    """The kind's landing file of labelled production requests; None: it takes none."""
    production_samples: ProductionSamples | None = None
    """The production wing's labelled requests, for validate's shadow evaluation."""
    owners: tuple[str, ...] = ()
    task: str = "classification"
    """classification or regression: which metrics validate computes."""
    """The YAML's `owners` (emails, or team:<name>): on every asset, as the UI shows them."""

    @property
    def dataops_job_name(self) -> str:
        return f"{self.name}_dataops"

    @property
    def mlops_job_name(self) -> str:
        return f"{self.name}_mlops"

    @property
    def release_job_name(self) -> str:
        return f"{self.name}_release"

    def common(self, stage: str) -> dict[str, Any]:
        """What every asset of a stage of this use case carries: its group, its stage tag and
        the use case's owners."""
        return {
            "group_name": self.name,
            "tags": {"mlops/stage": stage},
            "owners": list(self.owners),
        }

    @property
    def model_kind(self) -> str:
        """The asset kind the UI shows for the model's family (its adapter's library)."""
        adapter = self.training.adapter.rsplit(":", 1)[-1].lower()
        for prefix, kind in (("sklearn", "scikitlearn"), ("keras", "keras"), ("xgb", "xgboost")):
            if adapter.startswith(prefix):
                return kind
        return "python"

    @property
    def trains_on_kfp_cluster(self) -> bool:
        """A KFP cluster trains (on its own GPU pods); the Dagster pod only submits and follows."""
        return self.training.backend == "kubeflow" and self.training.kubeflow.runner == "cluster"

    def training_pod_config(self, gitops: bool = False) -> dict[str, Any]:
        """`dagster-k8s/config` of the pod the train step runs in: the GPU pool, or when a KFP
        cluster trains, a CPU pod (the DataOps placement) that can authenticate to its API.
        With `gitops` (the MLOps run pod of the in-process executor, which also deploys) it
        holds the GitOps credentials."""
        secrets = self.kubernetes.gitops if gitops else None
        if self.trains_on_kfp_cluster:
            return self.kubernetes.dataops.k8s_config(kfp_token=True, gitops=secrets)
        return self.kubernetes.mlops.k8s_config(gitops=secrets)

    def deploy_pod_config(self) -> dict[str, Any]:
        """`dagster-k8s/config` of the deploy step's own pod (per-step executor): a CPU pod,
        the only one that holds the GitOps credentials."""
        return self.kubernetes.dataops.k8s_config(gitops=self.kubernetes.gitops)

    def tags(self, stage: str, k8s_config: dict[str, Any]) -> dict[str, Any]:
        """Tags of a job's runs; on Kubernetes `dagster-k8s/config` places the run's one pod,
        and the run queue lets one run per use case and stage (`mlops/lane`) run at a time."""
        return {
            "mlops/use_case": self.name,
            "mlops/stage": stage,
            "mlops/lane": f"{self.name}-{stage}",
            "dagster-k8s/config": k8s_config,
        }

    def run_tags(self, stage: str) -> dict[str, Any]:
        """Tags of a DataOps-placed job (a kind's extra jobs use them); under the per-step
        executor its run pod coordinates, with the API token to do so."""
        return self.tags(stage, self.kubernetes.dataops.k8s_config(api=self.per_step))
