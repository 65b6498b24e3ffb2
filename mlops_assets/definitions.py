"""The code location: the `defs/` folder plus the environment's resources."""

import logging
import warnings
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import dagster as dg

from mlops_assets.components.load_errors import one_line
from mlops_assets.components.tree import entries, project_tree
from mlops_assets.components.use_case import BuildOptions, build_options
from mlops_assets.errors import MlopsError
from mlops_assets.resources import environment_definitions
from mlops_assets.runtime import skipped_check_notice
from mlops_assets.runtime.gc_freeze import freeze_long_lived_objects
from mlops_assets.settings import Settings, load_settings

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The clone's root: code references' paths are relative to it in the repository."""


@contextmanager
def dagster_notices_silenced():
    """Dagster's beta, preview and supersession notices about the component APIs this
    project builds on: they are for us, not for our users (43 lines at every load)."""
    with warnings.catch_warnings():
        for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
            warnings.filterwarnings("ignore", category=category)
        yield


@cache
def _use_case_definitions(options: BuildOptions) -> dg.Definitions:
    """Every component under `defs/`, built once per process for these options.

    Built folder by folder with Dagster's component tree (`build_defs_at_path` for each),
    rather than with `load_from_defs_folder`, whose root step also imports every installed
    component library (dagster-aws, ...) to describe them for the UI: about a second in
    every run and step process, for metadata no run uses; and which stops at the first
    folder that fails. `dg list defs`, `dg check yaml` and the UI's component tree work the
    same. Cached because Dagster calls the `defs` loader again for each reconstruction;
    keyed by the options, everything of the environment that a use case's `build_defs`
    reads from the settings.
    """
    with dagster_notices_silenced():
        tree = project_tree()
        tree.find_root_decl()  # walks defs/, noting each folder whose YAML does not parse
        built, failed = [], dict(tree.unparsed)
        for entry in entries(tree):
            if entry in failed:
                continue
            try:  # one folder that does not load stops no other
                built.append(tree.build_defs_at_path(entry))
            except Exception as error:
                failed[entry] = one_line(error, tree.defs_module_path / entry)
        for entry, why in sorted(failed.items()):
            log.error("use case %s not loaded: %s", entry, why)
        if failed and not built:
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


def linked_to_git(defs: dg.Definitions, settings: Settings) -> dg.Definitions:
    """Every asset's code references (its Python builder, its component YAML) as links to
    this code in git at MLOPS_CODE_VERSION, when MLOPS_CODE_REPO_URL names the repository."""
    if not settings.code_repo_url:
        return defs
    mapping = dg.AnchorBasedFilePathMapping(
        local_file_anchor=PROJECT_ROOT, file_anchor_path_in_repository=""
    )

    linked = dg.link_code_references_to_git(
        list(defs.assets or []),
        git_url=settings.code_repo_url,
        git_branch=settings.code_version or "main",
        file_path_mapping=mapping,
    )
    return dg.Definitions(  # the same definitions, every field of them, with linked assets
        assets=linked,
        schedules=defs.schedules,
        sensors=defs.sensors,
        jobs=defs.jobs,
        resources=defs.resources,
        executor=defs.executor,
        loggers=defs.loggers,
        asset_checks=defs.asset_checks,
        metadata=defs.metadata,
        component_tree=defs.component_tree,
    )


def build_definitions() -> dg.Definitions:
    settings = load_settings()
    skipped_check_notice.install()  # every process that runs steps loads the definitions
    with dagster_notices_silenced():
        defs = dg.Definitions.merge(
            linked_to_git(_use_case_definitions(build_options(settings)), settings),
            environment_definitions(settings),
        )
        defs.get_repository_def()  # resolved (and cached) here, where the notices are silenced
    if settings.gc_freeze:
        freeze_long_lived_objects()
    return defs


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
