"""deploy: the registry's champion into the GitOps repository.

It deploys the champion, not "the release of this run": a re-execution, or
the next run after the remote was down, deploys what is champion then.
"""

from __future__ import annotations

from mlops_assets.components.config import DeployConfig
from mlops_assets.gitops.deploy import DeployRequest, DeployResult
from mlops_assets.gitops.resource import GitOpsResource
from mlops_assets.registry import ModelRegistry
from mlops_assets.storage import ObjectStorage


class NothingToDeployError(RuntimeError):
    """The registry has no champion yet."""


def deploy_request(
    registry: ModelRegistry,
    config: DeployConfig,
    run_id: str,
    version: int | None = None,
    allow_older: bool = False,
) -> DeployRequest:
    champion = registry.champion()
    if version is None:
        if not champion:
            raise NothingToDeployError(f"{registry.use_case} has no champion to deploy yet")
        version = champion["version"]
    _, meta = registry.artifact(version)  # the artifact must exist and match its sha256
    gate = meta.get("gate", {})
    return DeployRequest(
        environment=config.environment,
        use_case=registry.use_case,
        model={
            "name": registry.use_case,
            "version": str(version),
            "uri": meta["artifact_uri"],
            "sha256": meta["artifact_sha256"],
        },
        summary=[
            f"Test {gate.get('metric', 'accuracy')}: {meta['metrics']['accuracy']:.4f} "
            f"on dataset {meta['dataset_version']}.",
            f"Gate: {gate.get('summary', 'n/a')}",
        ],
        trailers={
            "Model-Version": str(version),
            "Model-Sha256": meta["artifact_sha256"],
            "Dataset-Version": meta["dataset_version"],
            "Dagster-Run-Id": run_id or meta.get("dagster_run_id", ""),
        },
        approval=config.approval,
        allow_older=allow_older,
    )


def run_deploy(
    storage: ObjectStorage,
    gitops: GitOpsResource,
    use_case: str,
    config: DeployConfig,
    run_id: str,
) -> tuple[DeployResult, DeployRequest]:
    registry = ModelRegistry(storage, use_case)
    request = deploy_request(registry, config, run_id)
    return gitops.repo((use_case,)).deploy(request), request
