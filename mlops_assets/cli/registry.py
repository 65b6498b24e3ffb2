"""`registry`: versions, champion, history, rollback and pins."""

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
def registry() -> None:
    """The model registry: versions, champion, history, rollback and pins."""


def _registry(use_case: str):
    from mlops_assets.registry import ModelRegistry

    load_use_case(use_case)  # an unknown use case is an error, not an empty list

    return ModelRegistry(storage_of_settings(), use_case)


@registry.command("list")
@use_case_option
def registry_list(use_case: str) -> None:
    """Released versions, with their test metric, and which one is champion."""
    reg = _registry(use_case)
    champion = reg.champion() or {}
    versions = reg.versions()
    if not versions:
        click.echo(
            f"{use_case}: no versions in the registry ({reg.storage.uri(reg.layout.model())})"
        )
        return
    for version in versions:
        meta = reg.metadata(version)
        marks = []
        if champion.get("version") == version:
            marks.append("champion" + (" (pinned)" if champion.get("pinned") else ""))
        if reg.status(version).get("status") == "rolled_back":
            marks.append(f"rolled back: {reg.status(version).get('reason', '')}")
        metric = meta.get("gate", {}).get("metric", "accuracy")  # the one the gate decides on
        click.echo(
            f"v{version}  {metric} {meta['metrics'][metric]:.4f}  dataset "
            f"{meta['dataset_version']}  {meta['created_at']}  {' '.join(marks)}"
        )


@registry.command("history")
@use_case_option
def registry_history(use_case: str) -> None:
    """Every move of the champion alias, every candidate the gate held, and every release
    the alias did not follow (a pin, a champion that moved meanwhile), in order."""
    for entry in _registry(use_case).history():
        if entry["action"] == "hold":
            click.echo(
                f"#{entry['sequence']}  {entry['at']}  hold     candidate "
                f"{entry['candidate_id']} (champion v{entry['version']} stays)  {entry['reason']}"
            )
            continue
        if entry["action"] == "not_promoted":
            click.echo(
                f"#{entry['sequence']}  {entry['at']}  released v{entry['version']}, not "
                f"promoted (champion v{entry['champion']} stays)  {entry['reason']}"
            )
            continue
        previous = f"v{entry['previous']}" if entry["previous"] else "none"
        at = entry.get("at", entry["promoted_at"])
        click.echo(
            f"#{entry['sequence']}  {at}  {entry['action']:<8} v{entry['version']}"
            f"{f' (was {previous})' if entry['action'] != 'unpin' else ''}"
            f"{'  pinned' if entry.get('pinned') else ''}  {entry['reason']}"
        )


@registry.command("rollback")
@use_case_option
@click.option("--version", "version", type=int, required=True, help="An existing version.")
@click.option("--reason", required=True, help="Why; recorded in the history.")
def registry_rollback(use_case: str, version: int, reason: str) -> None:
    """Make an existing version champion and pin it, so releases do not replace it."""
    try:
        alias = _registry(use_case).promote(version, reason, pin=True)
    except (LookupError, RuntimeError) as error:
        raise CommandError(str(error)) from None
    click.echo(
        f"{use_case}: v{alias['version']} is champion and pinned ({reason}); automatic "
        "releases will not replace it until `mlops-assets registry unpin`"
    )


@registry.command("unpin")
@use_case_option
@click.option("--reason", required=True, help="Why; recorded in the history.")
def registry_unpin(use_case: str, reason: str) -> None:
    """Unpin the champion, and promote the newest release that passed the gate against it
    while the pin held; releases that pass the gate replace the champion again."""
    try:
        alias, what = _registry(use_case).unpin(reason)
    except RuntimeError as error:
        raise CommandError(str(error)) from None
    click.echo(f"{use_case}: {what}; v{alias['version']} is champion")
    if alias.get("reason", "").startswith("promoted on unpin"):
        click.echo(
            f"deploy it: dg launch --assets {use_case}/deploy ({use_case}/deployed_is_champion "
            "warns until it is deployed)"
        )
