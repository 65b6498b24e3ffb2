"""The LSFB source sensor: a DataOps run when the source's `instances.csv` changes."""

from typing import Any

import dagster as dg

from mlops_assets.datasets.lsfb.config import LsfbData
from mlops_assets.datasets.lsfb.download import DownloadError, probe, source_url


def build_source_sensor(
    use_case: str, config: LsfbData, job: Any, interval_seconds: int, running: bool
) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{use_case}_source_sensor",
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=(
            dg.DefaultSensorStatus.RUNNING if running else dg.DefaultSensorStatus.STOPPED
        ),
        description=f"Starts {job.name} when instances.csv at the LSFB source changes "
        "(ETag, Last-Modified, else a content hash).",
    )
    def source_sensor(context: dg.SensorEvaluationContext):

        url = f"{source_url(config)}/instances.csv"
        try:
            token = probe(url, timeout=min(config.timeout_seconds, 20))
        except (DownloadError, OSError) as error:
            return dg.SkipReason(f"cannot reach {url}: {error}")
        if token == context.cursor:
            return dg.SensorResult(skip_reason=f"{url} unchanged ({token})", cursor=token)
        context.log.info(f"{url} changed: {token}")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"{use_case}-source-{token}", tags={"mlops/trigger": "source"}
                )
            ],
            cursor=token,
        )

    return source_sensor
