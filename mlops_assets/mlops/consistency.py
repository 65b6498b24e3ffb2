"""Is production what the registry says it should be? GitOps versus registry, per environment.

A deploy can fail after a release (the git remote was down), and a rollback pins an older
version: either way the deployed version and the champion differ until the next deploy.
This check makes that visible in the UI instead of leaving it to be discovered.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

import dagster as dg

from mlops_assets.core.report import md_table
from mlops_assets.core.steps import step_key
from mlops_assets.gitops.resource import GitOpsResource
from mlops_assets.registry import ModelRegistry
from mlops_assets.storage import ObjectStorage


def compare(
    storage: ObjectStorage, gitops: GitOpsResource, use_case: str, target: str
) -> tuple[bool, str, list[tuple[Any, ...]]]:

    registry = ModelRegistry(storage, use_case)
    champion = registry.champion()
    wanted = str(champion["version"]) if champion else None
    pinned = bool(champion and champion.get("pinned"))
    repo = gitops.repo((use_case,))
    rows, target_version, stale = [], None, ""
    for environment, (model, commit) in repo.deployed_everywhere(use_case).items():
        version = str(model.get("version") or "0")
        if environment == target:
            target_version = version
            deployed_hash = model.get("metadataSha256")
            if version == wanted and deployed_hash != registry.metadata_sha256(int(wanted)):
                stale = (
                    "its values file has no model.metadataSha256 yet (deployed by an older "
                    f"release); re-execute {use_case}/deploy"
                    if not deployed_hash
                    else f"metadata.json of v{wanted} changed in the registry since it was "
                    "deployed (the server refuses it); find out who wrote it"
                )
        rolled_back = version not in ("0", wanted) and (
            registry.status(int(version)).get("status") == "rolled_back"
        )
        status = (
            "champion"
            if version == wanted
            else "nothing deployed"
            if version == "0"
            else f"rolled back to v{wanted}, not committed yet"
            if rolled_back
            else f"differs from champion v{wanted}"
        )
        rows.append((environment, f"v{version}", commit, status))
    if wanted is None:
        return True, f"{use_case} has no champion yet", rows
    ok = target_version == wanted and not stale
    pin = " (pinned)" if pinned else ""
    if ok:
        summary = f"{target} deploys champion v{wanted}{pin}"
    elif stale:
        summary = (
            f"{target} deploys champion v{wanted}{pin}, but {stale}; re-execute {use_case}/deploy"
        )
    elif (
        target_version
        and target_version != "0"
        and (registry.status(int(target_version)).get("status") == "rolled_back")
    ):
        reason = registry.status(int(target_version)).get("reason", "")
        summary = (
            f"{target} still deploys v{target_version}, which the monitor rolled back to "
            f"v{wanted} ({reason}): the rollback commit did not land; re-execute the "
            f"{use_case}_rollback run"
        )
    else:
        summary = (
            f"{target} deploys v{target_version}, but the registry's champion is "
            f"v{wanted}{pin}: the last deploy did not land; re-execute {use_case}/deploy"
        )
    return ok, summary, rows


def build_consistency_check(use_case: str, target: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=step_key(use_case, "deploy"),
        name="deployed_is_champion",
        description=f"The version {target} deploys in the GitOps repository is the registry's "
        "champion (pins included); lists every environment.",
    )
    def deployed_is_champion(storage: ObjectStorage, gitops: GitOpsResource):
        started = perf_counter()

        ok, summary, rows = compare(storage, gitops, use_case, target)
        return dg.AssetCheckResult(
            passed=ok,
            severity=dg.AssetCheckSeverity.WARN,
            description=summary,
            metadata={
                "environments": dg.MetadataValue.md(
                    md_table(["environment", "deployed", "last commit", "status"], rows)
                ),
                "compute_seconds": perf_counter() - started,
            },
        )

    return deployed_is_champion
