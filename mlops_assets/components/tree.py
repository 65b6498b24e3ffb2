"""The project's use cases, as Dagster loads them from `defs/`."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from mlops_assets.components.use_case import UseCase
from mlops_assets.errors import MlopsError

PROJECT = Path(__file__).resolve().parent.parent


class UnknownUseCaseError(MlopsError, LookupError):
    """No `defs/<name>/defs.yaml` declares this use case."""


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
    component = tree.load_component(name)
    if not isinstance(component, UseCase):
        raise UnknownUseCaseError(f"defs/{name} is not a use case ({type(component).__name__})")
    return component
