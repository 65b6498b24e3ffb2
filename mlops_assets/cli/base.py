"""The `mlops-assets` command group, its error handling, and what its commands share."""

from __future__ import annotations

import os
import warnings

import click

from mlops_assets.errors import MlopsError, redact
from mlops_assets.runtime.native_stderr import VERBOSE_VAR
from mlops_assets.settings import load_settings

use_case_option = click.option("--use-case", default="digits", show_default=True)


def load_use_case(use_case: str):
    """The use case `defs/<name>/defs.yaml` declares, resolved as Dagster resolves it; a
    use case that does not load is one `Error:` line, and any other that does not is named
    in a warning line, so a typo never waits for a run to show."""
    from mlops_assets.components.tree import broken_use_cases, project_tree
    from mlops_assets.components.tree import load_use_case as load

    tree = project_tree()
    loaded = load(use_case, tree)
    for name, why in sorted(broken_use_cases(tree).items()):
        click.echo(f"Warning: use case {name} does not load: {why}", err=True)
    return loaded


def landing_of(use_case: str) -> str:
    """The landing prefix of a tabular use case."""
    uc = load_use_case(use_case)
    if not hasattr(uc, "landing"):
        raise click.UsageError(f"{use_case} has no landing zone (its kind is {uc.dataset.kind})")
    return uc.landing


def storage_of_settings():
    from mlops_assets.resources import build_storage

    return build_storage(load_settings())


def which_batches(spec: str | None, count: int) -> list[int]:
    if not spec:
        return list(range(1, count + 1))
    picked: list[int] = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        picked += range(int(first), int(last or first) + 1)
    if any(not 1 <= n <= count for n in picked):
        raise click.BadParameter(f"batches are numbered 1..{count}", param_hint="--which")
    return picked


class CommandError(click.ClickException):
    """A failure the user can act on: `Error: <one line>` on stderr, exit status 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(redact(message).split()))


class _Commands(click.Group):
    """The project's own errors (settings, storage, registry, GitOps, model loading) are
    printed as one line; anything else is a bug and keeps its traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MlopsError as error:
            raise CommandError(str(error)) from None


@click.group(cls=_Commands)
@click.version_option(package_name="mlops_assets", prog_name="mlops-assets")
@click.option(
    "--verbose",
    is_flag=True,
    help="Show what is kept back by default: TensorFlow's C++ lines at import (sets "
    "MLOPS_VERBOSE for this command and the processes it starts).",
)
def main(verbose: bool) -> None:
    """mlops_assets: an asset-centric MLOps-GitOps workflow on Dagster."""
    import dagster as dg

    if verbose:
        os.environ[VERBOSE_VAR] = "1"  # env: read by this process and the ones it starts

    # Dagster's own beta/preview notices about its component APIs are not for our users.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
