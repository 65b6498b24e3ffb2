"""The project's use cases, as Dagster loads them from `defs/`."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import dagster as dg
from dagster.components.core.decl import (
    DefsFolderDecl,
    build_filesystem_component_decl_from_context,
)
from dagster.components.core.defs_module import (
    EXPLICITLY_IGNORED_GLOB_PATTERNS,
    ComponentPath,
    DefsFolderComponent,
    context_with_injected_scope,
)

from mlops_assets.components.load_errors import one_line
from mlops_assets.components.use_case import UseCase
from mlops_assets.errors import MlopsError

PROJECT = Path(__file__).resolve().parent.parent


class UnknownUseCaseError(MlopsError, LookupError):
    """No `defs/<name>/defs.yaml` declares this use case."""


class UseCaseLoadError(MlopsError, ValueError):
    """A use case's YAML does not load; the message is `file:line: key: what is wrong`."""


class UseCaseTree(dg.ComponentTree):
    """Dagster's component tree of the project, whose walk of `defs/` survives a folder
    that does not parse (a YAML syntax error): that folder is left out of the tree and
    reported in `unparsed`, and every other folder loads as Dagster would load it.

    Dagster's own walk stops at the first such file, taking every use case with it. This
    repeats its loop over the top-level folders (dagster 1.13's `decl.py`) with the error
    caught per folder; tests/components/test_use_case_isolation.py holds it to Dagster's result when
    every folder parses."""

    @cached_property
    def unparsed(self) -> dict[str, str]:
        """Top-level folder -> why its YAML does not parse (one line)."""
        return {}

    def _get_filesystem_decl(self):  # noqa: ANN202  (Dagster's ComponentDecl)
        try:
            return super()._get_filesystem_decl()
        except Exception:  # some folder does not parse: walk them one at a time
            pass
        loc = ComponentPath.from_path(self.defs_module_path)
        context = self.decl_load_context.for_component_loc(loc)
        children = {}
        for sub in sorted(self.defs_module_path.iterdir()):
            relative = sub.relative_to(self.defs_module_path)
            if any(relative.match(pattern) for pattern in EXPLICITLY_IGNORED_GLOB_PATTERNS):
                continue
            sub_context = context_with_injected_scope(
                context, DefsFolderComponent, None
            ).for_component_loc(ComponentPath.from_path(sub))
            try:
                decl = build_filesystem_component_decl_from_context(sub_context)
            except Exception as error:
                self.unparsed[sub.name] = one_line(error, sub)
                continue
            if decl:
                children[sub] = decl
        folder = DefsFolderDecl(
            context=context, loc=loc, children=children, source_tree=None, component_file_model=None
        )
        self.state_tracker.set_cache_data(loc, component_decl=folder)
        return folder


def project_tree() -> UseCaseTree:
    return UseCaseTree.for_project(PROJECT)


def entries(tree: dg.ComponentTree) -> list[str]:
    """The folders and modules under `defs/`, in a stable order."""
    return sorted(
        p.name
        for p in tree.defs_module_path.iterdir()
        if not p.name.startswith(("_", ".")) and (p.is_dir() or p.suffix == ".py")
    )


def load_use_case(name: str, tree: UseCaseTree | None = None) -> UseCase:
    """The component `defs/<name>/defs.yaml` declares, resolved as Dagster resolves it
    (its `type:` names the kind's component class)."""
    tree = tree or project_tree()
    if name not in entries(tree):
        raise UnknownUseCaseError(
            f"no use case {name!r}: {tree.defs_module_path / name / 'defs.yaml'} does not exist"
        )
    tree.find_root_decl()
    if name in tree.unparsed:
        raise UseCaseLoadError(tree.unparsed[name])
    try:
        component = tree.load_component(name)
    except Exception as error:
        raise UseCaseLoadError(one_line(error, tree.defs_module_path / name)) from None
    if not isinstance(component, UseCase):
        raise UnknownUseCaseError(f"defs/{name} is not a use case ({type(component).__name__})")
    return component


def broken_use_cases(tree: UseCaseTree | None = None) -> dict[str, str]:
    """Each use case folder that does not load, with its one-line reason."""
    tree = tree or project_tree()
    tree.find_root_decl()
    found = dict(tree.unparsed)
    for entry in entries(tree):
        if entry in found:
            continue
        try:
            tree.load_component(entry)
        except Exception as error:
            found[entry] = one_line(error, tree.defs_module_path / entry)
    return found


def check_use_cases(names: list[str] | None = None) -> tuple[dict[str, str], list[str]]:
    """The use cases `names` (default: every folder of `defs/`) built as the code location
    builds them: (each that does not build, with its one-line reason; those that do)."""
    tree = project_tree()
    tree.find_root_decl()
    known = entries(tree)
    problems: dict[str, str] = {}
    for name in names or []:
        if name not in known:
            problems[name] = f"{tree.defs_module_path / name / 'defs.yaml'}: no such use case"
    fine = []
    for entry in names or known:
        if entry in problems:
            continue
        if entry in tree.unparsed:
            problems[entry] = tree.unparsed[entry]
            continue
        try:
            tree.build_defs_at_path(entry)
        except Exception as error:
            problems[entry] = one_line(error, tree.defs_module_path / entry)
        else:
            fine.append(entry)
    return problems, fine
