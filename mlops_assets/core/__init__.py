"""What every dataset kind and the MLOps half share, below both: step names and asset
keys, the dataset-kind interface, a split as training sees it, report helpers.

This package imports no kind and nothing from `mlops/` (tests/test_import_rules.py).
"""
