"""No credential in any rendered manifest, values file or GitOps commit.

Real-looking values are set in every place a credential can come from (the environment
variables the code reads, a Kubernetes secret's file) while the platform does its work:
init-environment and a first deploy pushed over HTTPS with the token, every chart rendered
with every option on. Then every output is searched for them."""

from __future__ import annotations

import uuid

import helm_python as helm
import yaml

from mlops_assets.gitops.environments import default_policy, environment_yaml
from mlops_assets.gitops.repository import DeployRequest, GitOpsRepo
from tests.support.charts import ARGOCD, MODEL_API, REPO, SHA, manifests
from tests.support.gitops import git_log

DAGSTER_SECRETS = REPO / "charts" / "dagster" / "external-secrets"


def _credentials() -> dict[str, str]:
    tail = uuid.uuid4().hex.upper()
    return {
        "AWS_ACCESS_KEY_ID": "AKIA" + tail[:16],
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/" + tail[:18],
        "MLOPS_GITOPS_TOKEN": "",  # the HTTPS server's own token, set below
        "MLOPS_KFP_TOKEN": "eyJhbGciOiJSUzI1NiJ9." + uuid.uuid4().hex,
        "DAGSTER_PG_PASSWORD": "pg-" + uuid.uuid4().hex,
        "VAULT_TOKEN": "hvs." + uuid.uuid4().hex,
    }


def test_no_output_holds_a_credential(https_git_server, monkeypatch, tmp_path):
    url, bare, token, authorizations = https_git_server
    secrets = _credentials() | {"MLOPS_GITOPS_TOKEN": token}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    ssh_key = tmp_path / "id_ed25519"
    ssh_key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
    monkeypatch.setenv("MLOPS_GITOPS_SSH_KEY_FILE", str(ssh_key))
    secrets["ssh key"] = "b3BlbnNzaC1rZXktdjEAAAAA"

    repo = GitOpsRepo(url, backoff_seconds=0.05)
    outputs: dict[str, str] = {}
    done = repo.init_environment("qa", environment_yaml("qa", default_policy("qa")))
    outputs["init-environment"] = repr(done)
    model = {
        "name": "digits",
        "version": "2",
        "uri": "s3://models/models/digits/2/model.skops",
        "sha256": SHA,
    }
    outputs["deploy"] = repr(repo.deploy(DeployRequest("qa", "digits", model)))
    history = git_log(bare, "-p", "--all", "--format=%H %an %ae%n%B")
    assert "Add the qa environment" in history and "environments/qa/digits/values.yaml" in history
    outputs["gitops history"] = history
    values = yaml.safe_load(repo.read_values("qa", "digits"))

    everything_on = {
        "rollout": {"enabled": True},
        "metrics": {"serviceMonitor": True, "podAnnotations": True},
        "externalSecrets": {"enabled": True},
        "inferenceLog": {"enabled": True},
        "storage": {"root": "s3://models/mlops"},
    }
    renders = {
        "model-api": helm.Chart.load(MODEL_API).render(
            {**values, **everything_on}, name="qa", namespace="mlops-qa"
        ),
        "argocd": helm.Chart.load(ARGOCD).render(
            {"dagster": {"externalSecrets": True}}, name="mlops", namespace="argocd"
        ),
        "dagster external secrets": helm.Chart.load(DAGSTER_SECRETS).render(
            {
                "vault": {"createStore": True},
                "secrets": {"mlops-kfp-credentials": {"enabled": True}},
            },
            name="dagster-external-secrets",
            namespace="dagster",
        ),
    }
    for chart, rendered in renders.items():
        kinds = [d["kind"] for d in manifests(rendered)]  # NOTES.txt is scanned below too
        assert kinds, chart
        outputs.update({f"{chart}: {name}": text for name, text in rendered.items()})
    assert any("ExternalSecret" in text for text in outputs.values())
    for values_file in [*REPO.glob("charts/**/values.yaml"), REPO / "dagster_cloud.yaml"]:
        outputs[str(values_file.relative_to(REPO))] = values_file.read_text()

    leaks = [
        (where, name)
        for where, text in outputs.items()
        for name, secret in secrets.items()
        if secret and secret in text
    ]
    assert not leaks
    assert authorizations  # the pushes did authenticate with the token
