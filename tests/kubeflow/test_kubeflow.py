"""The kubeflow training backend: the same pipeline under kfp.local, its compiled IR, and
its failures as Dagster shows them."""

from __future__ import annotations

import subprocess

import dagster as dg
import pytest
import yaml

from mlops_assets.definitions import build_definitions
from mlops_assets.demo.digits_data import seed_digits
from mlops_assets.registry import ModelRegistry
from mlops_assets.resources import build_storage
from mlops_assets.settings import load_settings
from mlops_assets.storage import Layout
from tests.support.gitops import git_log
from tests.support.mlops_runs import run_mlops
from tests.support.processes import BIN
from tests.support.use_cases import digits_with, use_case_definitions

TRAIN, VALIDATE = dg.AssetKey(["digits", "train"]), dg.AssetKey(["digits", "validate"])


LOCAL = {"backend": "kubeflow", "kubeflow": {"runner": "local"}}


@pytest.fixture
def prepared(local_env):
    storage = build_storage(load_settings())
    seed_digits(storage, 5, [1, 2, 3])
    with dg.instance_for_test() as instance:
        job = build_definitions().resolve_job_def("digits_dataops")
        assert job.execute_in_process(instance=instance).success
        yield instance, storage


def failure_message(result) -> tuple[str, str]:
    (failure,) = result.get_step_failure_events()
    error = failure.event_specific_data.error
    return failure.step_key, error.message + (error.cause.message if error.cause else "")


@pytest.mark.slow
def test_local_kubeflow_backend_trains_what_the_dagster_backend_trains(prepared):
    instance, storage = prepared
    layout = Layout("digits")
    dagster_run = (
        build_definitions()
        .resolve_job_def("digits_mlops")
        .execute_in_process(instance=instance, asset_selection=[TRAIN, VALIDATE])
    )
    assert dagster_run.success
    by_dagster = storage.read_json(layout.candidate(dagster_run.run_id, "validation.json"))

    # the shipped YAML trains in Dagster: one run's config sends it through kfp.local, as
    # `dg launch --job digits_mlops --config-json ...` does (docs/guides/kubeflow.md)
    local = {"backend": "kubeflow-local", "retrain": True}
    kubeflow_run = run_mlops(
        build_definitions(), instance, {"ops": {"digits__train": {"config": local}}}
    ).gate  # train through kfp.local, then validate; its release run follows
    assert kubeflow_run.success
    train = instance.get_latest_materialization_event(TRAIN).asset_materialization.metadata
    assert train["backend"].value == "kubeflow" and train["kfp_runner"].value == "local"
    by_kubeflow = storage.read_json(layout.candidate(kubeflow_run.run_id, "validation.json"))
    assert by_kubeflow["dataset_version"] == by_dagster["dataset_version"]
    for name in ("accuracy", "macro_f1", "per_class_recall", "confusion_matrix", "rows"):
        assert by_kubeflow["candidate_metrics"][name] == by_dagster["candidate_metrics"][name]
    # the pipeline's own evaluate task scored the same candidate the same way
    evaluated = storage.read_json(layout.candidate(kubeflow_run.run_id, "kfp_evaluation.json"))
    assert evaluated["accuracy"] == by_kubeflow["candidate_metrics"]["accuracy"]

    registry = ModelRegistry(storage, "digits")
    assert registry.champion()["version"] == 1
    _, metadata = registry.artifact(1)
    assert metadata["candidate_id"] == kubeflow_run.run_id
    bare = load_settings().local_root / "gitops.git"
    subject = git_log(bare, "-1", "--format=%s", "main")
    assert subject.startswith("Deploy digits v1 to dev")


def test_a_failing_component_fails_train_naming_the_task(prepared):
    instance, storage = prepared
    result = (
        use_case_definitions(digits_with(LOCAL))
        .resolve_job_def("digits_mlops")
        .execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"ops": {"digits__train": {"config": {"params": {"C": -1.0}}}}},
        )
    )
    assert not result.success
    step, message = failure_message(result)
    assert step == "digits__train"
    assert "Inner task failed: 'train'" in message
    assert ModelRegistry(storage, "digits").versions() == []


def test_unreachable_kfp_api_fails_train_naming_the_host(prepared, monkeypatch):
    instance, _ = prepared
    monkeypatch.setenv("MLOPS_KFP_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("MLOPS_KFP_TOKEN", "kfp-s3cr3t-token")
    result = (
        use_case_definitions(digits_with({"backend": "kubeflow"}))
        .resolve_job_def("digits_mlops")
        .execute_in_process(instance=instance, raise_on_error=False)
    )
    step, message = failure_message(result)
    assert step == "digits__train"
    assert "cannot reach the KFP API at http://127.0.0.1:9" in message
    assert "kfp-s3cr3t-token" not in message


def _ir(path):
    from kfp.components import load_component_from_file

    component = load_component_from_file(str(path))  # the SDK accepts what it compiled
    documents = list(yaml.safe_load_all(path.read_text()))
    return component, documents[0], documents[1] if len(documents) > 1 else {}


def test_compiled_pipeline_loads_back_and_asks_for_the_gpu_on_train(tmp_path):
    out = tmp_path / "digits.yaml"
    done = subprocess.run(
        [str(BIN / "mlops-assets"), "kfp", "compile", "--use-case", "digits", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    component, spec, platform = _ir(out)
    assert component.name == "digits-train"
    executors = spec["deploymentSpec"]["executors"]
    accelerator = executors["exec-train"]["container"]["resources"]["accelerator"]
    assert accelerator["resourceType"] == "nvidia.com/gpu" and accelerator["resourceCount"] == "1"
    assert "accelerator" not in executors["exec-evaluate"]["container"].get("resources", {})
    train = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]
    assert train["nodeSelector"]["labels"] == {"mlops-assets/pool": "gpu"}
    assert train["tolerations"][0]["key"] == "nvidia.com/gpu"
    # credentials are referenced by secret name, never inlined
    assert train["secretAsEnv"][0]["secretName"] == "mlops-s3-credentials"
    assert "AWS_SECRET_ACCESS_KEY" not in str(executors)


def test_no_gpu_request_when_the_yaml_asks_for_none(tmp_path):
    from mlops_assets.core.config import KubeflowConfig, PodPlacement
    from mlops_assets.kubeflow.pipeline import compile_pipeline

    path = compile_pipeline(
        "digits",
        "tabular",
        KubeflowConfig(),
        PodPlacement(requests={"cpu": "2"}),
        tmp_path / "cpu.yaml",
    )
    _, spec, _ = _ir(path)
    resources = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert "accelerator" not in resources and resources["resourceCpuRequest"] == "2"


def test_a_failed_cluster_run_is_reported_with_its_failing_task():
    """The run object as the KFP API returns it (kfp_server_api's own model classes)."""
    import kfp_server_api as api

    from mlops_assets.kubeflow.backend import _failed_tasks

    run = api.V2beta1Run(
        state="FAILED",
        run_details=api.V2beta1RunDetails(
            task_details=[
                api.V2beta1PipelineTaskDetail(display_name="train", state="FAILED"),
                api.V2beta1PipelineTaskDetail(display_name="evaluate", state="SKIPPED"),
            ]
        ),
    )
    assert _failed_tasks(run) == ["train"]
    assert _failed_tasks(api.V2beta1Run(state="FAILED")) == []


def test_cluster_client_sends_the_given_token_or_the_pods_projected_one(tmp_path, monkeypatch):
    """kfp.Client against an HTTP endpoint on loopback that records what it is sent: with a
    host set, kfp only authenticates with what `credentials()` hands it."""
    from mlops_assets.core.config import KubeflowConfig
    from mlops_assets.kubeflow.backend import _client
    from tests.support.http_servers import json_api

    def healthz(path: str) -> tuple[int, dict]:
        return (200 if path == "/apis/v2beta1/healthz" else 404), {"multi_user": False}

    with json_api(healthz) as (url, seen):
        config = KubeflowConfig(host=url)
        projected = tmp_path / "token"
        monkeypatch.delenv("MLOPS_KFP_TOKEN", raising=False)
        monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(tmp_path / "absent"))
        _client(config)  # no namespace: the client asks /healthz whether KFP is multi-user
        monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(projected))
        projected.write_text("projected-sa-token")
        _client(config)
        monkeypatch.setenv("MLOPS_KFP_TOKEN", "given-token")
        _client(config)
    assert seen == [None, "Bearer projected-sa-token", "Bearer given-token"]


def test_kfp_local_output_is_kept_back_and_its_end_said_when_the_pipeline_fails(capsys):
    """kfp.local prints each task's executor input and output: nothing of it reaches the
    console on success; a failure quotes the end of it, bounded."""
    from mlops_assets.kubeflow.backend import OUTPUT_TAIL_BYTES, KubeflowRunError, _run_local

    def noisy(**arguments):
        for n in range(2000):
            print(f'{{"executorInput": {n}}}')

    run = _run_local(noisy, {}, log=lambda message: None)
    assert run.state == "SUCCEEDED"
    assert "executorInput" not in capsys.readouterr().out

    def failing(**arguments):
        noisy()
        print("Traceback: the train task failed on row 7")
        raise RuntimeError("Task train finished with status FAILURE")

    with pytest.raises(KubeflowRunError) as error:
        _run_local(failing, {}, log=lambda message: None)
    said = str(error.value)
    assert said.startswith("kfp.local: Task train finished with status FAILURE")
    assert said.endswith("the train task failed on row 7")
    assert len(said.encode()) < OUTPUT_TAIL_BYTES + 200  # the end, not all 2,000 lines
    assert "executorInput" not in capsys.readouterr().out
