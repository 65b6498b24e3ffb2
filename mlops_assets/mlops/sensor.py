"""Starts the MLOps job when the split asset gets a new data version (dataset version)."""

from typing import Any

import dagster as dg

from mlops_assets.registry import ModelRegistry
from mlops_assets.storage import ObjectStorage

DATA_VERSION_TAG = "dagster/data_version"


def build_new_dataset_sensor(
    use_case: str, split_key: dg.AssetKey, job: Any, running: bool
) -> dg.SensorDefinition:
    @dg.asset_sensor(
        name=f"{use_case}_new_dataset_sensor",
        asset_key=split_key,
        job=job,
        # it reads only the Dagster event log: cheap, so it may look often, and the time
        # from landing to deploy is the landing sensor's interval plus the runs
        minimum_interval_seconds=5,
        default_status=(
            dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
        ),
        description=f"Starts {job.name} for each new dataset version of "
        f"{split_key.to_user_string()}.",
    )
    def new_dataset_sensor(
        context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry, storage: ObjectStorage
    ):

        materialization = asset_event.asset_materialization
        version = (materialization.tags or {}).get(DATA_VERSION_TAG) if materialization else None
        if not version:
            return dg.SkipReason("materialization without a data version")
        registry = ModelRegistry(storage, use_case)
        champion = registry.champion()
        if champion and registry.metadata(champion["version"]).get("dataset_version") == version:
            # e.g. the demo trained on it already, or a run was launched by hand
            return dg.SkipReason(
                f"champion v{champion['version']} was trained on dataset {version} already"
            )
        # One run per dataset version: the run key makes a second request a no-op.
        return dg.RunRequest(
            run_key=f"{use_case}-dataset-{version}",
            tags={"mlops/trigger": "new_dataset", "mlops/dataset_version": version},
        )

    return new_dataset_sensor
