"""The MLOps half: train, the champion/challenger gate and the registry, end to end,
on the local default and on S3 (moto server)."""

from __future__ import annotations

import dagster as dg
import pytest

from mlops_assets.definitions import build_definitions
from mlops_assets.demo.digits_data import seed_digits
from mlops_assets.registry import ModelRegistry
from tests.support.mlops_runs import run_mlops

WORSE = {"ops": {"digits__train": {"config": {"params": {"C": 0.0001}}}}}
RETRAIN = {"ops": {"digits__train": {"config": {"retrain": True}}}}


def run(instance, job: str, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    if job == "digits_mlops":  # the gate's run and the release run its sensor starts
        return run_mlops(build_definitions(), instance, run_config)
    return (
        build_definitions()
        .resolve_job_def(job)
        .execute_in_process(instance=instance, raise_on_error=False, run_config=run_config or {})
    )


def gate_of(result) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "gate"]
    return evaluation


def registry_state(registry: ModelRegistry) -> tuple:
    return registry.versions(), registry.champion(), registry.history()


@pytest.mark.slow
def test_gate_registry_and_history_end_to_end(storage):
    registry = ModelRegistry(storage, "digits")
    with dg.instance_for_test() as instance:
        seed_digits(storage, 5, [1, 2, 3])
        assert run(instance, "digits_dataops").success

        first = run(instance, "digits_mlops")
        assert first.success
        assert gate_of(first).passed and "no champion yet" in gate_of(first).description
        assert registry.versions() == [1]
        assert registry.champion()["version"] == 1
        meta = registry.metadata(1)
        for field in (
            "use_case",
            "model_version",
            "artifact_sha256",
            "metrics",
            "gate",
            "dataset_version",
            "code_version",
            "dagster_run_id",
            "created_at",
            "training",
        ):
            assert field in meta, field
        assert meta["dagster_run_id"] == first.release.run_id
        assert meta["gate"]["beat_champion"] is None

        # worse hyperparameters on the same data: rejected, nothing in the registry moves
        before = registry_state(registry)
        worse = run(instance, "digits_mlops", WORSE)
        assert not worse.success
        gate = gate_of(worse)
        assert not gate.passed
        assert gate.description.startswith("REJECT: candidate accuracy")
        assert "champion v1" in gate.description
        for step in ("digits__release", "digits__deploy"):
            assert not worse.asset_materializations_for_node(step)
            assert step not in {e.step_key for e in worse.get_step_success_events()}
        assert registry_state(registry) == before

        # more data and good parameters: v2 becomes champion, history holds both in order
        seed_digits(storage, 5, [4, 5])
        assert run(instance, "digits_dataops").success
        second = run(instance, "digits_mlops")
        assert second.success and gate_of(second).passed
        assert registry.versions() == [1, 2]
        champion = registry.champion()
        assert champion["version"] == 2 and champion["previous"] == 1
        history = registry.history()
        assert [(h["sequence"], h["version"], h["action"]) for h in history] == [
            (1, 1, "release"),
            (2, 2, "release"),
        ]
        accuracy = registry.metadata(2)["metrics"]["accuracy"]
        assert accuracy >= 0.97, accuracy
        assert registry.metadata(2)["gate"]["beat_champion"] == 1


# the sha256 check reads bytes, wherever they are (S3 reads: the end-to-end tests)
@pytest.mark.parametrize("storage_env", ["local"], indirect=True)
def test_tampered_champion_is_refused(storage):
    registry = ModelRegistry(storage, "digits")
    with dg.instance_for_test() as instance:
        seed_digits(storage, 5, [1, 2, 3])
        assert run(instance, "digits_dataops").success
        assert run(instance, "digits_mlops").success
        key = "models/digits/1/model.skops"
        storage.write_bytes(key, storage.read_bytes(key) + b"tampered")
        before = registry_state(registry)
        result = run(instance, "digits_mlops", RETRAIN)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "digits__validate"
    error = failure.event_specific_data.error
    message = error.message + (error.cause.message if error.cause else "")
    assert "model version 1" in message and "sha256" in message
    assert registry_state(registry) == before
    with pytest.raises(Exception, match="refusing to use it"):
        registry.artifact(1)


def test_failed_training_leaves_no_version(storage):
    registry = ModelRegistry(storage, "digits")
    with dg.instance_for_test() as instance:
        seed_digits(storage, 5, [1, 2, 3])
        assert run(instance, "digits_dataops").success
        result = run(
            instance, "digits_mlops", {"ops": {"digits__train": {"config": {"params": {"C": -1}}}}}
        )
    assert not result.success
    assert {e.step_key for e in result.get_step_failure_events()} == {"digits__train"}
    assert registry.versions() == [] and registry.champion() is None
    assert not storage.list("models/digits")


def test_same_data_params_and_seed_give_the_same_model(storage):
    from mlops_assets.core.config import GateConfig, ModelConfig
    from mlops_assets.datasets.tabular.dataset import TabularDataset
    from mlops_assets.mlops.train import run_train
    from mlops_assets.mlops.validate import run_validate
    from mlops_assets.storage import Layout

    layout, dataset = Layout("digits"), TabularDataset()
    model = ModelConfig(params={"C": 100.0, "gamma": 0.002})
    with dg.instance_for_test() as instance:
        seed_digits(storage, 5, [1, 2])
        assert run(instance, "digits_dataops").success
    results = []
    for candidate_id in ("a", "b"):
        run_train(storage, layout, dataset, model, candidate_id)
        results.append(
            run_validate(storage, layout, dataset, GateConfig(), candidate_id, model.adapter)
        )
    assert results[0]["candidate_metrics"] == results[1]["candidate_metrics"]
    assert results[0]["dataset_version"] == results[1]["dataset_version"]


def test_racing_releases_get_distinct_versions_and_one_champion(storage):
    """Two releases at once, both validated against 'no champion'."""
    from concurrent.futures import ThreadPoolExecutor

    registry = ModelRegistry(storage, "digits")

    def release(n: int):
        return ModelRegistry(storage, "digits").release(
            f"artifact {n}".encode(),
            "model.bin",
            {"adapter": "test"},
            beaten_champion=None,
            run_id=f"run-{n}",
        )

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(release, range(2)))
    versions = sorted(r.version for r in results)
    assert versions == [1, 2]
    assert [r.promoted for r in results].count(True) == 1
    loser = next(r for r in results if not r.promoted)
    assert "validate again" in loser.reason
    winner = next(r for r in results if r.promoted)
    assert registry.champion()["version"] == winner.version
    history = registry.history()
    assert [(h["action"], h["sequence"], h["version"]) for h in history] == [
        ("release", 1, winner.version),
        ("not_promoted", 1, loser.version),
    ]
    assert history[1]["champion"] == winner.version and "validate again" in history[1]["reason"]
    for version in versions:
        data, meta = registry.artifact(version)
        assert meta["model_version"] == version


def test_many_racing_releases_keep_a_consistent_history(storage):
    """Releases that each beat the champion they saw: the history is one unbroken chain."""
    from concurrent.futures import ThreadPoolExecutor

    registry = ModelRegistry(storage, "digits")

    def release(n: int):
        reg = ModelRegistry(storage, "digits")
        for _ in range(50):
            seen = reg.champion()
            result = reg.release(
                f"artifact {n}".encode(),
                "model.bin",
                {"adapter": "test"},
                beaten_champion=seen["version"] if seen else None,
            )
            if result.promoted:
                return result
        raise AssertionError("never promoted")

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(release, range(4)))
    everything = registry.history()
    history = [h for h in everything if h["action"] == "release"]
    assert [h["sequence"] for h in history] == [1, 2, 3, 4]
    # every lost race is on record, and none of them is a version that became champion
    lost = [h for h in everything if h["action"] == "not_promoted"]
    assert {h["version"] for h in lost}.isdisjoint(h["version"] for h in history)
    assert len(lost) == len(registry.versions()) - 4
    assert [h["previous"] for h in history] == [None] + [h["version"] for h in history[:-1]]
    assert registry.champion()["version"] == history[-1]["version"]
    assert sorted(r.version for r in results) == sorted({r.version for r in results})
    assert len(set(registry.versions())) == len(registry.versions())


def test_rollback_pins_and_unpin_promotes_what_the_pin_held_back(storage):
    registry = ModelRegistry(storage, "digits")
    for n in (1, 2):
        champion = registry.champion()
        registry.release(
            f"a{n}".encode(),
            "model.bin",
            {"adapter": "test"},
            beaten_champion=champion["version"] if champion else None,
        )
    assert registry.champion()["version"] == 2
    registry.promote(1, "v2 misbehaves in production", pin=True)
    champion = registry.champion()
    assert (champion["version"], champion["pinned"]) == (1, True)
    assert champion["pin_reason"] == "v2 misbehaves in production"

    blocked = registry.release(b"a3", "model.bin", {"adapter": "test"}, beaten_champion=1)
    assert not blocked.promoted and "pinned" in blocked.reason
    # one that beat another champion (its gate never saw v1) is held back too, but not for v1
    registry.release(b"a4", "model.bin", {"adapter": "test"}, beaten_champion=2)
    assert registry.champion()["version"] == 1 and {3, 4} <= set(registry.versions())
    waiting = [(h["action"], h["version"]) for h in registry.history()[-2:]]
    assert waiting == [("not_promoted", 3), ("not_promoted", 4)]
    assert "released, not promoted: champion v1 is pinned" in registry.history()[-1]["reason"]

    alias, what = registry.unpin("fixed upstream")
    assert alias["version"] == 3 and not alias["pinned"], what
    assert what == "v1 is no longer pinned; promoted v3 to champion (was v1)"
    again = registry.release(b"a5", "model.bin", {"adapter": "test"}, beaten_champion=3)
    assert again.promoted and registry.champion()["version"] == 5
    actions = [(h["action"], h["version"]) for h in registry.history()]
    assert actions == [
        ("release", 1),
        ("release", 2),
        ("rollback", 1),
        ("not_promoted", 3),
        ("not_promoted", 4),
        ("unpin", 1),
        ("release", 3),
        ("release", 5),
    ]
    assert registry.history()[-2]["reason"].startswith("promoted on unpin")
    with pytest.raises(LookupError):
        registry.promote(99, "no such version")


def test_unpin_never_promotes_a_version_rolled_back_since(storage):
    registry = ModelRegistry(storage, "digits")
    registry.release(b"a1", "model.bin", {"adapter": "test"}, beaten_champion=None)
    registry.promote(1, "hold v1 while the data is checked", pin=True)
    registry.release(b"a2", "model.bin", {"adapter": "test"}, beaten_champion=1)
    storage.write_json(
        registry.layout.model(2, "status.json"), {"status": "rolled_back", "reason": "bad"}
    )
    alias, what = registry.unpin("checked")
    assert alias["version"] == 1 and what == "v1 is no longer pinned; no release waited for it"
    assert registry.unpin("again")[1] == "v1 was not pinned"


def test_unpin_promotes_only_the_artifact_the_version_recorded(storage):
    """A history entry's artifact is a claim: unpin promotes the version's own, verified
    artifact, and refuses an entry that names another."""
    registry = ModelRegistry(storage, "digits")
    registry.release(b"a1", "model.bin", {"adapter": "test"}, beaten_champion=None)
    registry.promote(1, "hold v1", pin=True)
    registry.release(b"a2", "model.bin", {"adapter": "test"}, beaten_champion=1)
    (key,) = [
        i.key for i in storage.list(registry.layout.history_entry()) if "not-promoted" in i.key
    ]
    storage.write_json(key, {**storage.read_json(key), "artifact_sha256": "ab" * 32})
    alias, what = registry.unpin("checked")
    assert alias["version"] == 1 and "v2 not promoted: its history entry names another" in what
    assert registry.champion()["version"] == 1


def test_new_dataset_version_starts_the_mlops_job_once(storage):
    definitions = build_definitions()
    sensor = definitions.resolve_sensor_def("digits_new_dataset_sensor")
    assert sensor.job_name == "digits_mlops"

    def tick(instance, cursor=None):
        with dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            definitions=definitions,
            resources={"storage": storage},
        ) as context:
            return sensor.evaluate_tick(context)

    with dg.instance_for_test() as instance:
        assert tick(instance).run_requests == []
        seed_digits(storage, 5, [1, 2])
        assert run(instance, "digits_dataops").success
        first = tick(instance)
        (request,) = first.run_requests
        version = storage.read_json("datasets/digits/latest.json")["dataset_version"]
        assert request.tags["mlops/dataset_version"] == version
        assert tick(instance, first.cursor).run_requests == []
        # once a model is trained on this dataset (here by hand), the sensor stays quiet
        assert run(instance, "digits_mlops").success
        assert tick(instance).run_requests == []
        assert "trained on dataset" in tick(instance).skip_message
        # a DataOps run whose new file adds no usable row keeps the dataset version:
        storage.write_bytes("landing/digits/empty.csv", b"")
        assert run(instance, "digits_dataops").success
        again = tick(instance, first.cursor)
        assert [r.run_key for r in again.run_requests] in ([], [request.run_key])


# the storage is not the point here (test_gate_registry_and_history_end_to_end runs on S3)
@pytest.mark.parametrize("storage_env", ["local"], indirect=True)
def test_the_same_inputs_are_not_trained_twice_and_a_pinned_champion_stays(local_env, storage):
    """With v1 pinned, new data gives v2 (released, not promoted); running again trains and
    releases nothing and says which version it matches; a rejected candidate is not
    trained again either."""
    registry = ModelRegistry(storage, "digits")
    with dg.instance_for_test() as instance:
        seed_digits(storage, 5, [1, 2, 3])
        assert run(instance, "digits_dataops").success
        assert run(instance, "digits_mlops").success
        registry.promote(1, "keep v1 for now", pin=True)
        seed_digits(storage, 5, [4])
        assert run(instance, "digits_dataops").success
        held = run(instance, "digits_mlops")
        assert held.success
        assert registry.versions() == [1, 2] and registry.champion()["version"] == 1
        # the gate's line says what release did: no "replaces v1" above a "not promoted"
        said = gate_of(held).description
        assert "replaces" not in said and "promoted anyway" not in said
        assert "beats v1" in said or "released (on_hold: promote)" in said
        assert "champion v1 is pinned (keep v1 for now)" in said
        assert registry.history()[-1]["action"] == "not_promoted"

        again = run(instance, "digits_mlops")
        assert again.success
        assert registry.versions() == [1, 2] and registry.champion()["version"] == 1
        assert not again.asset_materializations_for_node("digits__train")
        assert not again.asset_materializations_for_node("digits__release")
        messages = [r.user_message for r in instance.all_logs(again.gate.run_id)]
        assert any("Not training" in m and "released as v2" in m for m in messages)

        rejected = run(instance, "digits_mlops", WORSE)  # rejected by the gate
        assert not rejected.success
        # the run fails at validate with the gate's line as the failure's description (not
        # Dagster's error for a failed blocking check); release and deploy never run
        (failure,) = [e for e in rejected.all_events if e.is_step_failure]
        assert failure.step_key == "digits__validate"
        said = failure.step_failure_data.user_failure_data.description
        assert said.startswith("REJECT: ") and said == gate_of(rejected).description
        assert failure.step_failure_data.error.cause is None
        assert not rejected.asset_materializations_for_node("digits__release")
        worse_again = run(instance, "digits_mlops", WORSE)
        assert worse_again.success and registry.versions() == [1, 2]
        messages = [r.user_message for r in instance.all_logs(worse_again.gate.run_id)]
        assert any("rejected by the gate (REJECT: candidate accuracy" in m for m in messages)

        forced = run(instance, "digits_mlops", RETRAIN)  # asked for: trains, v3 not promoted
        assert forced.asset_materializations_for_node("digits__train")
        assert registry.versions() == [1, 2, 3] and registry.champion()["version"] == 1


def test_a_large_training_split_for_a_quadratic_model_is_said_before_it_fits():
    from mlops_assets.mlops.train import scaling_warning
    from mlops_assets.models.sklearn_svc import SklearnSVC

    svc = SklearnSVC()
    assert scaling_warning(svc, "sklearn_svc", 1_259) == ""
    said = scaling_warning(svc, "sklearn_svc", 140_000)
    assert said.startswith("140,000 training rows for sklearn_svc, whose fit time grows with")
    assert "above 50,000" in said
    assert scaling_warning(object(), "my_adapter", 10**7) == ""  # no claim: no warning
