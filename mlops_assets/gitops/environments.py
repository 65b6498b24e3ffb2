"""An environment of the GitOps repository: its Argo CD policy and its use cases' values.

`environments/<env>/environment.yaml` (its `argocd:` mapping: a key no model-api values
file has, since the ApplicationSet's matrix refuses a key both files hold) is what the
ApplicationSet of charts/argocd reads for
every Application of that environment (namespace, automated sync or not, sync wave). People
write it (`mlops-assets gitops init-environment`) and review it; the deploy asset never
edits it. A use case's first deploy to an environment that has one adds its values file
from the template, so its Application appears with no chart change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

TEMPLATE = Path(__file__).parent / "templates" / "values.yaml"
ENVIRONMENTS = ("dev", "staging", "prod")
"""Seeded in the local default's repository: the promotion path dev -> staging -> prod."""

_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def application_name(use_case: str, environment: str) -> str:
    """The name charts/argocd's ApplicationSet gives the Application of a use case in an
    environment: `<use case, _ as ->-<environment>`. Two pairs can share it (digits-v2 in
    dev, digits in v2-dev): deploy and init-environment refuse such a pair."""
    return f"{use_case.replace('_', '-')}-{environment}"


def environment_path(environment: str) -> str:
    return f"environments/{environment}/environment.yaml"


def values_template(use_case: str) -> str:
    """The values file of a use case that has never been deployed to an environment."""
    return TEMPLATE.read_text().replace("name: digits", f"name: {use_case}")


@dataclass(frozen=True)
class EnvironmentPolicy:
    namespace: str
    auto_sync: bool
    sync_wave: int = 0

    def __post_init__(self) -> None:
        if not _DNS_LABEL.fullmatch(self.namespace):
            raise ValueError(
                f"namespace {self.namespace!r} is not a Kubernetes name (lower case letters, "
                "digits and -, at most 63)"
            )


def default_policy(environment: str) -> EnvironmentPolicy:
    """mlops-<env>; Argo CD syncs every environment by itself but prod, which a person syncs
    after review."""
    if not _DNS_LABEL.fullmatch(environment) or len(environment) > 40:
        raise ValueError(
            f"environment {environment!r} must be lower case letters, digits and - (at most "
            "40: it is part of Application and namespace names)"
        )
    return EnvironmentPolicy(f"mlops-{environment}", auto_sync=environment != "prod")


def environment_yaml(environment: str, policy: EnvironmentPolicy) -> str:
    sync = "Argo CD syncs each commit" if policy.auto_sync else "a person syncs in Argo CD"
    return (
        f"# Argo CD policy of the {environment} environment, read by the ApplicationSet of\n"
        "# charts/argocd for every use case under this folder. Written by\n"
        "# `mlops-assets gitops init-environment`; change it by pull request (the deploy\n"
        "# asset never edits it).\n"
        + yaml.safe_dump(
            {
                "argocd": {
                    "namespace": policy.namespace,
                    "autoSync": policy.auto_sync,
                    "syncWave": str(policy.sync_wave),
                }
            },
            sort_keys=False,
        )
        + f"# autoSync {str(policy.auto_sync).lower()}: {sync}.\n"
    )


def read_policy(text: str, where: str) -> EnvironmentPolicy:
    """The policy of an environment.yaml; the error names the file and the field."""
    try:
        found = (yaml.safe_load(text) or {}).get("argocd")
    except (yaml.YAMLError, AttributeError) as error:
        raise ValueError(f"{where}: not a YAML mapping ({error})") from None
    if not isinstance(found, dict):
        raise ValueError(f"{where}: no `argocd:` mapping")
    namespace, auto = found.get("namespace"), found.get("autoSync")
    if not isinstance(namespace, str):
        raise ValueError(f"{where}: argocd.namespace must be a string")
    if not isinstance(auto, bool):
        raise ValueError(f"{where}: argocd.autoSync must be true or false")
    try:
        wave = int(str(found.get("syncWave", "0")))
    except ValueError:
        raise ValueError(f"{where}: argocd.syncWave must be a whole number") from None
    try:
        return EnvironmentPolicy(namespace, auto, wave)
    except ValueError as error:
        raise ValueError(f"{where}: argocd.{error}") from None
