"""The project's use cases, as Dagster loads them from `defs/`."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from mlops_assets.components.load_errors import one_line
from mlops_assets.components.use_case import UseCase
from mlops_assets.errors import MlopsError

PROJECT = Path(__file__).resolve().parent.parent


class UnknownUseCaseError(MlopsError, LookupError):
    """No `defs/<name>/defs.yaml` declares this use case."""


class UseCaseLoadError(MlopsError, ValueError):
    """A use case's YAML does not load; the message is `file:line: key: what is wrong`."""


def project_tree() -> dg.ComponentTree:
    return dg.ComponentTree.for_project(PROJECT)


def entries(tree: dg.ComponentTree) -> list[str]:
    """The folders and modules under `defs/`, in a stable order."""
    return sorted(
        p.name
        for p in tree.defs_module_path.iterdir()
        if not p.name.startswith(("_", ".")) and (p.is_dir() or p.suffix == ".py")
    )


def load_use_case(name: str, tree: dg.ComponentTree | None = None) -> UseCase:
    """The component `defs/<name>/defs.yaml` declares, resolved as Dagster resolves it
    (its `type:` names the kind's component class)."""
    tree = tree or project_tree()
    if name not in entries(tree):
        raise UnknownUseCaseError(
            f"no use case {name!r}: {tree.defs_module_path / name / 'defs.yaml'} does not exist"
        )
    try:
        component = tree.load_component(name)
    except Exception as error:
        raise UseCaseLoadError(one_line(error, tree.defs_module_path / name)) from None
    if not isinstance(component, UseCase):
        raise UnknownUseCaseError(f"defs/{name} is not a use case ({type(component).__name__})")
    return component


def broken_use_cases(tree: dg.ComponentTree | None = None) -> dict[str, str]:
    """Each use case folder that does not load, with its one-line reason."""
    tree = tree or project_tree()
    found = {}
    for entry in entries(tree):
        try:
            tree.load_component(entry)
        except Exception as error:
            found[entry] = one_line(error, tree.defs_module_path / entry)
    return found
