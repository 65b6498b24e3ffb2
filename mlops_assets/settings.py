"""Every environment-driven setting, read in one place.

`MLOPS_ENV` picks the environment; what decides the storage, executor, GitOps remote
and the definitions themselves is read and checked here, so a missing or malformed
setting fails at definitions load, naming the variable, instead of halfway through a
run. Secrets (tokens) and a few per-feature overrides (MLOPS_LSFB_SOURCE,
MLOPS_CACHE_DIR, MLOPS_KFP_*, MLOPS_IMAGE_TAG) are read where they are used; the
README's Configuration table lists them all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlops_assets.errors import MlopsError, redact

Env = Literal["local", "k8s"]

ENV_VAR = "MLOPS_ENV"
STORAGE_ROOT_VAR = "MLOPS_STORAGE_ROOT"
S3_ENDPOINT_VAR = "MLOPS_S3_ENDPOINT_URL"
S3_REGION_VAR = "MLOPS_S3_REGION"
EXECUTOR_VAR = "MLOPS_EXECUTOR"
GITOPS_REMOTE_VAR = "MLOPS_GITOPS_REMOTE"
GITOPS_BRANCH_VAR = "MLOPS_GITOPS_BRANCH"
GITOPS_AUTHOR_VAR = "MLOPS_GITOPS_AUTHOR"
GITOPS_WEB_URL_VAR = "MLOPS_GITOPS_COMMIT_URL"
GITOPS_TOKEN_VAR = "MLOPS_GITOPS_TOKEN"  # a secret: only whether it is set is read here
SENSOR_INTERVAL_VAR = "MLOPS_SENSOR_INTERVAL_SECONDS"
GC_FREEZE_VAR = "MLOPS_GC_FREEZE"
DEFAULT_AUTHOR = "mlops-assets <mlops-assets@localhost>"
EXECUTORS = ("in_process", "multiprocess", "k8s_job")
DEFAULT_LOCAL_ROOT = ".mlops"


class SettingsError(MlopsError, RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str


@dataclass(frozen=True)
class Settings:
    env: Env
    storage_root: str
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    executor: str = "in_process"
    gitops_remote: str | None = None
    """None on the local default: a bare repository under the storage root (or .mlops/)."""
    gitops_branch: str = "main"
    gitops_author: tuple[str, str] = ("mlops-assets", "mlops-assets@localhost")
    gitops_commit_url: str | None = None
    sensor_interval_seconds: int | None = None
    """Overrides every use case's sensor interval (demos, tests, the latency benchmark)."""
    gc_freeze: bool = True
    """Freeze the objects loaded with the definitions out of garbage collection (heap.py)."""

    @property
    def s3(self) -> S3Location | None:
        """The bucket and key prefix when storage is on S3, else None."""
        if not self.storage_root.startswith("s3://"):
            return None
        bucket, _, prefix = self.storage_root[len("s3://") :].partition("/")
        return S3Location(bucket=bucket, prefix=prefix.strip("/"))

    @property
    def local_root(self) -> Path | None:
        return None if self.s3 else Path(self.storage_root).resolve()


def _positive_int(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"{name}={raw!r} must be a whole number of seconds, at least 1")
    return int(raw)


def _switch(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} is not one of: on, off (or 1/0, true/false, yes/no)")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings, failing with the variable's name when one is wrong."""
    environ = os.environ if environ is None else environ
    env = environ.get(ENV_VAR, "local").strip() or "local"
    if env not in ("local", "k8s"):
        raise SettingsError(f"{ENV_VAR}={env!r} is not one of: local, k8s")

    root = environ.get(STORAGE_ROOT_VAR, "").strip()
    if env == "k8s" and not root.startswith("s3://"):
        raise SettingsError(
            f"{STORAGE_ROOT_VAR} must be set to s3://<bucket>[/<prefix>] when {ENV_VAR}=k8s"
            + (f" (got {root!r})" if root else "")
        )
    root = root or DEFAULT_LOCAL_ROOT
    scheme = root.partition("://")[0] if "://" in root else ""
    if scheme and scheme != "s3":
        raise SettingsError(
            f"{STORAGE_ROOT_VAR}={redact(root)!r}: {scheme}:// is not a storage this project "
            "knows (a folder, or s3://<bucket>[/<prefix>])"
        )
    executor = environ.get(EXECUTOR_VAR, "in_process").strip() or "in_process"
    if executor not in EXECUTORS:
        raise SettingsError(f"{EXECUTOR_VAR}={executor!r} is not one of: {', '.join(EXECUTORS)}")
    settings = Settings(
        env=env,  # type: ignore[arg-type]
        storage_root=root,
        s3_endpoint_url=environ.get(S3_ENDPOINT_VAR) or environ.get("AWS_ENDPOINT_URL") or None,
        s3_region=environ.get(S3_REGION_VAR)
        or environ.get("AWS_REGION")
        or environ.get("AWS_DEFAULT_REGION")
        or None,
        executor=executor,
        gitops_remote=environ.get(GITOPS_REMOTE_VAR) or None,
        gitops_branch=environ.get(GITOPS_BRANCH_VAR) or "main",
        gitops_author=_author(environ.get(GITOPS_AUTHOR_VAR) or DEFAULT_AUTHOR),
        gitops_commit_url=environ.get(GITOPS_WEB_URL_VAR) or None,
        sensor_interval_seconds=_positive_int(environ, SENSOR_INTERVAL_VAR),
        gc_freeze=_switch(environ, GC_FREEZE_VAR, default=True),
    )
    if env == "k8s" and not settings.gitops_remote:
        raise SettingsError(
            f"{GITOPS_REMOTE_VAR} must name the GitOps repository's git URL when {ENV_VAR}=k8s"
        )
    _check_gitops(environ, settings)
    if settings.s3 is not None and not settings.s3.bucket:
        raise SettingsError(f"{STORAGE_ROOT_VAR}={root!r} names no bucket")
    return settings


def _check_gitops(environ: Mapping[str, str], settings: Settings) -> None:
    from mlops_assets.gitops.git import valid_branch

    if not valid_branch(settings.gitops_branch):
        raise SettingsError(
            f"{GITOPS_BRANCH_VAR}={settings.gitops_branch!r} is not a valid branch name "
            "(git check-ref-format --branch)"
        )
    remote = settings.gitops_remote
    if remote and redact(remote) != remote:
        # git would write it into the clone's .git/config, and the UI shows the resource
        raise SettingsError(
            f"{GITOPS_REMOTE_VAR}={redact(remote)!r} holds credentials: give the URL without "
            f"them and the token in {GITOPS_TOKEN_VAR} (a Kubernetes Secret)"
        )
    if environ.get(GITOPS_TOKEN_VAR) and remote and not remote.startswith("https://"):
        raise SettingsError(
            f"{GITOPS_TOKEN_VAR} is set but {GITOPS_REMOTE_VAR} is not an https:// URL: a token "
            "is only sent over HTTPS (use an SSH key for ssh:// remotes)"
        )


def _author(value: str) -> tuple[str, str]:
    name, _, rest = value.partition("<")
    email = rest.rstrip(">").strip()
    if not name.strip() or "@" not in email:
        raise SettingsError(f"{GITOPS_AUTHOR_VAR}={value!r} is not 'Name <email>'")
    return name.strip(), email
