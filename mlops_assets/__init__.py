"""mlops_assets: an asset-centric MLOps-GitOps workflow on Dagster."""

from mlops_assets import moved

__version__ = "0.1.0"

moved.install()  # the previous release's import paths, for one release (moved.py)
