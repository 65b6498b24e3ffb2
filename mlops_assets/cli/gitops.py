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
from mlops_assets.gitops.environments import (
    EnvironmentPolicy,
    default_policy,
    environment_yaml,
)
from mlops_assets.gitops.repository import GitOpsError, ImageRequest
from mlops_assets.settings import env, load_settings


@main.group()
def gitops() -> None:
    """The GitOps repository: what is deployed where, promotion and rollback."""


def _gitops():
    from mlops_assets.resources import build_gitops

    return build_gitops(load_settings())


@gitops.command("status")
@use_case_option
def gitops_status(use_case: str) -> None:
    """The model version each environment deploys, and the last commit that changed it."""
    repo = _gitops().repo((use_case,))
    deployed = repo.deployed_everywhere(use_case)
    if not deployed:
        click.echo(f"{use_case}: no environment in the GitOps repository")
        return
    click.echo(f"{use_case}, per environment of the GitOps repository:")
    for environment, (model, commit) in deployed.items():
        version = str(model.get("version") or "0")
        what = "nothing deployed" if version == "0" or not model.get("uri") else f"v{version}"
        click.echo(f"  {environment:<10} {what:<18} {commit}")
    for branch, subject in repo.approval_branches(use_case):
        click.echo(f"  pending approval: {branch}  {subject}")


@gitops.command("promote")
@use_case_option
@click.option("--from", "source", required=True, help="Environment to promote from (dev).")
@click.option("--to", "target", required=True, help="Environment to promote to (staging).")
@click.option("--approval", is_flag=True, help="Push a deploy/... branch for a pull request.")
def gitops_promote(use_case: str, source: str, target: str, approval: bool) -> None:
    """Deploy to the next environment what the previous one deploys: its model, then its
    model server's image tag (each its own commit)."""
    from mlops_assets.mlops.deploy import promote, promote_image

    try:
        adapter = load_use_case(use_case).training.adapter
        gitops = _gitops()
        result = promote(storage_of_settings(), gitops, use_case, source, target, adapter, approval)
        click.echo(result.reason)
        image = promote_image(gitops, use_case, source, target, approval)
    except (LookupError, RuntimeError) as error:
        raise CommandError(str(error)) from None
    if image is not None:
        click.echo(f"image: {image.reason}")


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


@gitops.command("init-environment")
@click.option("--environment", required=True, help="The environment's name (a folder).")
@click.option("--namespace", default="", help="Where its models run; default mlops-<env>.")
@click.option(
    "--auto-sync/--manual-sync",
    default=None,
    help="Argo CD syncs each commit, or a person syncs; default auto but for prod.",
)
@click.option("--sync-wave", type=int, default=0, help="Argo CD sync wave of its Applications.")
def gitops_init_environment(
    environment: str, namespace: str, auto_sync: bool | None, sync_wave: int
) -> None:
    """Add an environment to the GitOps repository: its environment.yaml, which the
    ApplicationSet reads (namespace, sync policy). Use cases deployed to it then get their
    Applications by themselves."""
    try:
        default = default_policy(environment)
        policy = EnvironmentPolicy(
            namespace or default.namespace,
            default.auto_sync if auto_sync is None else auto_sync,
            sync_wave,
        )
        result = (
            _gitops().repo(()).init_environment(environment, environment_yaml(environment, policy))
        )
    except (ValueError, GitOpsError) as error:
        raise CommandError(str(error)) from None
    click.echo(result.reason)
    if result.changed:
        click.echo(
            f"the namespace {policy.namespace} must exist in the cluster (charts/argocd "
            "`namespaces`); each use case's first deploy to it adds its Application"
        )


@gitops.command("set-image")
@click.option("--environment", required=True)
@click.option("--tag", required=True, help="The model-api image tag (a release's).")
@click.option(
    "--use-case",
    "use_cases",
    multiple=True,
    help="Only this use case (repeatable); default: every one in the environment.",
)
@click.option("--reason", default="", help="A line for the commit body.")
@click.option("--approval", is_flag=True, help="Push an image/... branch for a pull request.")
def gitops_set_image(
    environment: str, tag: str, use_cases: tuple[str, ...], reason: str, approval: bool
) -> None:
    """Set the model server's image tag of an environment's values files: one commit, the
    model keys untouched (a model deploy, in turn, never changes the image)."""
    trailers = {"Code-Version": code} if (code := env("MLOPS_CODE_VERSION")) else {}
    try:
        request = ImageRequest(
            environment,
            tag,
            use_cases,
            summary=[reason] if reason else [],
            trailers=trailers,
            approval=approval,
        )
        repo = _gitops().repo(use_cases) if use_cases else _gitops().repo()
        result = repo.set_image(request)
    except GitOpsError as error:
        raise CommandError(str(error)) from None
    click.echo(result.reason)
