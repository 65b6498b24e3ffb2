"""The landing sensor: one DataOps run per set of new landing files."""

from typing import Any

import dagster as dg

from mlops_assets.kinds.tabular.landing import Discovery, new_landing_files
from mlops_assets.storage import Layout, ObjectStorage


def build_landing_sensor(
    use_case: str,
    landing: str,
    job: Any,
    interval_seconds: int,
    running: bool,
    discovery: Discovery = "listing",
) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{use_case}_landing_sensor",
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=(
            dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
        ),
        description=f"Starts {job.name} when files land in {landing}/ (local folder or S3; "
        f"discovery: {discovery}).",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, storage: ObjectStorage):
        tick = new_landing_files(storage, Layout(use_case), landing, context.cursor, discovery)
        if not tick.files:
            return dg.SensorResult(
                skip_reason=f"no new files in {storage.uri(landing)}", cursor=tick.cursor
            )
        names = sorted(f.key for f in tick.files)
        context.log.info(
            f"{len(names)} new file(s) in {landing}/: {', '.join(names[:10])}"
            + (" ..." if len(names) > 10 else "")
        )
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=tick.run_key,
                    tags={
                        # labelled production requests the monitor's trigger landed
                        "mlops/trigger": "monitor"
                        if all(n.rsplit("/", 1)[-1].startswith("feedback-") for n in names)
                        else "landing",
                        "mlops/new_files": str(len(names)),
                    },
                )
            ],
            cursor=tick.cursor,
        )

    return landing_sensor
