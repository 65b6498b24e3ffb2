"""mlops_assets: an asset-centric MLOps-GitOps workflow on Dagster."""

__version__ = "0.1.0"
