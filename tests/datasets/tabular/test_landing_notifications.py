"""`discovery: notifications`: S3 and SQS from the same moto server, which delivers the
bucket's ObjectCreated events to the queue that `mlops-assets landing setup-notifications`
created. Every S3 and SQS request of a tick is counted."""

from __future__ import annotations

import json
from collections import Counter

import boto3
import dagster as dg
import pytest
from click.testing import CliRunner

from mlops_assets.cli import main
from mlops_assets.datasets.tabular.catalog import load_catalog
from mlops_assets.demo.digits_data import seed_digits
from mlops_assets.storage import Layout
from tests.support.aws import count_aws_requests
from tests.support.use_cases import digits_with, use_case_definitions

LAYOUT = Layout("digits")
CALLS: Counter[str] = Counter()


@pytest.fixture
def queue(s3_env, moto_server, monkeypatch) -> str:
    """The landing queue, set up by the command a user runs; every AWS request counted."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_server)
    name = f"{s3_env}-landing"  # the moto server is shared: a queue of this test's own
    setup = CliRunner().invoke(main, ["landing", "setup-notifications", "--queue-name", name])
    assert setup.exit_code == 0, setup.output
    url = setup.output.split("queue_url: ")[1].strip()
    count_aws_requests(monkeypatch, CALLS)
    return url


@pytest.fixture
def storage(s3_env):
    from mlops_assets.resources import build_storage
    from mlops_assets.settings import load_settings

    return build_storage(load_settings())


def notified(queue_url: str, reconcile_hours: float = 24.0):
    use_case = digits_with(
        dataset={
            "landing": {
                "prefix": "landing/digits",
                "discovery": "notifications",
                "queue_url": queue_url,
                "reconcile_hours": reconcile_hours,
            }
        }
    )
    definitions = use_case_definitions(use_case)
    return definitions, definitions.resolve_sensor_def("digits_landing_sensor")


def tick(instance, definitions, sensor, storage, cursor=None):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=definitions, resources={"storage": storage}
    ) as context:
        return sensor.evaluate_tick(context)


def run(instance, definitions, request) -> dg.ExecuteInProcessResult:
    """The request as the daemon launches it: its run config, its tags and run key."""
    return definitions.resolve_job_def("digits_dataops").execute_in_process(
        instance=instance,
        run_config=request.run_config,
        tags={**request.tags, "dagster/run_key": request.run_key},
    )


def drain(queue_url: str, moto_server: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_server)
    while got := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        for message in got:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def in_queue(queue_url: str, moto_server: str) -> int:
    attributes = boto3.client("sqs", endpoint_url=moto_server).get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def test_the_queue_starts_one_run_and_an_idle_tick_sends_two_requests(queue, storage, moto_server):
    """A file landed before the queue existed is found by the first reconciliation; two
    files landed after come through the queue; the run acquires exactly those; the next
    tick deletes their messages; an idle tick lists nothing, whatever the zone holds."""
    definitions, sensor = notified(queue)
    s3 = boto3.client("s3", endpoint_url=moto_server)
    s3.put_object(Bucket=storage.bucket, Key="team-a/landing/digits/early.csv", Body=b"")
    drain(queue, moto_server)  # its event is lost
    landed = seed_digits(storage, 5, [1, 2])
    with dg.instance_for_test() as instance:
        first = tick(instance, definitions, sensor, storage)
        (request,) = first.run_requests
        files = request.run_config["ops"]["digits__acquire"]["config"]["files"]
        assert sorted(files) == sorted([*landed, "landing/digits/early.csv"])
        assert run(instance, definitions, request).success
        sources = {b["source"] for b in load_catalog(storage, LAYOUT)}
        assert sources == {key.removeprefix("landing/digits/") for key in [*landed, "early.csv"]}
        assert in_queue(queue, moto_server) == 2  # taken, not yet deleted

        CALLS.clear()
        second = tick(instance, definitions, sensor, storage, first.cursor)
        assert second.run_requests == [] and CALLS["DeleteMessageBatch"] == 1
        assert in_queue(queue, moto_server) == 0

        seed_digits(storage, 5, [3, 4, 5])  # history grows; an idle tick does not
        third = tick(instance, definitions, sensor, storage, second.cursor)
        assert third.run_requests[0].tags["mlops/new_files"] == "3"
        CALLS.clear()
        idle = tick(instance, definitions, sensor, storage, third.cursor)
        assert idle.run_requests == []
        assert CALLS["ListObjectsV2"] == 0 and sum(CALLS.values()) <= 5, CALLS


def test_bad_messages_are_skipped_and_never_fail_the_tick(queue, storage, moto_server, capfd):
    """Malformed, outside the zone, another bucket, an object deleted since, a duplicate:
    each skipped with its reason in the log; the one good file starts a run."""
    sqs = boto3.client("sqs", endpoint_url=moto_server)
    s3 = boto3.client("s3", endpoint_url=moto_server)
    (good,) = seed_digits(storage, 5, [1])
    s3.put_object(Bucket=storage.bucket, Key="team-a/landing/digits/gone.csv", Body=b"x")
    s3.delete_object(Bucket=storage.bucket, Key="team-a/landing/digits/gone.csv")

    def event(key: str, bucket: str | None = None) -> str:
        record = {"bucket": {"name": bucket or storage.bucket}, "object": {"key": key}}
        return json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": record}]})

    for body in (
        "not json {",
        json.dumps({"Records": "nope"}),
        event("team-a/elsewhere/x.csv"),
        event("team-a/landing/digits/x.csv", bucket="someone-elses"),
        event(f"team-a/{good}"),  # a duplicate of the one S3 sent
    ):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    definitions, sensor = notified(queue, reconcile_hours=0)
    with dg.instance_for_test() as instance:
        result = tick(instance, definitions, sensor, storage)
    (request,) = result.run_requests
    assert request.run_config["ops"]["digits__acquire"]["config"]["files"] == [good]
    log = " ".join(capfd.readouterr())
    for reason in (
        "malformed message: not JSON",
        "no S3 event Records",
        "outside the landing zone",
        "not the landing zone's",
        "landing/digits/gone.csv: named by a message",
    ):
        assert reason in log, reason
    # the bad messages are deleted at once; the good file's two wait for its run
    assert in_queue(queue, moto_server) == 2


def test_an_unreachable_queue_fails_the_tick_naming_it_and_loses_nothing(
    queue, storage, moto_server, monkeypatch
):
    from tests.support.tcp_proxy import TcpProxy

    target = moto_server.split("//")[1].split(":")
    proxy = TcpProxy((target[0], int(target[1])))
    proxy.start()
    via_proxy = queue.replace(moto_server, proxy.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", proxy.url)
    drain(queue, moto_server)  # S3's test event from the setup
    landed = seed_digits(storage, 5, [1, 2])
    definitions, sensor = notified(via_proxy, reconcile_hours=0)
    with dg.instance_for_test() as instance:
        proxy.stop()
        with pytest.raises(Exception) as failed:
            tick(instance, definitions, sensor, storage)
        chain, error = [], failed.value
        while error is not None:
            chain.append(str(error))
            error = error.__cause__
        assert any(f"landing queue {via_proxy}" in text for text in chain), chain
        assert in_queue(queue, moto_server) == 2  # nothing was taken or deleted
        proxy.start()
        back = tick(instance, definitions, sensor, storage)
    assert back.run_requests, back.skip_message
    (request,) = back.run_requests
    assert sorted(request.run_config["ops"]["digits__acquire"]["config"]["files"]) == sorted(landed)
    proxy.stop()


def test_a_tick_lost_after_its_request_is_redelivered_under_the_same_run_key(
    queue, storage, moto_server, monkeypatch
):
    """The daemon dies after the tick took the messages and before its cursor was kept:
    nothing was deleted, so the messages come back once their visibility ends, the next
    tick requests the same run key (a no-op for Dagster), and once that run exists the
    messages are deleted."""
    import time

    from mlops_assets.datasets.tabular import notifications

    monkeypatch.setattr(notifications, "VISIBILITY_SECONDS", 1)
    seed_digits(storage, 5, [1, 2])
    definitions, sensor = notified(queue, reconcile_hours=0)
    with dg.instance_for_test() as instance:
        first = tick(instance, definitions, sensor, storage)
        (lost,) = first.run_requests
        for _ in range(100):  # wait for the redelivery, however long moto takes
            again = tick(instance, definitions, sensor, storage)  # the cursor was never kept
            if again.run_requests:
                break
            time.sleep(0.2)
        (request,) = again.run_requests
        assert request.run_key == lost.run_key
        assert run(instance, definitions, request).success
        done = tick(instance, definitions, sensor, storage, again.cursor)
        assert done.run_requests == []
    assert in_queue(queue, moto_server) == 0
    assert len(load_catalog(storage, LAYOUT)) == 2
