"""`gitops`: what is deployed where, promotion and rollback."""

from __future__ import annotations

import click

from mlops_assets.cli.base import (
    CommandError,
    load_use_case,
    main,
    storage_of_settings,
    use_case_option,
)


@main.group()
def gitops() -> None:
    """The GitOps repository: what is deployed where, promotion and rollback."""


def _gitops():
    from mlops_assets.resources import build_gitops
    from mlops_assets.settings import load_settings

    return build_gitops(load_settings())


@gitops.command("status")
@use_case_option
def gitops_status(use_case: str) -> None:
    """The model version each environment deploys, and the last commit that changed it."""
    repo = _gitops().repo((use_case,))
    deployed = repo.deployed_everywhere(use_case)
    if not deployed:
        click.echo(f"{use_case}: no environment in the GitOps repository")
    for environment, (model, commit) in deployed.items():
        version = str(model.get("version") or "0")
        what = "nothing deployed" if version == "0" or not model.get("uri") else f"v{version}"
        click.echo(f"{environment:<10} {what:<18} {commit}")
    for branch, subject in repo.approval_branches(use_case):
        click.echo(f"pending approval: {branch}  {subject}")


@gitops.command("promote")
@use_case_option
@click.option("--from", "source", required=True, help="Environment to promote from (dev).")
@click.option("--to", "target", required=True, help="Environment to promote to (staging).")
@click.option("--approval", is_flag=True, help="Push a deploy/... branch for a pull request.")
def gitops_promote(use_case: str, source: str, target: str, approval: bool) -> None:
    """Deploy to the next environment what the previous one deploys."""
    from mlops_assets.mlops.deploy import promote

    try:
        adapter = load_use_case(use_case).training.adapter
        result = promote(
            storage_of_settings(), _gitops(), use_case, source, target, adapter, approval
        )
    except (LookupError, RuntimeError) as error:
        raise CommandError(str(error)) from None
    click.echo(result.reason)


@gitops.command("rollback")
@use_case_option
@click.option("--environment", required=True)
@click.option("--version", "version", type=int, required=True, help="An earlier version.")
@click.option("--reason", required=True, help="Why; in the commit and the registry history.")
def gitops_rollback(use_case: str, environment: str, version: int, reason: str) -> None:
    """Deploy an earlier registry version to an environment, pinned in the registry."""
    from mlops_assets.mlops.deploy import rollback

    try:
        adapter = load_use_case(use_case).training.adapter
        result = rollback(
            storage_of_settings(), _gitops(), use_case, environment, version, reason, adapter
        )
    except (LookupError, RuntimeError) as error:
        raise CommandError(str(error)) from None
    click.echo(result.reason)
    click.echo(
        f"pinned v{version} as {use_case}'s champion: automatic releases will not replace it "
        "until `mlops-assets registry unpin`"
    )
