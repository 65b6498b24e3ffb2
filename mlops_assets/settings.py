"""Every environment variable the project reads, declared and read in one place.

`EnvironmentVariables` (pydantic-settings) declares each one as a field with its meaning and
types the ones that decide the storage, executor, GitOps remote and the definitions;
`load_settings` adds the checks between them, so a missing or malformed setting fails at
definitions load naming the variable, instead of halfway through a run. Per-feature
overrides and secrets are read through `env()` where they are used, which refuses an
undeclared name (a test walks the package's syntax tree for any other read). The docs'
environment-variables page is generated from `VARIABLES`, the declaration as it shows it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PositiveInt, SecretStr, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

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


def _var(default: Any, meaning: str, *, shown: str | None = None) -> Any:
    """A declared variable: `meaning` is what the docs say of it, `shown` its
    default there when that is not the field's (a YAML block's default the variable
    overrides, or a library's own)."""
    return Field(
        default, description=meaning, json_schema_extra={"shown": shown} if shown else None
    )


class EnvironmentVariables(BaseSettings):
    """Every environment variable the project reads, one field each (the field's name is the
    variable's). pydantic-settings reads them, an empty value counting as unset, and types
    those `load_settings` decides with; a secret is a `SecretStr`, which no repr or log
    shows. The per-feature ones stay strings here: the YAML block they override checks them
    (`overridden`)."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        str_strip_whitespace=True,
    )

    MLOPS_ENV: Literal["local", "k8s", "branch"] = _var(
        "local",
        "local (embedded), k8s (production; requires S3 storage) or branch (a branch "
        "deployment: its own storage prefix and GitOps branch)",
    )
    MLOPS_BRANCH_DEPLOYMENT: str | None = _var(
        None, "the branch deployment's name (default: Dagster+'s DAGSTER_CLOUD_DEPLOYMENT_NAME)"
    )
    DAGSTER_CLOUD_IS_BRANCH_DEPLOYMENT: bool = _var(
        False, "set to 1 by Dagster+ in a branch deployment"
    )
    DAGSTER_CLOUD_DEPLOYMENT_NAME: str | None = _var(None, "set by Dagster+: the deployment's name")
    MLOPS_STORAGE_ROOT: str | None = _var(None, "a folder, or s3://bucket[/prefix]", shown=".mlops")
    MLOPS_S3_ENDPOINT_URL: str | None = _var(None, "S3-compatible endpoint (MinIO, ...)")
    AWS_ENDPOINT_URL: str | None = _var(None, "the same, as the AWS tools name it")
    MLOPS_S3_REGION: str | None = _var(None, "the S3 region")
    MLOPS_S3_PART_MB: int = _var(64, "part size of S3 multipart uploads, downloads and copies")
    AWS_REGION: str | None = _var(None, "the S3 region, as the AWS tools name it")
    AWS_DEFAULT_REGION: str | None = _var(None, "the S3 region, the older AWS name")
    MLOPS_EXECUTOR: Literal["in_process", "multiprocess", "k8s_job"] = _var(
        "in_process", "in_process, multiprocess or k8s_job"
    )
    MLOPS_SENSOR_INTERVAL_SECONDS: PositiveInt | None = _var(
        None, "every use case's sensor interval, in seconds"
    )
    MLOPS_GC_FREEZE: bool = _var(True, "freeze the code location's objects out of the collector")
    MLOPS_VERBOSE: bool = _var(
        False, "show what is kept back: TensorFlow's C++ lines at import (`--verbose` sets it)"
    )
    MLOPS_GITOPS_REMOTE: str | None = _var(None, "the GitOps repository's URL (required on k8s)")
    MLOPS_GITOPS_BRANCH: str = _var("main", "the GitOps repository's branch")
    MLOPS_GITOPS_AUTHOR: str = _var(DEFAULT_AUTHOR, "Name <email> of the deploy commits")
    MLOPS_GITOPS_COMMIT_URL: str | None = _var(None, "a link template for commits, with {sha}")
    MLOPS_GITOPS_TOKEN: SecretStr | None = _var(None, "an HTTPS token for the GitOps remote")
    MLOPS_GITOPS_READ_TOKEN: SecretStr | None = _var(
        None,
        "a token that can only read the GitOps remote (the monitor's and feedback's: which "
        "versions git deployed)",
    )
    MLOPS_GITOPS_SSH_KEY_FILE: str | None = _var(None, "an SSH key file for the GitOps remote")
    MLOPS_GITOPS_KNOWN_HOSTS_FILE: str | None = _var(None, "the SSH remote's host keys")
    MLOPS_IMAGE_TAG: str | None = _var(None, "the image tag CI built this code into")
    MLOPS_CODE_VERSION: str | None = _var(None, "the commit the image was built from")
    MLOPS_CODE_REPO_URL: str | None = _var(
        None,
        "this code's git repository (https://github.com/<org>/<repo>): the assets' code "
        "references in the UI link there, at MLOPS_CODE_VERSION",
    )
    KERAS_BACKEND: str | None = _var(
        None,
        "Keras's own: the backend of a process that loads a Keras model (the model server); "
        "training uses the use case's training.keras_backend",
        shown="tensorflow",
    )
    MLOPS_LSFB_SOURCE: str | None = _var(None, "base URL of LSFB-ISOL (a mirror)")
    MLOPS_CACHE_DIR: str | None = _var(
        None, "the LSFB download cache", shown="~/.cache/mlops_assets"
    )
    XDG_CACHE_HOME: str | None = _var(
        None, "where caches go, when MLOPS_CACHE_DIR is unset", shown="~/.cache"
    )
    MLOPS_KFP_HOST: str | None = _var(None, "the Kubeflow Pipelines API")
    MLOPS_KFP_TOKEN: SecretStr | None = _var(None, "a bearer token for it")
    MLOPS_KFP_IMAGE: str | None = _var(None, "the image the KFP tasks run")
    KF_PIPELINES_SA_TOKEN_PATH: str | None = _var(None, "kfp's own: where the pod's token is")
    DAGSTER_HOME: str | None = _var(
        None, "the Dagster instance", shown=".dagster for mlops-assets demo"
    )
    MLOPS_SERVING_MAX_BODY_MB: str | None = _var(
        None, "largest request body (413 beyond)", shown="8"
    )
    MLOPS_SERVING_MAX_ROWS: str | None = _var(
        None, "most rows per request (413 beyond)", shown="1024"
    )
    MLOPS_SERVING_MAX_DEPTH: str | None = _var(
        None, "deepest nesting of a tensor's data", shown="8"
    )
    MLOPS_SERVING_READ_TIMEOUT_SECONDS: str | None = _var(
        None, "time for a whole body (408)", shown="10"
    )
    MLOPS_SERVING_BATCHING: str | None = _var(None, "coalesce concurrent requests", shown="true")
    MLOPS_SERVING_MAX_BATCH_ROWS: str | None = _var(
        None, "rows of one coalesced predict", shown="256"
    )
    MLOPS_SERVING_MAX_BATCH_WAIT_MS: str | None = _var(
        None, "wait for more requests (0: none)", shown="0"
    )
    MLOPS_SERVING_MAX_BISECT_CALLS: str | None = _var(
        None, "to find a batch's failing requests", shown="16"
    )
    MLOPS_SERVING_GRACE_SECONDS: str | None = _var(
        None, "in-flight requests' time on SIGTERM", shown="20"
    )
    MLOPS_SERVING_DRAIN_SECONDS: str | None = _var(
        None, "not ready but serving, on SIGTERM", shown="0"
    )
    MLOPS_INFERENCE_LOG_ENABLED: str | None = _var(None, "record answered requests", shown="false")
    MLOPS_INFERENCE_LOG_SAMPLE: str | None = _var(None, "the share of requests recorded", shown="1")
    MLOPS_INFERENCE_LOG_INPUTS: str | None = _var(None, "full, summary or none", shown="full")
    MLOPS_INFERENCE_LOG_FLUSH_ROWS: str | None = _var(
        None, "a file per this many records", shown="1000"
    )
    MLOPS_INFERENCE_LOG_FLUSH_SECONDS: str | None = _var(
        None, "or when the oldest is this old", shown="10"
    )
    MLOPS_INFERENCE_LOG_MAX_BUFFER_ROWS: str | None = _var(
        None, "bound of the buffer", shown="100000"
    )
    MLOPS_INFERENCE_LOG_MAX_BUFFER_MB: str | None = _var(
        None, "bound of the buffer, in MiB", shown="64"
    )
    MODEL_ENVIRONMENT: str | None = _var(
        None, "the environment a served model is in (the log)", shown="dev"
    )
    MLOPS_ROLLOUT_STATUS: str | None = _var(
        None,
        "on: the monitor reads the Argo Rollout of its environment through the Kubernetes API "
        "and rolls git back to what serves when a canary was aborted",
        shown="off",
    )
    KUBECONFIG: str | None = _var(None, "kubectl's own: the monitor's cluster when not in a pod")
    MLOPS_ROLLOUT_NAMESPACE: str | None = _var(
        None,
        "where the monitor looks for that Rollout ({environment} is replaced)",
        shown="mlops-{environment}",
    )


class _FromMapping(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._mapping = dict(environ)
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._mapping


def read_environment(environ: Mapping[str, str] | None = None) -> EnvironmentVariables:
    """The declared variables, from `environ` (default: the process's), typed; a malformed
    one fails naming the variable."""
    try:
        if environ is None:
            return EnvironmentVariables()
        given = environ

        class FromMapping(EnvironmentVariables):
            @classmethod
            def settings_customise_sources(cls, settings_cls, *_sources, **_named):
                return (_FromMapping(settings_cls, given),)

        return FromMapping()
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first.get("loc") else "?"
        secret = VARIABLES.get(name, Variable(name, "", "")).secret
        value = "<secret>" if secret else repr(first.get("input"))
        raise SettingsError(f"{name}={value}: {first['msg']}") from None


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    meaning: str
    secret: bool = False


def _shown(field: Any) -> str:
    extra = field.json_schema_extra or {}
    if "shown" in extra:
        return str(extra["shown"])
    if field.default is None or field.default is False:
        return ""
    return "on" if field.default is True else str(field.default)


VARIABLES: dict[str, Variable] = {
    name: Variable(
        name,
        _shown(field),
        field.description or "",
        secret="SecretStr" in str(field.annotation),
    )
    for name, field in EnvironmentVariables.model_fields.items()
}
"""The declaration as the docs show it (docs/_gen/reference.py generates the page)."""


def env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The raw value of one declared variable (None when unset or empty), for a feature's
    override or a secret read where it is used."""
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
    s3_part_mb: int = 64
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


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings, failing with the variable's name when one is wrong."""
    read = read_environment(environ)
    kind = read.MLOPS_ENV
    cluster = kind == "k8s"  # a branch deployment on the cluster keeps the cluster's checks
    if read.DAGSTER_CLOUD_IS_BRANCH_DEPLOYMENT:
        kind = "branch"  # whatever else says: a pull request's code never acts as production

    root = read.MLOPS_STORAGE_ROOT or ""
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
    settings = Settings(
        env=kind,
        storage_root=root,
        s3_endpoint_url=read.MLOPS_S3_ENDPOINT_URL or read.AWS_ENDPOINT_URL,
        s3_region=read.MLOPS_S3_REGION or read.AWS_REGION or read.AWS_DEFAULT_REGION,
        s3_part_mb=read.MLOPS_S3_PART_MB,
        executor=read.MLOPS_EXECUTOR,
        gitops_remote=read.MLOPS_GITOPS_REMOTE,
        gitops_branch=read.MLOPS_GITOPS_BRANCH,
        gitops_author=_author(read.MLOPS_GITOPS_AUTHOR),
        gitops_commit_url=read.MLOPS_GITOPS_COMMIT_URL,
        code_repo_url=read.MLOPS_CODE_REPO_URL,
        code_version=read.MLOPS_CODE_VERSION,
        sensor_interval_seconds=read.MLOPS_SENSOR_INTERVAL_SECONDS,
        gc_freeze=read.MLOPS_GC_FREEZE,
    )
    if kind == "branch":
        settings = _branch(read, settings)
    if cluster and not settings.gitops_remote:
        raise SettingsError(
            f"{GITOPS_REMOTE_VAR} must name the GitOps repository's git URL when {ENV_VAR}=k8s"
        )
    _check_gitops(read, settings)
    if settings.s3 is not None and not settings.s3.bucket:
        raise SettingsError(f"{STORAGE_ROOT_VAR}={root!r} names no bucket")
    return settings


def _branch(read: EnvironmentVariables, settings: Settings) -> Settings:
    """A branch deployment: storage under `branches/<deployment>/` of the root, deploys to
    the GitOps branch `preview/<deployment>`, which starts from the configured branch."""
    name = read.MLOPS_BRANCH_DEPLOYMENT or read.DAGSTER_CLOUD_DEPLOYMENT_NAME
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


def _check_gitops(read: EnvironmentVariables, settings: Settings) -> None:

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
    if read.MLOPS_GITOPS_TOKEN and remote and not remote.startswith("https://"):
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
