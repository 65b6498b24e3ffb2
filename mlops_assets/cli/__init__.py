"""`mlops-assets`: seed demo data, run the demo pipeline, serve a model, and look after
the registry and the GitOps repository. One module per command group."""

from mlops_assets.cli import (  # noqa: F401
    check,
    data,
    demo,
    gitops,
    kfp,
    landing,
    monitor,
    registry,
    serve,
)
from mlops_assets.cli.base import main

__all__ = ["main"]
