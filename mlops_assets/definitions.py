"""The code location: the `defs/` folder plus the environment's resources."""

import warnings
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import dagster as dg

from mlops_assets.gc_freeze import freeze_long_lived_objects
from mlops_assets.resources import environment_definitions
from mlops_assets.settings import load_settings


@contextmanager
def dagster_notices_silenced():
    """Dagster's beta, preview and supersession notices about the component APIs this
    project builds on: they are for us, not for our users (43 lines at every load)."""
    with warnings.catch_warnings():
        for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
            warnings.filterwarnings("ignore", category=category)
        yield


@cache
def _use_case_definitions(executor: str) -> dg.Definitions:
    """Every component under `defs/`, built once per process.

    Built folder by folder from the project's component tree rather than with
    `load_from_defs_folder`, whose root step also imports every installed
    component library (dagster-aws, ...) to describe them for the UI: about a
    second in every run and step process, for metadata no run uses. `dg list
    defs`, `dg check yaml` and the UI's component tree work the same.
    Cached because Dagster calls the `defs` loader again for each reconstruction; keyed by
    the executor, the one setting the components read (it decides where the GPU goes).
    """
    with dagster_notices_silenced():
        tree = dg.ComponentTree.for_project(Path(__file__).parent)
        entries = sorted(
            p.name
            for p in tree.defs_module_path.iterdir()
            if not p.name.startswith(("_", ".")) and (p.is_dir() or p.suffix == ".py")
        )
        return dg.Definitions.merge(
            *(tree.build_defs_at_path(entry) for entry in entries),
            dg.Definitions(component_tree=tree),
        )


def build_definitions() -> dg.Definitions:
    settings = load_settings()
    with dagster_notices_silenced():
        defs = dg.Definitions.merge(
            _use_case_definitions(settings.executor), environment_definitions(settings)
        )
        defs.get_repository_def()  # resolved (and cached) here, where the notices are silenced
    if settings.gc_freeze:
        freeze_long_lived_objects()
    return defs


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
