"""`discovery: notifications`: S3 tells an SQS queue what landed; the sensor reads the queue.

A tick in steady state is one ReceiveMessage when nothing is new, whatever the zone
holds. A message is deleted only once the run it led to exists (checked on the next
tick, by the run key the request carried), so a tick that dies after taking messages,
or a request that never became a run, lets them come back when their visibility
timeout ends: re-delivered, never lost, and the same files give the same run key.
A slow reconciliation listing, a few thousand keys a tick, catches what the queue
missed (events lost before the queue was set up, a queue purged by hand).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from mlops_assets.datasets.tabular.landing import is_ignored, landing_name
from mlops_assets.datasets.tabular.landing_index import each
from mlops_assets.errors import MlopsError
from mlops_assets.storage import ObjectInfo, ObjectStorage, UnsafeKeyError, safe_key

MAX_MESSAGES = 500
"""Messages one tick takes at most (10 per request); the rest wait for the next tick."""
VISIBILITY_SECONDS = 900
"""How long a taken message stays hidden: longer than a tick and the run request after it."""
RECONCILE_KEYS = 5_000
"""Keys one tick's reconciliation lists (5 LIST requests); a pass spans as many ticks."""
RECONCILE_SLACK_NS = 3600 * 10**9
"""A pass looks at files modified since the last pass began, less this much clock skew."""
FILES_PER_RUN = 1_000
"""Files one run request names at most (they travel in its run config)."""


class QueueError(MlopsError, RuntimeError):
    """The landing queue could not be read; the message names it."""


@dataclass
class Taken:
    """What one tick took from the queue."""

    keys: dict[str, list[str]] = field(default_factory=dict)
    """Storage key of a landed file -> receipt handles of the messages that named it."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(message id, reason) of what is not a new landing file; deleted at once."""
    done: list[str] = field(default_factory=list)
    """Receipt handles of messages that need no run."""


def sqs_client(queue_url: str, region: str | None) -> Any:
    """An SQS client for the queue (AWS_ENDPOINT_URL_SQS points it elsewhere, as boto3
    reads it), with few quick retries: an unreachable queue fails the tick, visibly."""
    import boto3
    from botocore.config import Config

    region = region or _region_of(queue_url)
    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10
    )
    return boto3.client("sqs", region_name=region, config=config)


def _region_of(queue_url: str) -> str | None:
    host = queue_url.split("/")[2] if queue_url.count("/") >= 2 else ""
    parts = host.split(".")
    return parts[1] if len(parts) > 3 and parts[0] == "sqs" else None


def receive(client: Any, queue_url: str) -> list[dict[str, Any]]:
    from botocore.exceptions import BotoCoreError, ClientError

    messages: list[dict[str, Any]] = []
    while len(messages) < MAX_MESSAGES:
        try:
            got = client.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=VISIBILITY_SECONDS,
            )
        except (BotoCoreError, ClientError) as error:
            raise QueueError(f"the landing queue {queue_url} could not be read: {error}") from error
        batch = got.get("Messages", [])
        if not batch:
            break
        messages.extend(batch)
    return messages


def delete(client: Any, queue_url: str, handles: list[str]) -> list[str]:
    """Delete messages by receipt handle; returns the reasons of those SQS refused (an
    expired handle: the message comes back and is handled again, harmlessly)."""
    from botocore.exceptions import BotoCoreError, ClientError

    failed: list[str] = []
    for start in range(0, len(handles), 10):
        chunk = handles[start : start + 10]
        entries = [{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(chunk)]
        try:
            answer = client.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        except (BotoCoreError, ClientError) as error:
            raise QueueError(
                f"messages of the landing queue {queue_url} could not be deleted: {error}"
            ) from error
        failed += [f"{f.get('Code')}: {f.get('Message', '')}" for f in answer.get("Failed", [])]
    return failed


def take(messages: list[dict[str, Any]], bucket: str, storage_prefix: str, landing: str) -> Taken:
    """Sort messages into landing files and what is skipped, each with its reason."""
    taken = Taken()
    zone = safe_key(storage_prefix, landing) if storage_prefix else safe_key(landing)
    strip = len(storage_prefix.strip("/")) + 1 if storage_prefix else 0
    for message in messages:
        handle, ident = message["ReceiptHandle"], message.get("MessageId", "?")
        try:
            records = _records(message.get("Body", ""))
        except ValueError as error:
            taken.skipped.append((ident, f"malformed message: {error}"))
            taken.done.append(handle)
            continue
        useful = False
        for record in records:
            reason, key = _landing_key(record, bucket, zone)
            if reason:
                taken.skipped.append((ident, reason))
                continue
            rel = key[strip:]
            if is_ignored(landing_name(rel, landing)):
                continue
            taken.keys.setdefault(rel, []).append(handle)
            useful = True
        if not useful:
            taken.done.append(handle)
    return taken


def _records(body: str) -> list[dict[str, Any]]:
    try:
        value = json.loads(body)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg})") from None
    if isinstance(value, dict) and value.get("Event") == "s3:TestEvent":
        return []  # what S3 sends once when the notification is set up
    if isinstance(value, dict) and isinstance(value.get("Message"), str):
        return _records(value["Message"])  # delivered through SNS
    records = value.get("Records") if isinstance(value, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError("no S3 event Records")
    return records


def _landing_key(record: dict[str, Any], bucket: str, zone: str) -> tuple[str, str]:
    """(reason to skip, "") or ("", the object's key in the bucket)."""
    event = str(record.get("eventName", ""))
    s3 = record.get("s3")
    if not isinstance(s3, dict):
        return "an event without an s3 object", ""
    name = str((s3.get("bucket") or {}).get("name", ""))
    key = unquote_plus(str((s3.get("object") or {}).get("key", "")))
    if not event.startswith("ObjectCreated"):
        return f"{event or 'an unnamed event'} for {key!r}: not a new object", ""
    if name != bucket:
        return f"{key!r} is in bucket {name!r}, not the landing zone's {bucket!r}", ""
    if not key.startswith(zone + "/"):
        return f"{key!r} is outside the landing zone {zone}/", ""
    try:
        safe_key(key)
    except UnsafeKeyError as error:
        return str(error), ""
    return "", key


def current(storage: ObjectStorage, keys: list[str]) -> tuple[list[ObjectInfo], list[str]]:
    """Each key's object as it is now (one HEAD), and the keys that no longer exist."""
    found = each(storage, storage.info, keys)
    gone = [key for key, info in zip(keys, found, strict=True) if info is None]
    return [info for info in found if info is not None], gone


@dataclass
class QueueCursor:
    """The sensor's cursor in notifications mode."""

    pending: list[dict[str, Any]] = field(default_factory=list)
    """[{run_keys, handles, at}]: messages to delete once those runs exist."""
    reconciled_ns: int = 0
    """When the last complete reconciliation pass began (0: never)."""
    pass_started_ns: int = 0
    pass_after: str | None = None
    """The key the reconciliation pass in progress has listed up to."""

    @classmethod
    def load(cls, cursor: str | None) -> QueueCursor:
        try:
            state = json.loads(cursor) if cursor else {}
        except json.JSONDecodeError:
            state = {}
        if not isinstance(state, dict) or "pending" not in state:
            return cls()  # none yet, or another mode's
        return cls(
            pending=list(state["pending"]),
            reconciled_ns=int(state.get("reconciled_ns", 0)),
            pass_started_ns=int(state.get("pass_started_ns", 0)),
            pass_after=state.get("pass_after"),
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "pending": self.pending,
                "reconciled_ns": self.reconciled_ns,
                "pass_started_ns": self.pass_started_ns,
                "pass_after": self.pass_after,
            }
        )

    def reconcile_due(self, every_hours: float, now_ns: int | None = None) -> bool:
        if every_hours <= 0:
            return False
        now_ns = now_ns or time.time_ns()
        return self.pass_after is not None or now_ns - self.reconciled_ns >= every_hours * 3.6e12

    def reconcile(self, storage: ObjectStorage, landing: str) -> list[ObjectInfo]:
        """One tick's share of a reconciliation pass: the files it lists that changed since
        the previous pass began."""
        if self.pass_after is None:
            self.pass_started_ns, self.pass_after = time.time_ns(), ""
        found = storage.list_after(landing, self.pass_after, limit=RECONCILE_KEYS)
        since = self.reconciled_ns - RECONCILE_SLACK_NS if self.reconciled_ns else 0
        changed = [
            info
            for info in found
            if info.modified_ns >= since and not is_ignored(landing_name(info.key, landing))
        ]
        if len(found) < RECONCILE_KEYS:
            self.reconciled_ns, self.pass_after = self.pass_started_ns, None
        else:
            self.pass_after = found[-1].key
        return changed


def queue_policy(queue_arn: str, bucket: str) -> dict[str, Any]:
    """Only S3, and only for this bucket, may send to the landing queue."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "mlops-assets-landing",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
            }
        ],
    }


def bucket_notification(
    existing: dict[str, Any], use_case: str, queue_arn: str, prefix: str
) -> dict[str, Any]:
    """The bucket's notification configuration with this use case's queue added (or
    replaced, by its Id): S3 keeps one configuration per bucket, so others are kept."""
    ident = f"mlops-assets-{use_case}-landing"
    kept = {k: v for k, v in existing.items() if k != "ResponseMetadata"}
    queues = [q for q in kept.get("QueueConfigurations", []) if q.get("Id") != ident]
    queues.append(
        {
            "Id": ident,
            "QueueArn": queue_arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
        }
    )
    return {**kept, "QueueConfigurations": queues}
