"""deploy: the registry's champion into the GitOps repository.

It deploys the champion, not "the release of this run": a re-execution, or
the next run after the remote was down, deploys what is champion then.
"""

from __future__ import annotations

from typing import Any

from mlops_assets.core.config import DeployConfig
from mlops_assets.errors import MlopsError
from mlops_assets.gitops.repository import DeployRequest, DeployResult, GitOpsError, ImageRequest
from mlops_assets.gitops.resource import GitOpsResource
from mlops_assets.gitops.values import read_section
from mlops_assets.models import adapter_name, check_stored_adapter
from mlops_assets.registry import ModelRegistry
from mlops_assets.storage import ObjectStorage


class NothingToDeployError(MlopsError, RuntimeError):
    """The registry has no champion yet."""


def pinned(meta: dict[str, Any]) -> dict[str, str]:
    """What the values file pins besides the hashes, so the server (which never reads the
    use case's YAML) checks the artifact against it: the estimator class, the hash of the
    rule for the types its artifact may hold, and the request contract's version."""
    estimator = str(meta.get("estimator") or "")
    if not estimator:
        return {}
    return {
        "estimator": estimator,
        "trustedTypes": str(meta.get("trusted_types") or ""),
        "contractVersion": str(meta.get("request", {}).get("version", "")),
    }


def deploy_request(
    registry: ModelRegistry,
    config: DeployConfig,
    run_id: str,
    adapter: str,
    version: int | None = None,
    allow_older: bool = False,
    headline: str = "",
    summary: list[str] | None = None,
    trailers: dict[str, str] | None = None,
) -> DeployRequest:
    champion = registry.champion()
    if version is None:
        if not champion:
            raise NothingToDeployError(f"{registry.use_case} has no champion to deploy yet")
        version = champion["version"]
    _, meta = registry.artifact(version)  # the artifact must exist and match its sha256
    # The values file names the adapter the server runs: the YAML's, never the stored one's.
    check_stored_adapter(meta.get("adapter"), adapter, f"{registry.use_case} v{version} metadata")
    gate = meta.get("gate", {})
    metric = gate.get("metric", "accuracy")
    return DeployRequest(
        environment=config.environment,
        use_case=registry.use_case,
        model={
            "name": registry.use_case,
            "version": str(version),
            "uri": meta["artifact_uri"],
            "sha256": meta["artifact_sha256"],
            "adapter": adapter_name(adapter),
            "metadataSha256": registry.metadata_sha256(version),
            **pinned(meta),
        },
        summary=[
            *(summary or []),
            f"Test {metric}: {meta['metrics'][metric]:.4f} on dataset {meta['dataset_version']}.",
            f"Gate: {gate.get('summary', 'n/a')}",
        ],
        trailers={
            "Model-Version": str(version),
            "Model-Sha256": meta["artifact_sha256"],
            "Dataset-Version": meta["dataset_version"],
            "Dagster-Run-Id": run_id or meta.get("dagster_run_id", ""),
            **(trailers or {}),
        },
        approval=config.approval,
        allow_older=allow_older,
        headline=headline,
    )


def run_deploy(
    storage: ObjectStorage,
    gitops: GitOpsResource,
    use_case: str,
    config: DeployConfig,
    run_id: str,
    adapter: str,
) -> tuple[DeployResult, DeployRequest]:
    registry = ModelRegistry(storage, use_case)
    champion = registry.champion() or {}
    # A pinned champion is a deliberate rollback: deploy it even over a newer version.
    request = deploy_request(
        registry, config, run_id, adapter, allow_older=bool(champion.get("pinned"))
    )
    return gitops.repo((use_case,)).deploy(request), request


def promote(
    storage: ObjectStorage,
    gitops: GitOpsResource,
    use_case: str,
    source: str,
    target: str,
    adapter: str,
    approval: bool = False,
) -> DeployResult:
    """Deploy to `target` what `source` deploys (verified against the registry first)."""
    repo = gitops.repo((use_case,))
    model, _ = repo.deployed(source, use_case)
    version = str(model.get("version") or "0")
    if version == "0" or not model.get("uri"):
        raise GitOpsError(f"nothing is deployed in {source} to promote")
    registry = ModelRegistry(storage, use_case)
    _, meta = registry.artifact(int(version))
    if meta["artifact_sha256"] != model.get("sha256"):
        raise GitOpsError(
            f"{source} deploys v{version} with sha256 {model.get('sha256')}, "
            f"but the registry has {meta['artifact_sha256']}: not promoting"
        )
    request = deploy_request(
        registry,
        DeployConfig(environment=target, approval=approval),
        "",
        adapter,
        int(version),
        headline=f"Promote {use_case} v{version} from {source} to {target}",
    )
    return repo.deploy(request)


def promote_image(
    gitops: GitOpsResource, use_case: str, source: str, target: str, approval: bool = False
) -> DeployResult | None:
    """The model server's image tag of `source` to `target` (a release moving on with its
    model), in a commit of its own; None when `source` names no tag."""
    repo = gitops.repo((use_case,))
    path = f"environments/{source}/{use_case}/values.yaml"
    tag = str(read_section(repo.read_values(source, use_case), "image", path).get("tag") or "")
    if not tag:
        return None
    request = ImageRequest(
        target, tag, (use_case,), summary=[f"Promoted from {source}."], approval=approval
    )
    return repo.set_image(request)


def rollback(
    storage: ObjectStorage,
    gitops: GitOpsResource,
    use_case: str,
    environment: str,
    version: int,
    reason: str,
    adapter: str,
) -> DeployResult:
    """Deploy an earlier registry version to `environment` and pin it as champion, so that
    the pipeline does not deploy the newer champion over it until it is unpinned."""
    registry = ModelRegistry(storage, use_case)
    registry.promote(version, reason, pin=True)  # must exist and pass its sha256 check
    request = deploy_request(
        registry,
        DeployConfig(environment=environment),
        "",
        adapter,
        version,
        allow_older=True,
        headline=f"Roll back {use_case} in {environment} to v{version}",
        summary=[f"Reason: {reason}", f"Pinned v{version} as champion in the registry."],
    )
    return gitops.repo((use_case,)).deploy(request)


class RollbackRefused(MlopsError, RuntimeError):
    """The monitor's rollback would roll back something git does not deploy, or the
    registry's champion moved meanwhile: nothing was changed."""


def auto_rollback(
    storage: ObjectStorage,
    gitops: GitOpsResource,
    use_case: str,
    config: DeployConfig,
    run_id: str,
    adapter: str,
    version: int,
    to: int,
    reason: str,
) -> tuple[DeployResult, DeployRequest, str]:
    """The monitor's rollback: only when the environment's values file names `version`
    (what git deploys, not what a log or the registry says) and the champion alias moves
    from `version` to `to` by compare-and-swap; then `version` is marked rolled back and
    `to` committed to the environment (a branch under approval), saying it is a rollback
    and why. Otherwise RollbackRefused, and the registry and git stay as they were."""
    repo = gitops.repo((use_case,))
    model, _ = repo.deployed(config.environment, use_case)
    named = str(model.get("version") or "")
    registry = ModelRegistry(storage, use_case)
    status = registry.status(version)
    redone = status.get("status") == "rolled_back" and status.get("to") == to
    if named != str(version) and not (redone and named == str(to)):
        raise RollbackRefused(
            f"rollback of {use_case} v{version} in {config.environment} refused: git "
            f"deploys v{named or 'nothing'} there, not v{version}; nothing changed"
        )
    done, moved = registry.roll_back(version, to, reason, run_id)
    if not done:
        raise RollbackRefused(
            f"rollback of {use_case} v{version} to v{to} in {config.environment} refused: "
            f"{moved}; nothing committed"
        )
    request = deploy_request(
        registry,
        config,
        run_id,
        adapter,
        to,
        allow_older=True,
        headline=f"Roll back {use_case} v{version} to v{to} in {config.environment}",
        summary=[
            f"Reason: {reason}",
            f"Decided by {use_case}/monitor; registry: {moved}. v{version} is marked rolled "
            "back and is not promoted again automatically.",
        ],
        trailers={"Rolled-Back-Version": str(version)},
    )
    return repo.deploy(request), request, moved
