"""The GitOps repository as a Dagster resource (remote, branch, author; no secrets)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import dagster as dg

from mlops_assets.errors import redact
from mlops_assets.gitops.environments import (
    ENVIRONMENTS,
    TEMPLATE,
    default_policy,
    environment_path,
    environment_yaml,
    values_template,
)
from mlops_assets.gitops.git import ensure_local_remote
from mlops_assets.gitops.repository import GitOpsRepo

__all__ = ["ENVIRONMENTS", "TEMPLATE", "GitOpsResource"]


class GitOpsResource(dg.ConfigurableResource):
    """Where deploys are committed. Tokens and SSH keys come from the environment at push
    time (MLOPS_GITOPS_TOKEN, MLOPS_GITOPS_SSH_KEY_FILE) and are never part of this config."""

    remote: str = ""
    local_path: str = ""
    """Set on the local default: a bare repository created and seeded on first use."""
    branch: str = "main"
    base_branch: str = ""
    """Set on a branch deployment: `branch` is preview/<deployment>, started from this one."""
    author_name: str = "mlops-assets"
    author_email: str = "mlops-assets@localhost"
    commit_url: str = ""
    """A template such as https://github.com/org/gitops/commit/{sha}, for the UI."""

    def repo(self, use_cases: tuple[str, ...] = ("digits",)) -> GitOpsRepo:
        remote = self.remote
        if not remote:
            seed = {
                f"environments/{env}/{name}/values.yaml": values_template(name)
                for env in ENVIRONMENTS
                for name in use_cases
            }
            seed |= {
                environment_path(env): environment_yaml(env, default_policy(env))
                for env in ENVIRONMENTS
            }
            local = Path(self.local_path)
            if self.base_branch and (local / "HEAD").exists():
                remote = local.as_uri()  # a branch deployment never commits to main
            else:
                remote = ensure_local_remote(local, self.base_branch or self.branch, seed)
        return GitOpsRepo(
            remote,
            self.branch,
            self.author_name,
            self.author_email,
            base_branch=self.base_branch or None,
        )

    def reader(self, use_cases: tuple[str, ...] = ("digits",)) -> GitOpsRepo:
        """The repository as the monitor and feedback read it: git is given
        MLOPS_GITOPS_READ_TOKEN, never the token that can push."""
        return replace(self.repo(use_cases), read_only=True)

    def link(self, commit: str | None) -> str:
        if not commit:
            return ""
        if self.commit_url:
            return self.commit_url.format(sha=commit)
        return f"{redact(self.remote) or Path(self.local_path).as_uri()}@{commit}"
