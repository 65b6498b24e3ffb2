"""The gate between the two MLOps runs: a REJECT fails the gate's run with its reason and
plans no release, so the lineage keeps release and deploy as they were; the gate sensor
starts one release run per candidate it did not reject, and no event claims its way in."""

from __future__ import annotations

import dagster as dg
import pytest

from mlops_assets.definitions import build_definitions
from mlops_assets.demo.digits_data import seed_digits
from mlops_assets.registry import ModelRegistry
from tests.support.gitops import git_log

WORSE = {"ops": {"digits__train": {"config": {"params": {"C": 0.0001}}}}}
RETRAIN = {"ops": {"digits__train": {"config": {"retrain": True}}}}
KEYS = {s: dg.AssetKey(["digits", s]) for s in ("train", "validate", "release", "deploy")}


def painted_failed(instance: dg.DagsterInstance, key: dg.AssetKey) -> bool:
    """What the UI's lineage paints as failed (the webapp's `runWhichFailedToMaterialize`):
    the latest run that planned the asset failed, and did not materialize it."""
    planned = instance.get_latest_planned_materialization_info(key)
    if planned is None:
        return False
    run = instance.get_run_by_id(planned.run_id)
    latest = instance.get_latest_materialization_event(key)
    return run.status == dg.DagsterRunStatus.FAILURE and (
        latest is None or latest.run_id != run.run_id
    )


@pytest.mark.parametrize("storage_env", ["local"], indirect=True)
def test_a_reject_fails_its_run_and_leaves_release_and_deploy_unpainted(local_env, storage):
    defs = build_definitions()
    sensor = defs.resolve_sensor_def("digits_gate_sensor")
    assert sensor.job_name == "digits_release"
    registry = ModelRegistry(storage, "digits")
    bare = local_env / ".mlops" / "gitops.git"

    def run(job: str, run_config: dict | None = None, **kw) -> dg.ExecuteInProcessResult:
        return defs.resolve_job_def(job).execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config or {}, **kw
        )

    def tick(cursor: str | None = None):
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources={"storage": storage}
        ) as ctx:
            return sensor.evaluate_tick(ctx)

    with dg.instance_for_test() as instance:
        seed_digits(storage, 5, [1, 2, 3])
        assert run("digits_dataops").success
        assert tick().run_requests == [] and "no new validation" in tick().skip_message
        first = run("digits_mlops")
        assert first.success
        assert registry.versions() == []  # the gate's run releases nothing itself
        passed = tick()
        (request,) = passed.run_requests
        candidate = first.run_id  # a candidate is named after the run that trained it
        assert request.run_key == f"digits-release-{candidate}"
        assert request.tags["mlops/trigger"] == "gate"
        released = run("digits_release", request.run_config, tags=request.tags)
        assert released.success and registry.champion()["version"] == 1
        assert git_log(bare, "-1", "--format=%s", "main").startswith("Deploy digits v1 to dev")
        # a sensor turned on after the release (dg dev after the demo) starts it again
        again = tick()
        assert again.run_requests == []
        assert f"candidate {candidate} was released as v1 already" in again.skip_message

        rejected = run("digits_mlops", WORSE)
        assert not rejected.success
        (failure,) = [e for e in rejected.all_events if e.is_step_failure]
        reason = failure.step_failure_data.user_failure_data.description
        assert failure.step_key == "digits__validate" and reason.startswith("REJECT: ")
        planned = {
            e.dagster_event.event_specific_data.asset_key
            for e in instance.all_logs(
                rejected.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
            )
        }
        assert planned == {KEYS["train"], KEYS["validate"]}  # release and deploy never were
        for step in ("train", "validate", "release", "deploy"):
            assert not painted_failed(instance, KEYS[step]), step
        after_reject = tick(passed.cursor)
        assert after_reject.run_requests == []
        assert f"rejected: {reason}" in after_reject.skip_message

        # a HOLD (the same inputs, trained again) is released by the release run, which
        # decides on_hold: the sensor starts it; the REJECT before it in the batch is skipped
        held = run("digits_mlops", RETRAIN)
        assert held.success
        (gate,) = held.get_asset_check_evaluations()
        assert gate.metadata["decision"].value == "HOLD"
        hold_tick = tick(passed.cursor)
        (request,) = hold_tick.run_requests
        assert request.run_key == f"digits-release-{held.run_id}"
        # a version whose metadata cannot be read does not stop the sensor: release decides
        good = storage.read_bytes("models/digits/1/metadata.json")
        storage.write_bytes("models/digits/1/metadata.json", b"{not json")
        (still,) = tick(passed.cursor).run_requests
        assert still.run_key == request.run_key
        storage.write_bytes("models/digits/1/metadata.json", good)
        assert run("digits_release", request.run_config).success

        # an event that claims a passing gate but was not written by a gate run starts nothing
        forged = dg.AssetMaterialization(
            KEYS["validate"],
            metadata={"gate_decision": "PASS", "candidate_id": rejected.run_id},
        )
        instance.report_runless_asset_event(forged)
        refused = tick(hold_tick.cursor)
        assert refused.run_requests == []
        assert "a validate event not from a digits_mlops run" in refused.skip_message
    # even launched by hand, release re-reads the gate's decision from storage
    with dg.instance_for_test() as instance:
        config = {"ops": {"digits__release": {"config": {"candidate_id": rejected.run_id}}}}
        by_hand = run("digits_release", config)
        assert not by_hand.success
        (failure,) = by_hand.get_step_failure_events()
        assert "did not pass the gate" in failure.event_specific_data.error.message
    assert rejected.run_id not in {
        registry.metadata(v).get("candidate_id") for v in registry.versions()
    }
