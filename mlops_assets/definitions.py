"""The code location: the `defs/` folder plus the environment's resources."""

import logging
import warnings
from contextlib import contextmanager
from functools import cache

import dagster as dg

from mlops_assets.components.load_errors import one_line
from mlops_assets.components.tree import entries, project_tree
from mlops_assets.components.use_case import BuildOptions, UseCase
from mlops_assets.errors import MlopsError
from mlops_assets.gc_freeze import freeze_long_lived_objects
from mlops_assets.resources import environment_definitions
from mlops_assets.settings import Settings, load_settings

log = logging.getLogger(__name__)


@contextmanager
def dagster_notices_silenced():
    """Dagster's beta, preview and supersession notices about the component APIs this
    project builds on: they are for us, not for our users (43 lines at every load)."""
    with warnings.catch_warnings():
        for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
            warnings.filterwarnings("ignore", category=category)
        yield


def build_options(settings: Settings) -> BuildOptions:
    """What of the environment changes the definitions: the cache key below."""
    return BuildOptions(
        executor=settings.executor,
        sensor_interval_seconds=settings.sensor_interval_seconds,
        branch_deployment=settings.env == "branch",
        code_repo_url=settings.code_repo_url or "",
        code_version=settings.code_version or "",
    )


@cache
def _use_case_definitions(options: BuildOptions) -> dg.Definitions:
    """Every component under `defs/`, built once per process for these options.

    Built folder by folder from the project's component tree rather than with
    `load_from_defs_folder`, whose root step also imports every installed
    component library (dagster-aws, ...) to describe them for the UI: about a
    second in every run and step process, for metadata no run uses. `dg list
    defs`, `dg check yaml` and the UI's component tree work the same.
    A use case is built with the environment's options (its `build_defs`, which `dg`
    calls, uses the local default's); anything else under `defs/` is built as it is.
    Cached because Dagster calls the `defs` loader again for each reconstruction; keyed by
    the options, everything of the environment that the definitions depend on.
    """
    with dagster_notices_silenced():
        tree = project_tree()
        built, failed = [], {}
        for entry in entries(tree):
            try:  # one folder that does not load stops no other
                component = tree.load_component(entry)
                if isinstance(component, UseCase):
                    built.append(component.definitions(options))
                else:
                    built.append(tree.build_defs_at_path(entry))
            except Exception as error:
                failed[entry] = one_line(error, tree.defs_module_path / entry)
                log.error("use case %s not loaded: %s", entry, failed[entry])
        if failed and not built:  # a YAML syntax error stops Dagster's whole tree
            raise DefinitionsError("; ".join(sorted(set(failed.values()))))
        return dg.Definitions.merge(
            *built,
            *(_not_loaded(e, why) for e, why in failed.items()),
            dg.Definitions(component_tree=tree),
        )


class DefinitionsError(MlopsError, RuntimeError):
    """No use case could be loaded; the message names each file, line and key."""


def _not_loaded(entry: str, why: str) -> dg.Definitions:
    """A use case folder that did not load, as one asset whose description says why: what
    the UI, `dg list defs` and the asset catalog show in its place."""
    return dg.Definitions(
        assets=[
            dg.AssetSpec(
                key=dg.AssetKey([entry, "not_loaded"]),
                group_name=entry,
                description=f"defs/{entry} did not load: {why}",
                metadata={"error": why},
                kinds={"error"},
            )
        ]
    )


def build_definitions() -> dg.Definitions:
    settings = load_settings()
    with dagster_notices_silenced():
        defs = dg.Definitions.merge(
            _use_case_definitions(build_options(settings)), environment_definitions(settings)
        )
        defs.get_repository_def()  # resolved (and cached) here, where the notices are silenced
    if settings.gc_freeze:
        freeze_long_lived_objects()
    return defs


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
