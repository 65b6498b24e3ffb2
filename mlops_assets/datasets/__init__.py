"""The dataset kinds, by name: the one place that maps a name to a kind's code.

A kind is a package (`tabular`, `lsfb`, or one a plug-in installs) with its `dataset:`
model (a `mlops_assets.core.kind.DatasetKind`) and its DataOps code; its component type
lives in `mlops_assets.components`. Names read from storage (a model's request contract)
or a pipeline argument only ever select one of these; a plug-in registers under the
entry-point group `mlops_assets.kinds` (`name = "package.module:DatasetClass"`), as
adapters do (the group kept its name when the package became `datasets/`).
"""

from __future__ import annotations

from functools import cache
from importlib import import_module
from importlib.metadata import entry_points

from mlops_assets.core.kind import DatasetKind

ENTRY_POINT_GROUP = "mlops_assets.kinds"
BUILT_IN = {
    "tabular": "mlops_assets.datasets.tabular.dataset:TabularDataset",
    "lsfb_isol": "mlops_assets.datasets.lsfb.dataset:LsfbDataset",
}


def _load(target: str) -> type[DatasetKind]:
    module, _, attribute = target.partition(":")
    return getattr(import_module(module), attribute)


@cache
def kinds() -> dict[str, type[DatasetKind]]:
    """Every kind: the built-in ones, then those installed plug-ins register."""
    found = {name: _load(target) for name, target in BUILT_IN.items()}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in found:
            continue  # a plug-in never replaces a built-in kind
        cls = point.load()
        if not (isinstance(cls, type) and issubclass(cls, DatasetKind)):
            raise TypeError(f"entry point {point.name} = {point.value} is not a DatasetKind")
        found[point.name] = cls
    return found


def kind(name: str) -> type[DatasetKind]:
    found = kinds()
    if name not in found:
        raise KeyError(f"unknown dataset kind {name!r}; known: {', '.join(sorted(found))}")
    return found[name]


def kind_for_contract(contract_kind: str) -> type[DatasetKind]:
    """The kind whose request contract this is (the model server's transform)."""
    for cls in kinds().values():
        if cls.contract_kind == contract_kind:
            return cls
    raise KeyError(f"unknown request contract kind {contract_kind!r}")
