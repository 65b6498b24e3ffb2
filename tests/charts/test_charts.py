"""The Helm charts, rendered by the Helm SDK as Argo CD would, and every manifest validated
against the Kubernetes schemas of a current release."""

from __future__ import annotations

import copy
import fnmatch
import re
import subprocess

import helm_python as helm
import pytest
import yaml

from mlops_assets.gitops.repository import DeployRequest, GitOpsRepo
from mlops_assets.gitops.resource import ENVIRONMENTS, TEMPLATE, GitOpsResource
from mlops_assets.gitops.values import read_model
from tests.support.charts import ARGOCD, MODEL_API, REPO, SHA, manifests, validate


@pytest.fixture
def gitops_repo(tmp_path) -> GitOpsRepo:
    """The local default's GitOps repository, with a model deployed to dev."""
    repo = GitOpsResource(local_path=str(tmp_path / "gitops.git")).repo(("digits",))
    repo.deploy(
        DeployRequest(
            environment="dev",
            use_case="digits",
            model={
                "name": "digits",
                "version": "3",
                "uri": "s3://models/models/digits/3/model.skops",
                "sha256": SHA,
            },
        )
    )
    return repo


def test_every_environment_renders_valid_kubernetes_objects(gitops_repo, tmp_path):
    chart = helm.Chart.load(MODEL_API)
    environments = gitops_repo.environments("digits")
    assert environments == sorted(ENVIRONMENTS)
    for environment in environments:
        values_file = tmp_path / f"{environment}.yaml"
        values_file.write_text(gitops_repo.read_values(environment, "digits"))
        values = yaml.safe_load(values_file.read_text())
        chart.validate_schema(values)
        report = helm.lint(MODEL_API, values, strict=True)
        assert not report["errors"]
        assert all(m["severity"] < 2 for m in report["messages"]), report
        docs = manifests(chart.render(values, name=environment, namespace=f"mlops-{environment}"))
        for doc in docs:
            validate(doc)
        kinds = sorted(d["kind"] for d in docs)
        if environment == "dev":
            assert kinds == ["Deployment", "NetworkPolicy", "Pod", "Service", "ServiceAccount"]
            (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            env = {e["name"]: e["value"] for e in container["env"]}
            assert env["MODEL_SHA256"] == SHA and env["MODEL_URI"].endswith("/3/model.skops")
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        else:  # nothing deployed there yet: no pods
            assert kinds == ["Service", "ServiceAccount"]


def test_rollout_ingress_hpa_and_secret_render_valid(gitops_repo):
    chart = helm.Chart.load(MODEL_API)
    values = yaml.safe_load(gitops_repo.read_values("dev", "digits"))
    values.update(
        {
            "rollout": {"enabled": True, "steps": [{"setWeight": 25}, {"pause": {}}]},
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "hosts": [{"host": "d.example.com"}],
            },
            "autoscaling": {
                "enabled": True,
                "minReplicas": 2,
                "maxReplicas": 5,
                "targetCPUUtilizationPercentage": 60,
            },
            "storage": {"existingSecret": "mlops-s3", "endpointUrl": "http://minio:9000"},
        }
    )
    docs = manifests(chart.render(values, name="dev", namespace="mlops-dev"))
    kinds = {d["kind"] for d in docs}
    assert {"Rollout", "Ingress", "HorizontalPodAutoscaler"} <= kinds and "Deployment" not in kinds
    for doc in docs:
        validate(doc)
    (rollout,) = [d for d in docs if d["kind"] == "Rollout"]
    container = rollout["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "mlops-s3"}}]
    assert all("AWS_SECRET" not in e["name"] for e in container["env"])  # referenced, not inlined
    (hpa,) = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "Rollout"


def test_schema_refuses_bad_model_values():
    chart = helm.Chart.load(MODEL_API)
    values = yaml.safe_load(TEMPLATE.read_text())
    bad = copy.deepcopy(values)
    bad["model"]["sha256"] = "not-a-sha"
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(bad)
    bad = copy.deepcopy(values)
    bad["model"]["version"] = 3  # versions are strings in values files
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(bad)


def test_gitops_seed_and_chart_defaults_agree_on_the_model_keys():
    chart_model = read_model((MODEL_API / "values.yaml").read_text())
    seed_model = read_model(TEMPLATE.read_text())
    assert chart_model.keys() == seed_model.keys()


def test_argocd_apps_point_at_the_files_deploy_writes(gitops_repo, tmp_path):
    from tests.support.applicationset import generate

    rendered = helm.Chart.load(ARGOCD).render(name="mlops", namespace="argocd")
    docs = manifests(rendered)
    (appset,) = [d for d in docs if d["kind"] == "ApplicationSet"]
    projects = [d for d in docs if d["kind"] == "AppProject" and d["metadata"]["name"] == "mlops"]
    assert len(projects) == 1
    assert projects[0]["spec"]["clusterResourceWhitelist"] == []  # models get no cluster RBAC
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", gitops_repo.remote, str(checkout)], check=True)
    apps = generate(appset, checkout)
    assert {a["metadata"]["name"] for a in apps} == {f"digits-{e}" for e in ENVIRONMENTS}
    for app in apps:
        env = app["metadata"]["labels"]["mlops-assets/environment"]
        chart_source, values_source = app["spec"]["sources"]
        expected = DeployRequest(environment=env, use_case="digits", model={"version": "1"}).path
        assert chart_source["helm"]["valueFiles"] == [f"$values/{expected}"]
        assert chart_source["path"] == "charts/model-api" and values_source["ref"] == "values"
        assert app["spec"]["project"] == "mlops"
        assert any(
            fnmatch.fnmatch(app["spec"]["destination"]["namespace"], d["namespace"])
            for d in projects[0]["spec"]["destinations"]
        )
    assert (
        "automated"
        not in next(a for a in apps if a["metadata"]["name"] == "digits-prod")["spec"]["syncPolicy"]
    )
    (root,) = [
        d
        for d in yaml.safe_load_all((ARGOCD / "root-application.yaml").read_text())
        if d["kind"] == "Application"
    ]
    assert root["spec"]["source"]["path"] == "charts/argocd"
    report = helm.lint(ARGOCD, strict=True)
    assert not report["errors"] and all(m["severity"] < 2 for m in report["messages"])


def test_dagster_values_dagster_cloud_and_the_platform_app_agree_with_the_code():
    """Dagster's chart cannot be fetched here, so its values are checked against what the
    code expects; dagster_cloud.yaml goes through the Dagster+ CLI's own models."""
    from dagster_cloud_cli.config.models import load_dagster_cloud_yaml
    from dagster_k8s.container_context import K8sContainerContext

    values = yaml.safe_load((REPO / "charts/dagster/values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "mlops_assets.definitions"]
    assert {"name": "MLOPS_ENV", "value": "k8s"} in deployment["env"]
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    daemon = values["dagsterDaemon"]
    assert daemon["runMonitoring"]["enabled"] and daemon["runMonitoring"]["startTimeoutSeconds"]
    limits = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert {"key": "mlops/gpu", "value": "true", "limit": 2} in limits
    from mlops_assets.definitions import build_definitions

    mlops_job = build_definitions().resolve_job_def("digits_mlops")
    assert mlops_job.tags["mlops/gpu"] == "true"  # the tag the queue limits

    cloud = load_dagster_cloud_yaml((REPO / "dagster_cloud.yaml").read_text())
    (location,) = cloud.locations
    assert location.code_source.module_name == "mlops_assets.definitions"
    context = K8sContainerContext.create_from_config(location.container_context)
    # changed on purpose (trust boundaries): each agent's own namespace, not this file's
    assert context.namespace is None
    run_container = context.run_k8s_config.container_config
    assert run_container["env_from"] == [  # the GitOps token: only the deploy pod's tags
        {"config_map_ref": {"name": "mlops-settings"}},
        {"secret_ref": {"name": "mlops-s3-credentials"}},
    ]
    assert {"name": "MLOPS_ENV", "value": "k8s"} in run_container["env"]

    docs = manifests(helm.Chart.load(ARGOCD).render(name="mlops", namespace="argocd"))
    (dagster_app,) = [
        d for d in docs if d["kind"] == "Application" and d["metadata"]["name"] == "dagster"
    ]
    chart_source = dagster_app["spec"]["sources"][0]
    assert chart_source["helm"]["valueFiles"] == ["$repo/charts/dagster/values.yaml"]
    assert dagster_app["spec"]["project"] == "platform"


CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "PriorityClass",
}


def test_least_privilege_of_the_rendered_charts(gitops_repo):
    """The model server: its NetworkPolicy, no API token, its own storage Secret; no chart
    renders a cluster-scoped kind but the namespaces the root project may create; no
    AppProject allows cluster RBAC or every kind; no image is `:latest`."""
    values = yaml.safe_load(gitops_repo.read_values("dev", "digits"))
    values["storage"] = {"existingSecret": "mlops-model-reader"}
    model_docs = manifests(helm.Chart.load(MODEL_API).render(values, name="dev", namespace="d"))
    (policy,) = [d for d in model_docs if d["kind"] == "NetworkPolicy"]
    (deployment,) = [d for d in model_docs if d["kind"] == "Deployment"]
    template = deployment["spec"]["template"]
    assert (
        policy["spec"]["podSelector"]["matchLabels"]
        == deployment["spec"]["selector"]["matchLabels"]
    )
    assert policy["spec"]["policyTypes"] == ["Ingress"] and policy["spec"]["ingress"][0]["from"]
    assert template["metadata"]["labels"]["mlops-assets/use-case"] == "digits"
    assert template["spec"]["automountServiceAccountToken"] is False
    (container,) = template["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "mlops-model-reader"}}]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODEL_ADAPTER"] == "" and "MODEL_METADATA_SHA256" in env
    for doc in model_docs:
        validate(doc)

    argocd_docs = manifests(helm.Chart.load(ARGOCD).render(name="mlops", namespace="argocd"))
    root_docs = list(yaml.safe_load_all((ARGOCD / "root-application.yaml").read_text()))
    for doc in model_docs + argocd_docs:
        if doc["kind"] in CLUSTER_SCOPED:
            assert doc["kind"] == "Namespace", doc["kind"]
    namespaces = {d["metadata"]["name"] for d in argocd_docs if d["kind"] == "Namespace"}
    assert namespaces == {"dagster", "mlops-dev", "mlops-staging", "mlops-prod"}

    projects = {
        d["metadata"]["name"]: d["spec"]
        for d in argocd_docs + root_docs
        if d["kind"] == "AppProject"
    }
    assert set(projects) == {"mlops", "platform", "mlops-root"}
    for name, spec in projects.items():
        cluster = spec.get("clusterResourceWhitelist") or []
        assert not any(k["kind"] in ("ClusterRole", "ClusterRoleBinding", "*") for k in cluster)
        assert {"group": "*", "kind": "*"} not in spec.get("namespaceResourceWhitelist", [])
        if name != "mlops-root":
            assert cluster == [], name  # namespaces come from the root's project
    root_whitelist = projects["mlops-root"]["clusterResourceWhitelist"]
    assert {k["kind"] for k in root_whitelist} == {"Namespace"}
    assert all(
        fnmatch.fnmatch(n, [k["name"] for k in root_whitelist][0]) or n == "dagster"
        for n in namespaces
    )
    (root,) = [d for d in root_docs if d["kind"] == "Application"]
    assert root["spec"]["project"] == "mlops-root"
    (appset,) = [d for d in argocd_docs if d["kind"] == "ApplicationSet"]
    for app in [d for d in argocd_docs if d["kind"] == "Application"] + [
        appset["spec"]["template"]
    ]:
        assert app["spec"]["project"] in ("mlops", "platform")
        assert "CreateNamespace=true" not in app["spec"]["syncPolicy"].get("syncOptions", [])
    assert "CreateNamespace" not in appset["spec"]["templatePatch"]

    images = re.findall(
        r"image: *\"?([^\s\"]+)", "\n".join(yaml.safe_dump(d) for d in model_docs + argocd_docs)
    )
    images += [values["image"]["repository"]]
    from mlops_assets.core.config import KubeflowConfig
    from mlops_assets.kubeflow.pipeline import image

    images.append(image(KubeflowConfig()))
    assert images and not any(i.endswith(":latest") for i in images), images
    assert image(KubeflowConfig()).endswith(":0.1.0")


def test_the_serving_limits_reach_the_server_and_the_grace_period_matches(gitops_repo):
    values = yaml.safe_load(gitops_repo.read_values("dev", "digits"))
    chart = helm.Chart.load(MODEL_API)
    plain = manifests(chart.render(values, name="dev", namespace="d"))
    (deployment,) = [d for d in plain if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
    # only what the chart decides is set; the rest stays the use case's serving: block
    assert {k: v for k, v in env.items() if k.startswith("MLOPS_SERVING_")} == {
        "MLOPS_SERVING_DRAIN_SECONDS": "5",
        "MLOPS_SERVING_GRACE_SECONDS": "20",
    }
    assert spec["terminationGracePeriodSeconds"] == 30
    values["serving"] = {"maxRows": 100, "batching": False, "graceSeconds": 40}
    tuned = manifests(chart.render(values, name="dev", namespace="d"))
    (deployment,) = [d for d in tuned if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
    assert env["MLOPS_SERVING_MAX_ROWS"] == "100" and env["MLOPS_SERVING_BATCHING"] == "false"
    assert spec["terminationGracePeriodSeconds"] == 50
    for doc in tuned:
        validate(doc)
    from mlops_assets.core.config import ServingConfig
    from mlops_assets.serving.limits import limits_of

    limits = limits_of(ServingConfig(), env)  # what the server makes of them
    assert limits.max_rows == 100 and limits.batching is False and limits.grace_seconds == 40


def test_the_inference_log_is_turned_on_by_the_chart(gitops_repo):
    values = yaml.safe_load(gitops_repo.read_values("dev", "digits"))
    chart = helm.Chart.load(MODEL_API)
    values["inferenceLog"] = {"enabled": True, "inputs": "summary"}
    values["storage"] = {"root": "s3://models/mlops", "existingSecret": "digits-dev-writer"}
    docs = manifests(chart.render(values, name="dev", namespace="mlops-dev"))
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MLOPS_INFERENCE_LOG_ENABLED"] == "true"
    assert env["MLOPS_INFERENCE_LOG_INPUTS"] == "summary"
    assert "MLOPS_INFERENCE_LOG_SAMPLE" not in env  # null: the use case's own setting
    assert env["MLOPS_STORAGE_ROOT"] == "s3://models/mlops" and env["MODEL_ENVIRONMENT"] == "dev"
    assert "KERAS_BACKEND" not in env  # the image's default
    values["kerasBackend"] = "jax"
    (jax,) = [
        d
        for d in manifests(chart.render(values, name="dev", namespace="mlops-dev"))
        if d["kind"] == "Deployment"
    ]
    assert {"name": "KERAS_BACKEND", "value": "jax"} in (
        jax["spec"]["template"]["spec"]["containers"][0]["env"]
    )
    for doc in docs:
        validate(doc)
    from mlops_assets.core.config import InferenceLogConfig
    from mlops_assets.serving.inference_log import log_settings_of

    settings = log_settings_of(InferenceLogConfig(), env)  # what the server makes of them
    assert settings.enabled and settings.inputs == "summary" and settings.sample == 1.0


OPTIONS = {
    "rollout": {"rollout": {"enabled": True}},
    "rollout without analysis": {"rollout": {"enabled": True, "analysis": {"enabled": False}}},
    "service monitor": {"metrics": {"serviceMonitor": True}},
    "pod annotations": {"metrics": {"podAnnotations": True}},
    "external secrets": {"externalSecrets": {"enabled": True}},
}


def test_each_option_on_and_off_in_every_environment_renders_valid_and_lints(tmp_path):
    chart = helm.Chart.load(MODEL_API)
    for environment in ENVIRONMENTS:
        base = yaml.safe_load(TEMPLATE.read_text())
        base["model"].update(version="3", uri="s3://models/models/digits/3/model.skops")
        base["model"]["sha256"] = SHA
        base["storage"] = {"existingSecret": "mlops-model-reader"}
        combos = {"all off": {}, **OPTIONS}
        combos["all on"] = {
            "rollout": {"enabled": True},
            "metrics": {"serviceMonitor": True, "podAnnotations": True},
            "externalSecrets": {"enabled": True},
        }
        for name, option in combos.items():
            values = {**copy.deepcopy(base), **option}
            chart.validate_schema(values)
            report = helm.lint(MODEL_API, values, strict=True)
            assert not report["errors"] and all(m["severity"] < 2 for m in report["messages"])
            docs = manifests(chart.render(values, name=environment, namespace=f"m-{environment}"))
            for doc in docs:
                validate(doc)
            kinds = {d["kind"] for d in docs}
            rollout = option.get("rollout", {})
            assert ("Rollout" in kinds) == bool(rollout)
            assert ("AnalysisTemplate" in kinds) == (
                bool(rollout) and rollout.get("analysis", {}).get("enabled", True)
            ), name
            assert ("ServiceMonitor" in kinds) == bool(
                option.get("metrics", {}).get("serviceMonitor")
            )
            (workload,) = [d for d in docs if d["kind"] in ("Rollout", "Deployment")]
            (container,) = workload["spec"]["template"]["spec"]["containers"]
            external = option.get("externalSecrets", {}).get("enabled", False)
            assert ("ExternalSecret" in kinds) == external
            secret = f"{environment}-digits-storage" if external else "mlops-model-reader"
            assert container["envFrom"] == [{"secretRef": {"name": secret}}], name
            (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
            scraped = option.get("metrics", {})
            prometheus_let_in = {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
            } in policy["spec"]["ingress"][0]["from"]
            assert prometheus_let_in == bool(
                scraped.get("serviceMonitor") or scraped.get("podAnnotations")
            )


def test_values_hold_references_to_secrets_never_the_secrets():
    chart = helm.Chart.load(MODEL_API)
    values = yaml.safe_load(TEMPLATE.read_text())
    values["externalSecrets"] = {
        "enabled": True,
        "storage": {"AWS_SECRET_ACCESS_KEY": {"value": "inline-credential"}},
    }
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(values)


def test_the_dagster_external_secrets_cover_every_secret_the_dagster_values_name():
    chart_dir = REPO / "charts" / "dagster" / "external-secrets"
    report = helm.lint(chart_dir, strict=True)
    assert not report["errors"] and all(m["severity"] < 2 for m in report["messages"])
    chart = helm.Chart.load(chart_dir)
    docs = manifests(chart.render({"vault": {"createStore": True}}, name="s", namespace="dagster"))
    for doc in docs:
        validate(doc)
    made = {d["spec"]["target"]["name"] for d in docs if d["kind"] == "ExternalSecret"}
    (store,) = [d for d in docs if d["kind"] == "ClusterSecretStore"]
    assert {d["spec"]["secretStoreRef"]["name"] for d in docs if "secretStoreRef" in d["spec"]} == {
        store["metadata"]["name"]
    }
    values = yaml.safe_load((REPO / "charts/dagster/values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    named = {s["name"] for s in deployment["envSecrets"]}
    named |= {s["name"] for s in values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]}
    named.add(values["global"]["postgresqlSecretName"])
    from mlops_assets.core.config import GitOpsSecrets

    named.add(GitOpsSecrets().token_secret)
    named.add(GitOpsSecrets().read_token_secret)
    assert named <= made, named - made
    ssh = manifests(
        chart.render({"secrets": {GitOpsSecrets().ssh_secret: {"enabled": True}}}, name="s")
    )
    assert GitOpsSecrets().ssh_secret in {d["metadata"]["name"] for d in ssh}
    # the Argo CD platform project may sync them; nothing cluster-scoped by default
    default = manifests(chart.render({}, name="s", namespace="dagster"))
    assert {d["kind"] for d in default} == {"ExternalSecret"}


def test_a_model_namespace_reads_only_its_own_key_through_its_own_store():
    """A values file in environments/dev/ could map any variable to any Vault key through
    a ClusterSecretStore (the GitOps token, Dagster's read/write storage keys). Now the
    store is the namespace's own, its Vault role is that namespace's, the key is fixed, and
    the schema refuses a store, a key or another variable."""
    chart = helm.Chart.load(MODEL_API)
    values = yaml.safe_load(TEMPLATE.read_text())
    values["model"].update(version="3", uri="s3://models/models/digits/3/model.skops")
    values["externalSecrets"] = {"enabled": True}
    chart.validate_schema(values)
    docs = manifests(chart.render(values, name="dev", namespace="mlops-dev"))
    for doc in docs:
        validate(doc)
    (store,) = [d for d in docs if d["kind"] == "SecretStore"]
    (external,) = [d for d in docs if d["kind"] == "ExternalSecret"]
    assert not [d for d in docs if d["kind"] == "ClusterSecretStore"]
    auth = store["spec"]["provider"]["vault"]["auth"]["kubernetes"]
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount"]
    assert auth["role"] == "mlops-model-api-mlops-dev"
    assert auth["serviceAccountRef"] == {"name": account["metadata"]["name"]}
    assert external["spec"]["secretStoreRef"] == {
        "name": store["metadata"]["name"],
        "kind": "SecretStore",
    }
    keys = {(d["secretKey"], d["remoteRef"]["key"]) for d in external["spec"]["data"]}
    assert keys == {
        ("AWS_ACCESS_KEY_ID", "mlops/model-api/mlops-dev/digits/storage"),
        ("AWS_SECRET_ACCESS_KEY", "mlops/model-api/mlops-dev/digits/storage"),
    }
    hostile = [
        {"storage": {"AWS_SECRET_ACCESS_KEY": {"key": "mlops/dagster/s3", "property": "x"}}},
        {"storage": {"MLOPS_GITOPS_TOKEN": {"property": "token"}}},
        {"storeRef": {"name": "vault", "kind": "ClusterSecretStore"}},
        {"vault": {"role": "external-secrets"}},
    ]
    for change in hostile:
        attempt = copy.deepcopy(values)
        attempt["externalSecrets"].update(change)
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(attempt)
    # the models' project may sync the namespace's store, nothing cluster-scoped
    project = [
        d
        for d in manifests(helm.Chart.load(ARGOCD).render({}, name="mlops", namespace="argocd"))
        if d["kind"] == "AppProject" and d["spec"]["description"] == "Models served by mlops_assets"
    ]
    assert project and project[0]["spec"]["clusterResourceWhitelist"] == []
    assert {"group": "external-secrets.io", "kind": "SecretStore"} in project[0]["spec"][
        "namespaceResourceWhitelist"
    ]
