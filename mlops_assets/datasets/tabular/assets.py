"""The five DataOps assets of a use case, built from its component settings.

One function builds each asset; the bodies are thin: the work lives in the stage modules
(`acquire`, `observe`, ...), those that run pandas imported inside the bodies.
"""

from time import perf_counter
from typing import Any

import dagster as dg

from mlops_assets.core.report import md_table
from mlops_assets.core.spec import UseCaseSpec
from mlops_assets.core.step_failures import step_failures
from mlops_assets.core.steps import DATAOPS_STEPS, step_key, step_keys
from mlops_assets.datasets.tabular.acquire import run_acquire
from mlops_assets.datasets.tabular.catalog import catalog_state
from mlops_assets.datasets.tabular.clean_asset import clean_asset
from mlops_assets.datasets.tabular.config import TabularBlocks
from mlops_assets.storage import Layout, ObjectStorage


class AcquireRunConfig(dg.Config):
    files: list[str] = []
    """Storage keys of the landing files to look at (the notifications sensor names them);
    empty: find what is new by listing."""


class ObserveRunConfig(dg.Config):
    full: bool = False
    """Drift of every row after the reference batches, not just the new ones (the
    re-observation schedule sets it)."""


def build_dataops_assets(spec: UseCaseSpec, uc: TabularBlocks) -> list[dg.AssetsDefinition]:
    """`spec`'s DataOps assets, with the tabular blocks of its YAML (`uc`)."""
    return [
        acquire_asset(spec, uc),
        observe_asset(spec, uc),
        clean_asset(spec, uc),
        transform_asset(spec, uc),
        split_asset(spec, uc),
    ]


def _common(spec: UseCaseSpec) -> dict[str, Any]:
    """What every tabular DataOps asset shares: the stage's group, tags, owners; pandas."""
    return {**spec.common("dataops"), "kinds": {"pandas"}}


def check(
    key: dict[str, dg.AssetKey], step: str, check_name: str, description: str, **kw: Any
) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(check_name, asset=key[step], description=description, **kw)


def acquire_asset(spec: UseCaseSpec, uc: TabularBlocks) -> dg.AssetsDefinition:
    """New landing files into raw/, content-addressed; what cannot land is quarantined."""
    name = spec.name
    layout = Layout(name)
    landing = uc.landing
    key = step_keys(name, DATAOPS_STEPS)
    common = _common(spec)

    @dg.asset(
        key=key["acquire"],
        description=f"New files of {landing}/ ingested into raw/{name}/, content-addressed.",
        output_required=False,
        check_specs=[
            check(
                key,
                "acquire",
                "landing_names_safe",
                "Every new landing file was ingested: a name outside the landing zone, an "
                "unreadable or oversized file is quarantined with its reason instead.",
            )
        ],
        **common,
    )
    def acquire(
        context: dg.AssetExecutionContext, config: AcquireRunConfig, storage: ObjectStorage
    ):
        with step_failures():
            started = perf_counter()

            result = run_acquire(
                storage,
                layout,
                landing,
                context.run.run_id,
                uc.dataset.max_file_bytes,
                # without a list of files, a notifications zone is caught up by listing it
                "listing" if uc.dataset.discovery == "notifications" else uc.dataset.discovery,
                files=config.files or None,
            )
            for name_, reason in result.refused:
                context.log.error(f"quarantined landing file {name_!r}: {reason}")
            yield dg.AssetCheckResult(
                check_name="landing_names_safe",
                passed=not result.refused,
                description=(
                    f"{len(result.refused)} landing file(s) quarantined: "
                    + "; ".join(f"{n}: {r}" for n, r in result.refused)
                    if result.refused
                    else "every new landing file was ingested"
                ),
                metadata={"refused": [n for n, _ in result.refused]},
            )

            state = catalog_state(storage, layout)
            latest = storage.read_json(layout.dataset_latest, default={})
            if not result.new and (not state or latest.get("catalog") == state):
                context.log.info(
                    f"Nothing new in {storage.uri(landing)}: {result.landing_files} landing files "
                    "changed, all ingested before, and the dataset holds every batch. "
                    "Downstream steps are skipped."
                )
                return
            if not result.new:
                context.log.info("No new files; ingested batches are still to process.")
            yield dg.MaterializeResult(
                data_version=dg.DataVersion(state),
                metadata={
                    "new_batches": dg.MetadataValue.md(
                        md_table(
                            ["batch", "file", "bytes"],
                            [(b["batch_id"], b["source"], b["bytes"]) for b in result.new],
                        )
                        if result.new
                        else "nothing new"
                    ),
                    "new_batch_ids": [b["batch_id"] for b in result.new],
                    "landing_files": result.landing_files,
                    "raw_location": dg.MetadataValue.path(storage.uri(f"raw/{name}")),
                    "compute_seconds": perf_counter() - started,
                },
            )

    return acquire


def observe_asset(spec: UseCaseSpec, uc: TabularBlocks) -> dg.AssetsDefinition:
    """Profile, contract and drift of the new batches."""
    name = spec.name
    layout = Layout(name)
    dataset = uc.dataset
    key = step_keys(name, DATAOPS_STEPS)
    common = _common(spec)

    @dg.asset(
        key=key["observe"],
        deps=[key["acquire"]],
        description="Profile of the new batches and the whole dataset, and drift vs the reference.",
        check_specs=[
            check(
                key,
                "observe",
                "schema_matches_contract",
                "Every new file parses and has exactly the contract's columns.",
            ),
            check(
                key,
                "observe",
                "labels_in_range",
                f"Every label of the new rows is an integer in "
                f"{dataset.label.min}..{dataset.label.max}.",
            ),
            check(
                key,
                "observe",
                "drift_below_threshold",
                f"PSI of every feature below {uc.observe.drift_threshold}.",
            ),
        ],
        **common,
    )
    def observe(
        context: dg.AssetExecutionContext, config: ObserveRunConfig, storage: ObjectStorage
    ):
        with step_failures():
            started = perf_counter()
            from mlops_assets.datasets.tabular.observe import run_observe
            from mlops_assets.datasets.tabular.observe_report import observe_metadata

            result = run_observe(storage, layout, dataset, uc.observe, full=config.full)
            metadata, checks = observe_metadata(result, dataset, uc.observe)
            for rejected in result.rejected:
                context.log.error(
                    f"quarantined whole file {rejected['file']}: {rejected['reason']}"
                )
            metadata["compute_seconds"] = perf_counter() - started
            return dg.MaterializeResult(metadata=metadata, check_results=checks)

    return observe


def transform_asset(spec: UseCaseSpec, uc: TabularBlocks) -> dg.AssetsDefinition:
    """Features scaled to float32, with a stable row id."""
    name = spec.name
    layout = Layout(name)
    dataset = uc.dataset
    key = step_keys(name, DATAOPS_STEPS)
    common = _common(spec)

    @dg.asset(
        key=key["transform"],
        deps=[key["clean"]],
        description=f"Features as float32 divided by {dataset.scale:g}, with a stable row id.",
        **common,
    )
    def transform(context: dg.AssetExecutionContext, storage: ObjectStorage):
        with step_failures():
            started = perf_counter()
            from mlops_assets.datasets.tabular.transform import run_transform

            processed = run_transform(storage, layout, dataset)
            return dg.MaterializeResult(
                metadata={
                    "batches_transformed": len(processed),
                    "rows_transformed": sum(p["rows"] for p in processed),
                    "compute_seconds": perf_counter() - started,
                }
            )

    return transform


def split_asset(spec: UseCaseSpec, uc: TabularBlocks) -> dg.AssetsDefinition:
    """train/val/test by a stable hash of the row id: the dataset version."""
    name = spec.name
    layout = Layout(name)
    dataset = uc.dataset
    key = step_keys(name, DATAOPS_STEPS)
    common = _common(spec)

    @dg.asset(
        key=key["split"],
        deps=[key["transform"]],
        description=(
            f"train/val/test ({uc.split.train:g}/{uc.split.val:g}/{uc.split.test:g}) by a stable "
            "hash of the row id; the dataset version is the Dagster data version."
        ),
        check_specs=[
            check(
                key,
                "split",
                "no_row_in_two_splits",
                "No row id appears in two splits.",
                blocking=True,
            ),
            check(
                key,
                "split",
                "test_set_keeps_earlier_rows",
                "The test set contains every row of the previous dataset version's test set.",
                blocking=True,
            ),
        ],
        **common,
    )
    def split(context: dg.AssetExecutionContext, storage: ObjectStorage):
        with step_failures():
            started = perf_counter()
            from mlops_assets.datasets.tabular.split import run_split
            from mlops_assets.datasets.tabular.split_report import split_metadata

            result = run_split(storage, layout, dataset, uc.split)
            metadata, checks = split_metadata(storage, layout, result, dataset)
            metadata["compute_seconds"] = perf_counter() - started
            context.log.info(
                f"dataset version {result.version} ({metadata['dagster/row_count']} rows)"
            )
            return dg.MaterializeResult(
                data_version=dg.DataVersion(result.version), metadata=metadata, check_results=checks
            )

    return split


def reobserve_definitions(spec: UseCaseSpec, uc: TabularBlocks) -> tuple[list, list]:
    """A job that re-observes all of the data for drift, and its daily schedule."""
    running = spec.running
    job = dg.define_asset_job(
        f"{spec.name}_reobserve",
        selection=dg.AssetSelection.assets(step_key(spec.name, "observe")),
        description=f"Re-observes all of {spec.name}'s data for drift against the reference.",
        config={"ops": {f"{spec.name}__observe": {"config": {"full": True}}}},
        tags=spec.run_tags("dataops"),
    )
    schedule = dg.ScheduleDefinition(
        name=f"{spec.name}_reobserve_schedule",
        job=job,
        cron_schedule=uc.reobserve_cron,
        execution_timezone=spec.schedules.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING
        if running
        else dg.DefaultScheduleStatus.STOPPED,
        description="Full re-observation of the data for drift.",
    )
    return [job], [schedule]
