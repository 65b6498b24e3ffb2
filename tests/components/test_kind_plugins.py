"""A dataset kind from an installed package: found by its entry point, used by the model
server's transform by its contract's name; never replacing a built-in kind."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

PLUGIN = """
from typing import ClassVar

import dagster as dg

from mlops_assets.core.kind import DatasetKind


class GridDataset(DatasetKind, dg.Model, dg.Resolvable):
    kind: ClassVar[str] = "grid"
    contract_kind: ClassVar[str] = "grid_v1"
    side: int = 4

    def load_split(self, storage, layout, version, split):
        raise NotImplementedError

    def request_contract(self):
        return {"kind": self.contract_kind, "version": 1, "side": self.side}

    @staticmethod
    def to_model_input(contract, arrays):
        return arrays["grid"].reshape(-1, contract["side"] ** 2) / 2


class Impostor(GridDataset):
    kind: ClassVar[str] = "tabular"
    contract_kind: ClassVar[str] = "tabular"


NOT_A_KIND = object()
"""


def install(tmp_path, monkeypatch, entries: str) -> None:
    """A package and its dist-info on sys.path, as `pip install` would leave them."""
    (tmp_path / "grid_kind.py").write_text(PLUGIN)
    info = tmp_path / "grid_kind-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: grid-kind\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[mlops_assets.kinds]\n" + textwrap.dedent(entries).strip() + "\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.fixture(autouse=True)
def fresh_registry():
    from mlops_assets.datasets import kinds

    kinds.cache_clear()
    yield
    kinds.cache_clear()
    sys.modules.pop("grid_kind", None)


def test_a_plugin_kind_is_found_and_serves_its_contract(tmp_path, monkeypatch):
    install(
        tmp_path,
        monkeypatch,
        """
        grid = grid_kind:GridDataset
        tabular = grid_kind:Impostor
        """,
    )
    from mlops_assets.datasets import kind, kind_for_contract, kinds
    from mlops_assets.datasets.model_input import to_model_input
    from mlops_assets.datasets.tabular import TabularDataset

    assert kind("grid").__name__ == "GridDataset"
    assert kinds()["tabular"] is TabularDataset  # a plug-in never replaces a built-in kind
    assert kind_for_contract("tabular") is TabularDataset
    contract = kind("grid")(side=2).request_contract()
    x = to_model_input(contract, {"grid": np.arange(8.0).reshape(2, 2, 2)})
    assert x.shape == (2, 4) and x[1, 3] == 3.5


def test_an_entry_point_that_is_not_a_kind_is_refused(tmp_path, monkeypatch):
    install(tmp_path, monkeypatch, "broken = grid_kind:NOT_A_KIND")
    from mlops_assets.datasets import kinds

    with pytest.raises(TypeError, match="broken = grid_kind:NOT_A_KIND is not a DatasetKind"):
        kinds()


def test_an_unknown_contract_kind_is_a_contract_error():
    from mlops_assets.datasets.model_input import ContractError, to_model_input

    with pytest.raises(ContractError, match="unknown request contract kind 'pickle'"):
        to_model_input({"kind": "pickle", "version": 1}, {})
