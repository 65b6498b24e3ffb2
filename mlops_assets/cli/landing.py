"""`landing setup-notifications`: S3 event notifications for a landing zone, to SQS."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import click

from mlops_assets.cli.base import (
    CommandError,
    landing_of,
    main,
    storage_of_settings,
    use_case_option,
)


@main.group()
def landing() -> None:
    """The landing zone of a tabular use case."""


@landing.command("put")
@use_case_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="The name in the landing zone; default the file's.")
def put(use_case: str, file: Path, name: str | None) -> None:
    """Land FILE (CSV or Parquet, as your upstream system writes it) in the use case's
    landing zone, on the configured storage (local or S3). A name already landed is left
    as it is: land a new batch under a new name."""
    from mlops_assets.datasets.tabular.config import FORMATS

    name = name or file.name
    if "/" in name or "\\" in name or name.startswith("."):
        raise CommandError(f"--name {name!r}: one file name, without a folder")
    if PurePosixPath(name).suffix.lower() not in FORMATS:
        raise CommandError(f"{name}: the landing zone takes {', '.join(sorted(FORMATS))} files")
    storage = storage_of_settings()
    key = f"{landing_of(use_case)}/{name}"
    if not storage.write_bytes(key, file.read_bytes(), if_absent=True):
        raise CommandError(f"{storage.uri(key)} is already landed: give another --name")
    click.echo(f"landed {file} as {storage.uri(key)}")


@landing.command("setup-notifications")
@use_case_option
@click.option(
    "--queue-name",
    default=None,
    help="The SQS queue to create or reuse; default mlops-assets-<use case>-landing.",
)
@click.option("--dry-run", is_flag=True, help="Print the queue policy and the notification only.")
def setup_notifications(use_case: str, queue_name: str | None, dry_run: bool) -> None:
    """Make the bucket send s3:ObjectCreated:* events of the landing prefix to an SQS queue
    (created if absent, with a policy that lets only this bucket send to it), for
    `discovery: notifications`. Other notifications of the bucket are kept."""
    from mlops_assets.datasets.tabular.notifications import (
        bucket_notification,
        queue_policy,
        sqs_client,
    )
    from mlops_assets.storage.s3 import S3Storage

    storage = storage_of_settings()
    if not isinstance(storage, S3Storage):
        raise CommandError(
            f"notifications need the landing zone on S3; the storage is {storage.uri('')} "
            "(set MLOPS_STORAGE_ROOT=s3://bucket/prefix)"
        )
    prefix = storage.full_key(landing_of(use_case)) + "/"
    name = queue_name or f"mlops-assets-{use_case}-landing"
    sqs = sqs_client("", storage.s3.region_name)
    s3 = storage.client()
    if dry_run:
        arn = f"arn:aws:sqs:<region>:<account>:{name}"
        click.echo(json.dumps(queue_policy(arn, storage.bucket), indent=2))
        click.echo(json.dumps(bucket_notification({}, use_case, arn, prefix), indent=2))
        return
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sqs.set_queue_attributes(
            QueueUrl=url, Attributes={"Policy": json.dumps(queue_policy(arn, storage.bucket))}
        )
        existing = s3.get_bucket_notification_configuration(Bucket=storage.bucket)
        s3.put_bucket_notification_configuration(
            Bucket=storage.bucket,
            NotificationConfiguration=bucket_notification(existing, use_case, arn, prefix),
        )
    except (BotoCoreError, ClientError) as error:
        raise CommandError(
            f"setting up notifications of s3://{storage.bucket}/{prefix} to {name} failed: {error}"
        ) from error
    click.echo(f"s3://{storage.bucket}/{prefix} sends ObjectCreated events to {url}")
    click.echo("In the use case's defs.yaml:")
    click.echo(
        f"  dataset:\n    landing:\n      prefix: {landing_of(use_case)}\n"
        f"      discovery: notifications\n      queue_url: {url}"
    )
