"""What Kubernetes would run, built by dagster-k8s's own code from the real definitions
loaded with MLOPS_ENV=k8s, and validated against the Kubernetes schemas (no cluster)."""

from __future__ import annotations

import json

import dagster as dg
import kubernetes_validate
import pytest
import yaml
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)
from kfp.client import KF_PIPELINES_SA_TOKEN_PATH
from kubernetes.client import ApiClient

from mlops_assets.definitions import build_definitions
from tests.support.processes import REPO
from tests.support.use_cases import digits_with, use_case_definitions

K8S = kubernetes_validate.latest_version()
VALUES = yaml.safe_load((REPO / "charts/dagster/values.yaml").read_text())
LAUNCHER = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
SECRETS = [s["name"] for s in LAUNCHER["envSecrets"]]
"""What every run pod gets from the chart's run launcher (storage credentials only)."""
GITOPS = "mlops-gitops-credentials"
GITOPS_READ = "mlops-gitops-read"


@pytest.fixture
def k8s_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "MLOPS_ENV": "k8s",
        "MLOPS_STORAGE_ROOT": "s3://mlops-prod/team-a",
        "MLOPS_GITOPS_REMOTE": "https://git.example.com/platform/gitops.git",
    }.items():
        monkeypatch.setenv(name, value)


def job_config() -> DagsterK8sJobConfig:
    """What the Dagster chart's K8sRunLauncher passes (charts/dagster/values.yaml)."""
    return DagsterK8sJobConfig(
        job_image="ghcr.io/mlops-assets/mlops-assets:0.1.0",
        dagster_home="/opt/dagster/dagster_home",
        image_pull_policy="IfNotPresent",
        instance_config_map="dagster-instance",
        postgres_password_secret="dagster-postgresql-secret",
        env_config_maps=["mlops-settings"],
        env_secrets=SECRETS,  # charts/dagster/values.yaml
        env_vars=["MLOPS_ENV=k8s"],
        service_account_name="dagster",
    )


def build(tags: dict, name: str) -> dict:
    job = construct_dagster_k8s_job(
        job_config(),
        ["dagster", "api", "execute_run", "{}"],
        name,
        get_user_defined_k8s_config({k: str(v) for k, v in tags.items()}),
    )
    manifest = ApiClient().sanitize_for_serialization(job)
    kubernetes_validate.validate(manifest, K8S, strict=True)
    return manifest


def build_step(job: dg.JobDefinition, step_tags: dict) -> dict:
    """A step's pod as the k8s_job_executor makes it: the executor's step_k8s_config, then
    the step's own dagster-k8s/config (the job's tags are left out, as dagster-k8s does),
    merged by dagster-k8s's K8sContainerContext."""
    executor = job.executor_def.apply_config_mapping({}).value["config"]
    steps = UserDefinedDagsterK8sConfig.from_dict(executor["step_k8s_config"])
    own = get_user_defined_k8s_config({k: str(v) for k, v in step_tags.items()})
    merged = K8sContainerContext(run_k8s_config=steps).merge(
        K8sContainerContext(run_k8s_config=own)
    )
    job_spec = construct_dagster_k8s_job(
        job_config(),
        ["dagster", "api", "execute_step", "{}"],
        "dagster-step",
        merged.run_k8s_config,
    )
    manifest = ApiClient().sanitize_for_serialization(job_spec)
    kubernetes_validate.validate(manifest, K8S, strict=True)
    return manifest


def secrets(manifest: dict) -> list[str]:
    """The Secrets a pod's container takes its environment from."""
    _, container = pod(manifest)
    return [e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e]


def pod(manifest: dict) -> tuple[dict, dict]:
    spec = manifest["spec"]["template"]["spec"]
    return spec, spec["containers"][0]


def gpu(manifest: dict) -> bool:
    spec, container = pod(manifest)
    limits = (container.get("resources") or {}).get("limits") or {}
    return (
        "nvidia.com/gpu" in limits
        and bool(spec.get("nodeSelector"))
        and any(t.get("key") == "nvidia.com/gpu" for t in spec.get("tolerations") or [])
    )


def test_run_pods_of_every_job_are_valid_and_placed(k8s_env):
    definitions = build_definitions()
    jobs = {job.name: definitions.resolve_job_def(job.name) for job in definitions.jobs}
    assert set(jobs) == {
        "digits_dataops",
        "digits_mlops",
        "digits_release",
        "digits_reobserve",
        "lsfb_dataops",
        "lsfb_mlops",
        "lsfb_release",
        "digits_monitor",
        "lsfb_monitor",
        "digits_rollback",
        "lsfb_rollback",
    }
    cpu_request = {"digits": "500m", "lsfb": "2"}  # each use case's YAML
    for name, job in jobs.items():
        manifest = build(job.tags, f"dagster-run-{name.replace('_', '-')}")
        spec, container = pod(manifest)
        if job.tags["mlops/stage"] == "mlops":
            assert gpu(manifest), name
        else:
            assert not gpu(manifest), name
            assert container["resources"]["requests"]["cpu"] == cpu_request[name.split("_")[0]]
        # secrets are referenced by name, never inlined; the GitOps token only where deploy
        # runs, the read-only one only where the monitor reads which versions git deployed
        deploys = job.tags["mlops/stage"] in ("release", "deploy")  # deploy, or roll back
        reads = job.tags["mlops/stage"] == "monitor"
        assert secrets(manifest) == SECRETS + ([GITOPS] if deploys else []) + (
            [GITOPS_READ] if reads else []
        )
        text = json.dumps(manifest)
        assert "AWS_SECRET_ACCESS_KEY" not in text and "MLOPS_GITOPS_TOKEN" not in text


def test_per_step_executor_puts_only_train_on_gpu(k8s_env, monkeypatch):
    monkeypatch.setenv("MLOPS_EXECUTOR", "k8s_job")
    definitions = build_definitions()
    job = definitions.resolve_job_def("digits_mlops")
    assert job.executor_def.name == "k8s"
    assert not gpu(build(job.tags, "dagster-run-coordinator"))  # the run pod only coordinates
    for node in job.nodes:
        manifest = build_step(job, node.definition.tags)
        assert gpu(manifest) == (node.name == "digits__train"), node.name


def test_each_slice_of_clean_is_a_dataops_pod_of_its_own(k8s_env, monkeypatch):
    """Under the per-step executor clean's plan, each mapped slice and its commit are steps,
    so pods, of their own: placed as the use case's DataOps pods, valid Kubernetes Jobs."""
    monkeypatch.setenv("MLOPS_EXECUTOR", "k8s_job")
    job = build_definitions().resolve_job_def("digits_dataops")
    ops = {op.name: op for op in job.graph.iterate_op_defs()}
    clean = [name for name in ops if name.startswith("digits__clean_")]
    assert sorted(clean) == ["digits__clean_commit", "digits__clean_plan", "digits__clean_slice"]
    # the slices are a dynamic fan-out: one step (one pod) per slice the plan yields
    assert ops["digits__clean_plan"].output_dict["slices"].is_dynamic
    for name in clean:
        spec, container = pod(build_step(job, ops[name].tags))
        assert container["resources"]["requests"]["cpu"] == "500m", name  # digits' YAML
        assert spec["automountServiceAccountToken"] is False and not secrets_beyond_storage(
            container
        ), name


def secrets_beyond_storage(container: dict) -> list[str]:
    return [
        e["secretRef"]["name"]
        for e in container.get("envFrom", [])
        if "secretRef" in e and e["secretRef"]["name"] not in SECRETS
    ]


def test_missing_k8s_settings_fail_at_load_naming_the_variable(monkeypatch):
    from mlops_assets.settings import SettingsError

    monkeypatch.setenv("MLOPS_ENV", "k8s")
    monkeypatch.delenv("MLOPS_STORAGE_ROOT", raising=False)
    monkeypatch.setenv("MLOPS_GITOPS_REMOTE", "https://git.example.com/gitops.git")
    with pytest.raises(SettingsError, match="MLOPS_STORAGE_ROOT"):
        build_definitions()
    monkeypatch.setenv("MLOPS_STORAGE_ROOT", "s3://b")
    monkeypatch.delenv("MLOPS_GITOPS_REMOTE")
    with pytest.raises(SettingsError, match="MLOPS_GITOPS_REMOTE"):
        build_definitions()


def test_when_a_kfp_cluster_trains_the_dagster_pod_holds_no_gpu_and_can_call_its_api(
    k8s_env, monkeypatch
):
    """The GPU is KFP's; the pod that submits and follows the KFP run gets the DataOps
    placement and the service-account token multi-user Kubeflow expects, where kfp reads it."""

    def mlops_job() -> dg.JobDefinition:
        kubeflow = digits_with({"backend": "kubeflow"})  # runner: cluster, the default
        return use_case_definitions(kubeflow).resolve_job_def("digits_mlops")

    def token_volume(manifest: dict) -> str:
        spec, container = pod(manifest)
        [volume] = [v for v in spec.get("volumes", []) if v["name"] == "kfp-token"]
        [source] = volume["projected"]["sources"]
        assert source["serviceAccountToken"]["audience"] == "pipelines.kubeflow.org"
        [mount] = [m for m in container["volumeMounts"] if m["name"] == "kfp-token"]
        return f"{mount['mountPath']}/{source['serviceAccountToken']['path']}"

    job = mlops_job()
    assert "mlops/gpu" not in job.tags  # KFP's GPUs are not counted against Dagster's limit
    manifest = build(job.tags, "dagster-run-digits-mlops")
    assert not gpu(manifest)
    assert pod(manifest)[1]["resources"]["requests"]["cpu"] == "500m"  # the DataOps placement
    assert token_volume(manifest) == KF_PIPELINES_SA_TOKEN_PATH

    monkeypatch.setenv("MLOPS_EXECUTOR", "k8s_job")
    job = mlops_job()
    [train] = [node.definition for node in job.nodes if node.name == "digits__train"]
    manifest = build(dict(train.tags), "dagster-step-digits-train")
    assert not gpu(manifest) and token_volume(manifest) == KF_PIPELINES_SA_TOKEN_PATH
    assert KF_PIPELINES_SA_TOKEN_PATH.rsplit("/", 1)[-1] == "token"


def test_least_privilege_of_every_pod_dagster_k8s_would_run(k8s_env, monkeypatch):
    """Which pod holds which secret and API token, for every job and, under the per-step
    executor, every step: the GitOps credentials only where deploy runs, never in a DataOps
    pod; no service-account token where the Kubernetes API is not called."""
    deployment = VALUES["dagster-user-deployments"]["deployments"][0]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"]  # runs inherit its secrets
    assert GITOPS not in [s["name"] for s in deployment["envSecrets"]] + SECRETS

    def holds_gitops(manifest: dict) -> bool:
        spec, container = pod(manifest)
        mounted = any(
            (v.get("secret") or {}).get("secretName") == "mlops-gitops-ssh"
            for v in spec.get("volumes") or []
        )
        assert mounted == (GITOPS in secrets(manifest))
        return mounted

    def api_token(manifest: dict) -> bool:
        return pod(manifest)[0].get("automountServiceAccountToken", True)

    definitions = build_definitions()
    for job in definitions.jobs:
        job = definitions.resolve_job_def(job.name)
        manifest = build(job.tags, f"dagster-run-{job.name.replace('_', '-')}")
        deploys = job.tags["mlops/stage"] in ("release", "deploy")  # deploy, or roll back
        assert holds_gitops(manifest) == deploys, job.name
        assert not api_token(manifest), job.name

    monkeypatch.setenv("MLOPS_EXECUTOR", "k8s_job")
    definitions = build_definitions()
    deployers = set()
    for job in definitions.jobs:
        job = definitions.resolve_job_def(job.name)
        coordinator = build(job.tags, "dagster-run-coordinator")
        assert not holds_gitops(coordinator) and api_token(coordinator)  # it creates the steps
        for op in job.graph.iterate_op_defs():  # a graph-backed asset's ops too (clean's)
            step = build_step(job, op.tags)
            if holds_gitops(step):
                deployers.add(f"{job.name}/{op.name}")
            assert not api_token(step), op.name  # only the coordinator calls the API
    assert deployers == {
        f"{uc}_{job}/{uc}__deploy" for uc in ("digits", "lsfb") for job in ("release", "rollback")
    }
