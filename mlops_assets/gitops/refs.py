"""Branch names as git accepts them: a leaf that the settings (which check
MLOPS_GITOPS_BRANCH when they load) and the git driver both import."""

from __future__ import annotations

import subprocess

__all__ = ["valid_branch"]


def valid_branch(name: str) -> bool:
    """`git check-ref-format --branch` accepts it, and git could not read it as an option
    or a reflog shorthand (`@{-1}`) wherever it is passed."""
    if not name or name.startswith("-") or "@{" in name:
        return False
    done = subprocess.run(
        ["git", "check-ref-format", "--branch", name], capture_output=True, text=True
    )
    return done.returncode == 0 and done.stdout.strip() == name
