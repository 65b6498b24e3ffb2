"""Every environment variable the project reads, declared and read in one place.

`VARIABLES` declares each one (name, default, meaning); `env()` is the only function that
reads the process environment, and it refuses an undeclared name (a test walks the
package's syntax tree for any other read). `MLOPS_ENV` picks the environment; what decides
the storage, executor, GitOps remote and the definitions themselves is checked by
`load_settings`, so a missing or malformed setting fails at definitions load, naming the
variable, instead of halfway through a run. Per-feature overrides and secrets are read
through `env()` where they are used. The README's Configuration table is tested against
`VARIABLES`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from mlops_assets.errors import MlopsError, redact
from mlops_assets.gitops.refs import valid_branch

Env = Literal["local", "k8s", "branch"]

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
BRANCH_DEPLOYMENT_VAR = "MLOPS_BRANCH_DEPLOYMENT"
DAGSTER_BRANCH_VAR = "DAGSTER_CLOUD_IS_BRANCH_DEPLOYMENT"
DAGSTER_DEPLOYMENT_VAR = "DAGSTER_CLOUD_DEPLOYMENT_NAME"
BRANCHES_PREFIX = "branches"
"""Storage of branch deployments: `<root>/branches/<deployment>/`."""
PREVIEW_BRANCH = "preview/{deployment}"
DEFAULT_AUTHOR = "mlops-assets <mlops-assets@localhost>"


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    meaning: str
    secret: bool = False


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in (
        Variable(
            ENV_VAR,
            "local",
            "local (embedded), k8s (production; requires S3 storage) or branch (a branch "
            "deployment: its own storage prefix and GitOps branch)",
        ),
        Variable(
            BRANCH_DEPLOYMENT_VAR,
            "",
            "the branch deployment's name (default: Dagster+'s DAGSTER_CLOUD_DEPLOYMENT_NAME)",
        ),
        Variable(DAGSTER_BRANCH_VAR, "", "set to 1 by Dagster+ in a branch deployment"),
        Variable(DAGSTER_DEPLOYMENT_VAR, "", "set by Dagster+: the deployment's name"),
        Variable(STORAGE_ROOT_VAR, ".mlops", "a folder, or s3://bucket[/prefix]"),
        Variable(S3_ENDPOINT_VAR, "", "S3-compatible endpoint (MinIO, ...)"),
        Variable("AWS_ENDPOINT_URL", "", "the same, as the AWS tools name it"),
        Variable(S3_REGION_VAR, "", "the S3 region"),
        Variable("AWS_REGION", "", "the S3 region, as the AWS tools name it"),
        Variable("AWS_DEFAULT_REGION", "", "the S3 region, the older AWS name"),
        Variable(EXECUTOR_VAR, "in_process", "in_process, multiprocess or k8s_job"),
        Variable(SENSOR_INTERVAL_VAR, "", "every use case's sensor interval, in seconds"),
        Variable(GC_FREEZE_VAR, "on", "freeze the code location's objects out of the collector"),
        Variable(GITOPS_REMOTE_VAR, "", "the GitOps repository's URL (required on k8s)"),
        Variable(GITOPS_BRANCH_VAR, "main", "the GitOps repository's branch"),
        Variable(GITOPS_AUTHOR_VAR, DEFAULT_AUTHOR, "Name <email> of the deploy commits"),
        Variable(GITOPS_WEB_URL_VAR, "", "a link template for commits, with {sha}"),
        Variable(GITOPS_TOKEN_VAR, "", "an HTTPS token for the GitOps remote", secret=True),
        Variable(
            "MLOPS_GITOPS_READ_TOKEN",
            "",
            "a token that can only read the GitOps remote (the monitor's and feedback's: "
            "which versions git deployed)",
            secret=True,
        ),
        Variable("MLOPS_GITOPS_SSH_KEY_FILE", "", "an SSH key file for the GitOps remote"),
        Variable("MLOPS_GITOPS_KNOWN_HOSTS_FILE", "", "the SSH remote's host keys"),
        Variable("MLOPS_IMAGE_TAG", "", "the image tag CI built this code into"),
        Variable("MLOPS_CODE_VERSION", "", "the commit the image was built from"),
        Variable(
            "MLOPS_CODE_REPO_URL",
            "",
            "this code's git repository (https://github.com/<org>/<repo>): the assets' code "
            "references in the UI link there, at MLOPS_CODE_VERSION",
        ),
        Variable(
            "KERAS_BACKEND",
            "tensorflow",
            "Keras's own: the backend of a process that loads a Keras model (the model "
            "server); training uses the use case's training.keras_backend",
        ),
        Variable("MLOPS_LSFB_SOURCE", "", "base URL of LSFB-ISOL (a mirror)"),
        Variable("MLOPS_CACHE_DIR", "~/.cache/mlops_assets", "the LSFB download cache"),
        Variable("XDG_CACHE_HOME", "~/.cache", "where caches go, when MLOPS_CACHE_DIR is unset"),
        Variable("MLOPS_KFP_HOST", "", "the Kubeflow Pipelines API"),
        Variable("MLOPS_KFP_TOKEN", "", "a bearer token for it", secret=True),
        Variable("MLOPS_KFP_IMAGE", "", "the image the KFP tasks run"),
        Variable("KF_PIPELINES_SA_TOKEN_PATH", "", "kfp's own: where the pod's token is"),
        Variable("DAGSTER_HOME", ".dagster for mlops-assets demo", "the Dagster instance"),
        # the model server's limits and batching: the use case's serving: block overridden
        Variable("MLOPS_SERVING_MAX_BODY_MB", "8", "largest request body (413 beyond)"),
        Variable("MLOPS_SERVING_MAX_ROWS", "1024", "most rows per request (413 beyond)"),
        Variable("MLOPS_SERVING_MAX_DEPTH", "8", "deepest nesting of a tensor's data"),
        Variable("MLOPS_SERVING_READ_TIMEOUT_SECONDS", "10", "time for a whole body (408)"),
        Variable("MLOPS_SERVING_BATCHING", "true", "coalesce concurrent requests"),
        Variable("MLOPS_SERVING_MAX_BATCH_ROWS", "256", "rows of one coalesced predict"),
        Variable("MLOPS_SERVING_MAX_BATCH_WAIT_MS", "0", "wait for more requests (0: none)"),
        Variable("MLOPS_SERVING_MAX_BISECT_CALLS", "16", "to find a batch's failing requests"),
        Variable("MLOPS_SERVING_GRACE_SECONDS", "20", "in-flight requests' time on SIGTERM"),
        Variable("MLOPS_SERVING_DRAIN_SECONDS", "0", "not ready but serving, on SIGTERM"),
        # the model server's inference log: the use case's inference_log: block overridden
        Variable("MLOPS_INFERENCE_LOG_ENABLED", "false", "record answered requests"),
        Variable("MLOPS_INFERENCE_LOG_SAMPLE", "1", "the share of requests recorded"),
        Variable("MLOPS_INFERENCE_LOG_INPUTS", "full", "full, summary or none"),
        Variable("MLOPS_INFERENCE_LOG_FLUSH_ROWS", "1000", "a file per this many records"),
        Variable("MLOPS_INFERENCE_LOG_FLUSH_SECONDS", "10", "or when the oldest is this old"),
        Variable("MLOPS_INFERENCE_LOG_MAX_BUFFER_ROWS", "100000", "bound of the buffer"),
        Variable("MLOPS_INFERENCE_LOG_MAX_BUFFER_MB", "64", "bound of the buffer, in MiB"),
        Variable("MODEL_ENVIRONMENT", "dev", "the environment a served model is in (the log)"),
        Variable(
            "MLOPS_ROLLOUT_STATUS",
            "off",
            "on: the monitor reads the Argo Rollout of its environment through the Kubernetes "
            "API and rolls git back to what serves when a canary was aborted",
        ),
        Variable("KUBECONFIG", "", "kubectl's own: the monitor's cluster when not in a pod"),
        Variable(
            "MLOPS_ROLLOUT_NAMESPACE",
            "mlops-{environment}",
            "where the monitor looks for that Rollout ({environment} is replaced)",
        ),
    )
}


def env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of a declared environment variable (None when unset or empty): the one
    place the project reads the process environment."""
    if name not in VARIABLES:
        raise KeyError(f"{name} is not declared in mlops_assets.settings.VARIABLES")
    value = (os.environ if environ is None else environ).get(name, "").strip()
    return value or None


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
    """Freeze the objects loaded with the definitions out of garbage collection (gc_freeze.py)."""
    deployment: str | None = None
    """The branch deployment's name (env `branch` only)."""
    production_storage_root: str | None = None
    """On a branch deployment, production's root (storage_root is the branch's own prefix)."""
    gitops_base_branch: str | None = None
    """On a branch deployment, the branch `preview/<deployment>` starts from (main)."""
    code_repo_url: str | None = None
    """Where this code lives in git: the assets' code references link there."""
    code_version: str | None = None

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
    raw = env(name, environ) or ""
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise SettingsError(f"{name}={raw!r} must be a whole number of seconds, at least 1")
    return int(raw)


def _switch(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env(name, environ) or "").lower()
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
    kind = env(ENV_VAR, environ) or "local"
    cluster = kind == "k8s"  # a branch deployment on the cluster keeps the cluster's checks
    if _switch(environ, DAGSTER_BRANCH_VAR, default=False):
        kind = "branch"  # whatever else says: a pull request's code never acts as production
    if kind not in ("local", "k8s", "branch"):
        raise SettingsError(f"{ENV_VAR}={kind!r} is not one of: local, k8s, branch")

    root = env(STORAGE_ROOT_VAR, environ) or ""
    if cluster and not root.startswith("s3://"):
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
    executor = env(EXECUTOR_VAR, environ) or "in_process"
    if executor not in EXECUTORS:
        raise SettingsError(f"{EXECUTOR_VAR}={executor!r} is not one of: {', '.join(EXECUTORS)}")
    settings = Settings(
        env=kind,  # type: ignore[arg-type]
        storage_root=root,
        s3_endpoint_url=env(S3_ENDPOINT_VAR, environ) or env("AWS_ENDPOINT_URL", environ),
        s3_region=env(S3_REGION_VAR, environ)
        or env("AWS_REGION", environ)
        or env("AWS_DEFAULT_REGION", environ),
        executor=executor,
        gitops_remote=env(GITOPS_REMOTE_VAR, environ),
        gitops_branch=env(GITOPS_BRANCH_VAR, environ) or "main",
        gitops_author=_author(env(GITOPS_AUTHOR_VAR, environ) or DEFAULT_AUTHOR),
        gitops_commit_url=env(GITOPS_WEB_URL_VAR, environ),
        code_repo_url=env("MLOPS_CODE_REPO_URL", environ),
        code_version=env("MLOPS_CODE_VERSION", environ),
        sensor_interval_seconds=_positive_int(environ, SENSOR_INTERVAL_VAR),
        gc_freeze=_switch(environ, GC_FREEZE_VAR, default=True),
    )
    if kind == "branch":
        settings = _branch(environ, settings)
    if cluster and not settings.gitops_remote:
        raise SettingsError(
            f"{GITOPS_REMOTE_VAR} must name the GitOps repository's git URL when {ENV_VAR}=k8s"
        )
    _check_gitops(environ, settings)
    if settings.s3 is not None and not settings.s3.bucket:
        raise SettingsError(f"{STORAGE_ROOT_VAR}={root!r} names no bucket")
    return settings


def _branch(environ: Mapping[str, str], settings: Settings) -> Settings:
    """A branch deployment: storage under `branches/<deployment>/` of the root, deploys to
    the GitOps branch `preview/<deployment>`, which starts from the configured branch."""
    name = env(BRANCH_DEPLOYMENT_VAR, environ) or env(DAGSTER_DEPLOYMENT_VAR, environ)
    if not name:
        raise SettingsError(
            f"{ENV_VAR}=branch needs the deployment's name: set {BRANCH_DEPLOYMENT_VAR} "
            f"(Dagster+ sets {DAGSTER_DEPLOYMENT_VAR})"
        )
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", name) or ".." in name:
        raise SettingsError(
            f"{BRANCH_DEPLOYMENT_VAR}={name!r}: a branch deployment's name is letters, digits, "
            "'.', '_' and '-' (it names a storage prefix and a git branch)"
        )
    root = settings.storage_root.rstrip("/")
    return replace(
        settings,
        deployment=name,
        production_storage_root=root,
        storage_root=f"{root}/{BRANCHES_PREFIX}/{name}",
        gitops_base_branch=settings.gitops_branch,
        gitops_branch=PREVIEW_BRANCH.format(deployment=name),
    )


def _check_gitops(environ: Mapping[str, str], settings: Settings) -> None:

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
    if env(GITOPS_TOKEN_VAR, environ) and remote and not remote.startswith("https://"):
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


def overridden(model: Any, prefix: str, block: str, environ: Mapping[str, str] | None = None):
    """A YAML settings block (a Pydantic model) with each field overridden by the
    environment variable `<prefix><FIELD>`, checked as the YAML is; a bad value fails
    naming both the variable and the YAML key."""
    values = model.model_dump()
    for name in type(model).model_fields:
        raw = env(f"{prefix}{name.upper()}", environ)
        if raw is not None:
            values[name] = raw
    try:
        return type(model).model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first.get("loc") else ""
        raise SettingsError(
            f"{prefix}{name.upper()} (or {block}.{name} of the use case): "
            f"{values.get(name)!r}: {first['msg']}"
        ) from None
