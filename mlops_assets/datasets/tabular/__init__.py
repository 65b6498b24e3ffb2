"""The tabular kind: files in a landing zone, a row contract, hash splits, feature drift.

Its component type (the Dagster side) is `mlops_assets.components.tabular.TabularUseCase`.
"""

from mlops_assets.datasets.tabular.dataset import TabularDataset

__all__ = ["TabularDataset"]
