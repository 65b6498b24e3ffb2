"""Git follows an aborted canary: the monitor reads the environment's Rollout through the
Kubernetes API (a real client against a loopback API server serving the recorded objects
of tests/support/fixtures/rollout_status), and an aborted canary becomes a rollback that the
existing path (rollback sensor, deploy step) commits, so that git names what serves."""

from __future__ import annotations

import copy
from pathlib import Path

import dagster as dg
import kubernetes_validate
import pytest
import yaml

from mlops_assets.monitoring.rollout_status import read_rollout, rollout_state
from tests.support.charts import K8S, SHA, manifests
from tests.support.crd_schemas import crd_errors
from tests.support.gitops import git_log
from tests.support.http_servers import json_api
from tests.support.processes import REPO
from tests.support.use_cases import plain_release

FIXTURES = REPO / "tests/support/fixtures/rollout_status"
STABLE, CANARY = "5f7d8c9b4a", "6d4cf9c7b8"
TOKEN = "k8s-api-token-for-the-monitor"


def _rendered(version: str) -> dict:
    import helm_python as helm

    from mlops_assets.gitops.resource import TEMPLATE
    from tests.support.charts import MODEL_API

    values = yaml.safe_load(TEMPLATE.read_text())
    values["model"].update(
        version=version, uri=f"s3://models/models/digits/{version}/model.skops", sha256=SHA
    )
    values["rollout"] = {"enabled": True}
    docs = manifests(helm.Chart.load(MODEL_API).render(values, name="dev", namespace="mlops-dev"))
    (rollout,) = [d for d in docs if d["kind"] == "Rollout"]
    return rollout


def recorded(state: str) -> tuple[dict, dict[str, dict]]:
    """The Rollout (git's v2) with the recorded status, and its ReplicaSets by name."""
    rollout = _rendered("2") | yaml.safe_load((FIXTURES / f"{state}.yaml").read_text())
    replica_sets = {}
    for version, pod_hash in (("1", STABLE), ("2", CANARY)):
        template = copy.deepcopy(_rendered(version)["spec"]["template"])
        template["metadata"]["labels"]["rollouts-pod-template-hash"] = pod_hash
        replica_sets[f"dev-digits-{pod_hash}"] = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": f"dev-digits-{pod_hash}", "namespace": "mlops-dev"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": template["metadata"]["labels"]},
                "template": template,
            },
        }
    return rollout, replica_sets


@pytest.mark.parametrize(
    ("state", "diverged", "serving"),
    [("aborted", True, "1"), ("healthy", False, "2"), ("progressing", False, "1")],
)
def test_the_recorded_states(state, diverged, serving):
    rollout, replica_sets = recorded(state)
    assert crd_errors([rollout]) == [None]  # the recording fits the published schema
    for replica_set in replica_sets.values():
        kubernetes_validate.validate(replica_set, K8S, strict=True)
    stable = replica_sets.get(f"dev-digits-{rollout['status']['stableRS']}")
    found = rollout_state(rollout, stable)
    assert (found.diverged, found.git_version, found.serving_version) == (diverged, "2", serving)
    assert found.aborted == (state == "aborted")
    if diverged:
        assert 'Metric "error-ratio" assessed Failed' in found.message


def api_server(rollout: dict | None, replica_sets: dict[str, dict]):
    """A Kubernetes API on loopback that answers GETs of the Rollout and ReplicaSets."""
    prefix = "/apis/apps/v1/namespaces/mlops-dev/replicasets/"

    def answer(path: str) -> tuple[int, dict]:
        found = None
        if (
            rollout
            and path == "/apis/argoproj.io/v1alpha1/namespaces/mlops-dev/rollouts/dev-digits"
        ):
            found = rollout
        elif path.startswith(prefix):
            found = replica_sets.get(path.removeprefix(prefix))
        if found is None:
            return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404}
        return 200, found

    return json_api(answer)


def kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": url}}],
                "users": [{"name": "monitor", "user": {"token": TOKEN}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "monitor"}}],
                "current-context": "c",
            }
        )
    )
    return path


def test_read_through_the_kubernetes_api(tmp_path, monkeypatch):
    rollout, replica_sets = recorded("aborted")
    with api_server(rollout, replica_sets) as (url, seen):
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kubeconfig", url)))
        state = read_rollout("dev", "digits")
        assert state is not None and state.diverged and state.serving_version == "1"
        assert read_rollout("staging", "digits") is None  # no Rollout there
    assert seen and all(h == f"Bearer {TOKEN}" for h in seen)


def head(bare: Path) -> str:
    return git_log(bare, "-1", "--format=%B", "main")


def test_an_aborted_canary_is_rolled_back_in_git(tmp_path, monkeypatch):
    from mlops_assets.definitions import build_definitions
    from mlops_assets.registry import ModelRegistry

    monkeypatch.chdir(tmp_path)  # the local default: .mlops here, its GitOps remote beside
    storage, gitops = plain_release(tmp_path, "c1", (1, 2))
    plain_release(tmp_path, "c2", (3,), on_hold="promote")
    bare = Path(gitops.local_path)
    assert head(bare).startswith("Deploy digits v2 to dev")
    registry = ModelRegistry(storage, "digits")
    assert registry.champion()["version"] == 2

    rollout, replica_sets = recorded("aborted")
    with api_server(rollout, replica_sets) as (url, _):
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kubeconfig", url)))
        monkeypatch.setenv("MLOPS_ROLLOUT_STATUS", "on")
        defs = build_definitions()
        with dg.instance_for_test() as instance:
            assert (
                defs.resolve_job_def("digits_monitor").execute_in_process(instance=instance).success
            )
            record = instance.get_latest_materialization_event(dg.AssetKey(["digits", "monitor"]))
            metadata = record.asset_materialization.metadata
            assert metadata["rollout"].value["diverged"] is True
            decided = metadata["rollback"].value
            assert (decided["version"], decided["to"]) == (2, 1)
            with dg.build_sensor_context(
                instance=instance, definitions=defs, resources={"storage": storage}
            ) as context:
                result = defs.resolve_sensor_def("digits_rollback_trigger").evaluate_tick(context)
            (request,) = result.run_requests
            job = defs.resolve_job_def("digits_rollback")
            assert job.execute_in_process(
                instance=instance, run_config=request.run_config, tags=request.tags
            ).success
    message = head(bare)
    assert message.startswith("Roll back digits v2 to v1 in dev")
    assert "canary aborted by analysis" in message and "error-ratio" in message
    assert registry.champion()["version"] == 1
    assert registry.status(2)["status"] == "rolled_back"
    assert yaml.safe_load(gitops.repo().read_values("dev", "digits"))["model"]["version"] == "1"
