"""The import paths of the release before this one, kept working for one release.

Plug-ins and use case YAML may name them (`type: mlops_assets.kinds.tabular.TabularUseCase`,
`from mlops_assets.pipeline.kind import DatasetKind`): each old name imports as a module
that forwards to the new one, with a DeprecationWarning naming the new path. No code is
chosen by what is imported: the table below is the whole mapping. docs/changelog.md says
what moved and when the old paths go.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from collections.abc import Sequence
from typing import Any

MOVED_PACKAGES = {
    "mlops_assets.pipeline": "mlops_assets.core",
    "mlops_assets.kinds": "mlops_assets.datasets",
}
"""Old package -> new package; their submodules follow."""
MOVED_MODULES = {
    "mlops_assets.kinds.tabular.component": "mlops_assets.components.tabular",
    "mlops_assets.kinds.lsfb.component": "mlops_assets.components.lsfb",
    "mlops_assets.registry.registry": "mlops_assets.registry.store",
    "mlops_assets.model_input": "mlops_assets.datasets.model_input",
    "mlops_assets.gc_freeze": "mlops_assets.runtime.gc_freeze",
    "mlops_assets.components.config": "mlops_assets.core.config",
}
ALSO_FROM = {
    # a kind's package was where the YAML found its component type
    "mlops_assets.kinds.tabular": "mlops_assets.components.tabular",
    "mlops_assets.kinds.lsfb": "mlops_assets.components.lsfb",
}


def new_name(old: str) -> str | None:
    """Where an old module name lives now (None: it did not move)."""
    if old in MOVED_MODULES:
        return MOVED_MODULES[old]
    for package, moved in MOVED_PACKAGES.items():
        if old == package or old.startswith(package + "."):
            return moved + old[len(package) :]
    return None


class _Forwarding(types.ModuleType):
    """An old module name: attribute reads go to the new module (then `ALSO_FROM`'s)."""

    def __init__(self, name: str, targets: list[str]) -> None:
        super().__init__(name)
        self.__path__: list[str] = []  # a package, so its old submodules import too
        self._targets = targets

    def __getattr__(self, attribute: str) -> Any:
        for target in self._targets:
            module = importlib.import_module(target)
            if hasattr(module, attribute):
                return getattr(module, attribute)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attribute!r}")


class MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old names of `MOVED_PACKAGES` and `MOVED_MODULES`, and nothing else."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if new_name(fullname) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        moved = new_name(spec.name) or spec.name
        warnings.warn(
            f"{spec.name} moved to {moved}; the old path goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        importlib.import_module(moved)  # fails here, naming the new path, if it is gone
        targets = [moved, *([ALSO_FROM[spec.name]] if spec.name in ALSO_FROM else [])]
        return _Forwarding(spec.name, targets)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the module forwards."""


def install() -> None:
    """Put the finder on the import path once (the package's `__init__` calls it)."""
    if not any(isinstance(finder, MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedFinder())
