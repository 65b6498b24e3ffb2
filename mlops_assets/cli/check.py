"""`mlops-assets check`: every use case YAML checked as loading the definitions checks it."""

from __future__ import annotations

import click

from mlops_assets.cli.base import main


@main.command()
@click.argument("use_cases", nargs=-1)
def check(use_cases: tuple[str, ...]) -> None:
    """Check the use cases of defs/ (or those named): each is built as the code location
    builds it (schema, metric, adapter and estimator names, cron strings, everything its
    definitions need), and each problem is one line, `file:line: key: what is wrong`.
    Exit status 2 on any."""
    from mlops_assets.components.tree import check_use_cases

    problems, fine = check_use_cases(list(use_cases))
    for why in problems.values():
        click.echo(why)
    if fine:
        click.echo(f"{len(fine)} use case(s) check: {', '.join(fine)}", err=bool(problems))
    if problems:
        raise SystemExit(2)
