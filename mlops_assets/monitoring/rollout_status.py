"""Does the cluster run what git names? An Argo Rollouts canary aborted by its analysis.

When the analysis aborts a canary, Argo Rollouts scales the canary down and the stable
version serves again, but git (and so Argo CD) still names the aborted version, and the
next sync brings it back. The monitor reads the Rollout of the environment's model (off on
the local default: `MLOPS_ROLLOUT_STATUS`), and a divergence becomes a rollback decision,
which the existing rollback path commits to git.

Versions come from the pod templates' `app.kubernetes.io/version` label (charts/model-api):
the Rollout's own template is git's, the stable ReplicaSet's is what serves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mlops_assets.settings import env

VERSION_LABEL = "app.kubernetes.io/version"


@dataclass(frozen=True)
class RolloutState:
    name: str
    phase: str
    """Healthy, Progressing, Paused, Degraded (Argo Rollouts' status.phase)."""
    aborted: bool
    git_version: str
    """The version of the Rollout's pod template: what Argo CD applied from git."""
    serving_version: str
    """The version of the stable ReplicaSet: what answers requests."""
    message: str

    @property
    def diverged(self) -> bool:
        """Git names a version the cluster gave up on."""
        return self.aborted and self.git_version != self.serving_version

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"diverged": self.diverged}


def _version(template_owner: dict | None) -> str:
    labels = (
        ((template_owner or {}).get("spec") or {}).get("template", {}).get("metadata", {})
    ).get("labels") or {}
    return str(labels.get(VERSION_LABEL, ""))


def rollout_state(rollout: dict, stable_replica_set: dict | None) -> RolloutState:
    """The state of a Rollout from its object and its stable ReplicaSet's (None when the
    stable pods are the Rollout's current template, or there are none yet)."""
    status = rollout.get("status") or {}
    git_version = _version(rollout)
    stable, current = status.get("stableRS"), status.get("currentPodHash")
    serving = git_version if not stable or stable == current else _version(stable_replica_set)
    return RolloutState(
        name=rollout["metadata"]["name"],
        phase=str(status.get("phase", "")),
        aborted=bool(status.get("abort")),
        git_version=git_version,
        serving_version=serving,
        message=str(status.get("message", "")),
    )


def rollout_name(environment: str, use_case: str) -> str:
    """charts/model-api's fullname: release (the environment, as the ApplicationSet names
    it) and use case."""
    return f"{environment}-{use_case}".replace("_", "-")[:63].rstrip("-")


def rollout_namespace(environment: str) -> str:
    return (env("MLOPS_ROLLOUT_NAMESPACE") or "mlops-{environment}").format(environment=environment)


def reading_enabled() -> bool:
    return (env("MLOPS_ROLLOUT_STATUS") or "off").lower() in ("on", "true", "1")


def read_rollout(environment: str, use_case: str, api_client: Any = None) -> RolloutState | None:
    """The environment's Rollout through the Kubernetes API (a kubeconfig where there is
    one, else the pod's service account); None when the model is not deployed as a Rollout.
    The service account needs `get` on rollouts and replicasets there, nothing more."""
    from kubernetes import client, config

    if api_client is None:
        kubeconfig = env("KUBECONFIG")  # (the library reads it once, at its import)
        if kubeconfig:
            config.load_kube_config(config_file=kubeconfig)
        else:
            config.load_config()  # ~/.kube/config, else the pod's service account
        api_client = client.ApiClient()
    namespace, name = rollout_namespace(environment), rollout_name(environment, use_case)
    try:
        rollout = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
            "argoproj.io", "v1alpha1", namespace, "rollouts", name
        )
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    status = rollout.get("status") or {}
    stable = status.get("stableRS")
    replica_set = None
    if stable and stable != status.get("currentPodHash"):
        found = client.AppsV1Api(api_client).read_namespaced_replica_set(
            f"{name}-{stable}", namespace
        )
        replica_set = api_client.sanitize_for_serialization(found)
    return rollout_state(rollout, replica_set)
