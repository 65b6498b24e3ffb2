"""The tabular kind: files in a landing zone, a row contract, hash splits, feature drift."""

from mlops_assets.kinds.tabular.component import TabularUseCase
from mlops_assets.kinds.tabular.dataset import TabularDataset

__all__ = ["TabularDataset", "TabularUseCase"]
