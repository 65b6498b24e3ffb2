"""The code location: the `defs/` folder plus the environment's resources."""

from pathlib import Path

import dagster as dg

from mlops_assets.resources import environment_definitions
from mlops_assets.settings import load_settings


def build_definitions() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        environment_definitions(load_settings()),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
