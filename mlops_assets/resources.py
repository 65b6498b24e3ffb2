"""Resources and executor, chosen by environment in this one place."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import dagster as dg

from mlops_assets.gitops.resource import GitOpsResource
from mlops_assets.settings import BRANCHES_PREFIX, Settings
from mlops_assets.storage import ObjectStorage
from mlops_assets.storage.local import LocalStorage

# One process per run by default: per-step processes cost seconds each (docs/performance.md).
EXECUTORS = {"in_process": dg.in_process_executor, "multiprocess": dg.multiprocess_executor}
STEP_POD_CONFIG = {"pod_spec_config": {"automount_service_account_token": False}}


def _executor(name: str) -> dg.ExecutorDefinition:
    if name == "k8s_job":  # a pod per step; the train step's op_tags put it on the GPU pool
        from dagster_k8s import k8s_job_executor

        # No step calls the Kubernetes API (the run pod creates the steps' Jobs): no step
        # pod gets a service-account token, whatever its op tags leave out.
        return k8s_job_executor.configured(
            {"step_k8s_config": STEP_POD_CONFIG}, name=k8s_job_executor.name
        )
    return EXECUTORS[name]


def build_storage(settings: Settings, root: str | None = None) -> ObjectStorage:
    """The storage at `root` (a folder or s3://bucket[/prefix]; default: the settings' own
    root), with the settings' S3 endpoint and region: every storage is built here."""
    branch = settings.deployment if root is None else None
    if root is not None:
        settings = replace(settings, storage_root=root)
    location = settings.s3
    if location is None:
        prefix = f"{BRANCHES_PREFIX}/{branch}" if branch else ""
        return LocalStorage(root=str(settings.local_root), portable_prefix=prefix)
    from dagster_aws.s3 import S3Resource

    from mlops_assets.storage.s3 import S3Storage

    # Credentials are not passed here: boto3 reads them from the environment (or the
    # pod's service account), so they never show in the resource config in the UI.
    return S3Storage(
        s3=S3Resource(
            endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region, max_attempts=5
        ),
        bucket=location.bucket,
        prefix=location.prefix,
        part_mb=settings.s3_part_mb,
    )


def local_gitops_path(storage_root: str) -> Path:
    """The local GitOps repository of a storage root with no remote set: beside a local
    root, `<root>/gitops.git`; for a bucket, a repository of its own under `.mlops/`
    (`gitops-s3-<bucket>-<prefix>.git`), so a demo on S3 never moves what the local
    default's dev deploys (and a local `serve` never follows dev to the bucket)."""
    if not storage_root.startswith("s3://"):
        return Path(storage_root).resolve() / "gitops.git"
    slug = re.sub(r"[^a-z0-9.]+", "-", storage_root.removeprefix("s3://").lower()).strip("-.")
    return Path(".mlops").resolve() / f"gitops-s3-{slug}.git"


def build_gitops(settings: Settings):

    local = ""
    if not settings.gitops_remote:
        # one repository per storage root: a branch deployment's preview branch is in
        # production's (the local default's) repository, beside main
        root = settings.production_storage_root or settings.storage_root
        local = str(local_gitops_path(root))
    return GitOpsResource(
        remote=settings.gitops_remote or "",
        local_path=local,
        branch=settings.gitops_branch,
        base_branch=settings.gitops_base_branch or "",
        author_name=settings.gitops_author[0],
        author_email=settings.gitops_author[1],
        commit_url=settings.gitops_commit_url or "",
    )


def environment_definitions(settings: Settings) -> dg.Definitions:
    """Resources and the executor of the environment `settings` describe."""
    return dg.Definitions(
        resources={"storage": build_storage(settings), "gitops": build_gitops(settings)},
        executor=_executor(settings.executor),
    )
