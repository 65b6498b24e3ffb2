"""The ApplicationSet of charts/argocd against a real GitOps repository (git daemon on
loopback) written by the deploy path: every values file gets its Application with its
environment's policy, including a use case deployed for the first time and an environment
added by `mlops-assets gitops init-environment`."""

from __future__ import annotations

import json
import subprocess

import helm_python as helm
import pytest
import yaml

from mlops_assets.gitops.environments import default_policy, environment_yaml
from mlops_assets.gitops.repository import DeployRequest, GitOpsError, GitOpsRepo
from mlops_assets.gitops.resource import TEMPLATE, GitOpsResource
from tests.support.applicationset import generate
from tests.support.charts import ARGOCD, SHA, manifests
from tests.support.crd_schemas import crd_errors
from tests.support.gitops import git_daemon


def _model(name: str, version: str) -> dict[str, str]:
    return {
        "name": name,
        "version": version,
        "uri": f"s3://models/models/{name}/{version}/model.skops",
        "sha256": SHA,
    }


@pytest.fixture
def served_gitops(tmp_path):
    base = tmp_path / "server"
    GitOpsResource(local_path=str(base / "gitops.git")).repo(("digits",))  # the seed
    with git_daemon(base) as url:
        yield GitOpsRepo(f"{url}/gitops.git", backoff_seconds=0.05)


def _applications(repo: GitOpsRepo, tmp_path, branch: str = "main") -> dict[str, dict]:
    (appset,) = [
        d
        for d in manifests(helm.Chart.load(ARGOCD).render(name="mlops", namespace="argocd"))
        if d["kind"] == "ApplicationSet"
    ]
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", "-b", branch, repo.remote, str(checkout)], check=True)
    apps = generate(appset, checkout)
    assert crd_errors([appset, *apps]) == [None] * (len(apps) + 1)
    return {a["metadata"]["name"]: a for a in apps}


def test_every_values_file_gets_an_application_with_its_environments_policy(
    served_gitops, tmp_path
):
    repo = served_gitops
    apps = _applications(repo, tmp_path)
    assert set(apps) == {"digits-dev", "digits-staging", "digits-prod"}

    # a use case's first deploy, and an environment a person added
    assert repo.init_environment("qa", environment_yaml("qa", default_policy("qa"))).changed
    first = repo.deploy(DeployRequest("dev", "wine_quality", _model("wine_quality", "1")))
    assert first.changed and first.previous_version == "0"
    assert repo.deploy(DeployRequest("qa", "digits", _model("digits", "4"))).changed
    apps = _applications(repo, tmp_path / "again")
    assert set(apps) == {
        "digits-dev",
        "digits-staging",
        "digits-prod",
        "digits-qa",
        "wine-quality-dev",
    }
    wine = apps["wine-quality-dev"]
    chart, values = wine["spec"]["sources"]
    assert chart["helm"]["valueFiles"] == ["$values/environments/dev/wine_quality/values.yaml"]
    assert chart["helm"]["releaseName"] == "dev" and values["ref"] == "values"
    assert wine["spec"]["destination"]["namespace"] == "mlops-dev"
    assert wine["metadata"]["labels"] == {
        "mlops-assets/use-case": "wine-quality",
        "mlops-assets/environment": "dev",
    }
    assert wine["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}
    assert apps["digits-qa"]["spec"]["destination"]["namespace"] == "mlops-qa"
    assert "automated" not in apps["digits-prod"]["spec"]["syncPolicy"]  # a person syncs prod
    assert apps["digits-prod"]["spec"]["syncPolicy"]["syncOptions"] == ["PruneLast=true"]
    assert {
        a["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] for a in apps.values()
    } == {"0"}
    # what deploy committed is a values file the model chart takes
    text = repo.read_values("dev", "wine_quality")
    assert yaml.safe_load(text)["model"]["name"] == "wine_quality"


def test_a_branch_deployment_seeds_a_new_use_cases_values_on_its_branch_only(
    served_gitops, tmp_path
):
    """A pull request that adds a use case: its branch deployment's first deploy writes the
    values file from the template on preview/<name>, where an ApplicationSet pointed at
    that branch finds it; main is left as it was."""
    main = served_gitops
    preview = GitOpsRepo(
        main.remote, branch="preview/pr-9", base_branch="main", backoff_seconds=0.05
    )
    first = preview.deploy(DeployRequest("dev", "wine_quality", _model("wine_quality", "1")))
    assert first.changed and first.branch == "preview/pr-9" and first.previous_version == "0"
    assert yaml.safe_load(preview.read_values("dev", "wine_quality"))["model"]["version"] == "1"
    assert "wine-quality-dev" in _applications(main, tmp_path / "preview", "preview/pr-9")
    assert set(_applications(main, tmp_path / "main")) == {
        "digits-dev",
        "digits-staging",
        "digits-prod",
    }
    with pytest.raises(GitOpsError, match="wine_quality"):
        main.read_values("dev", "wine_quality")


def test_deploy_to_an_environment_nobody_set_up_is_refused_and_commits_nothing(served_gitops):
    repo = served_gitops
    with pytest.raises(GitOpsError, match="init-environment --environment perf"):
        repo.deploy(DeployRequest("perf", "digits", _model("digits", "2")))
    assert "perf" not in repo.deployed_everywhere("digits")
    # a policy in place is changed by pull request, not overwritten by the command
    with pytest.raises(GitOpsError, match="pull request"):
        repo.init_environment("prod", environment_yaml("prod", default_policy("dev")))


def test_the_applicationset_keeps_applications_and_workloads_by_default():
    docs = manifests(helm.Chart.load(ARGOCD).render(name="mlops", namespace="argocd"))
    (appset,) = [d for d in docs if d["kind"] == "ApplicationSet"]
    assert appset["spec"]["syncPolicy"] == {
        "applicationsSync": "create-update",
        "preserveResourcesOnDeletion": True,
    }
    allowing = manifests(
        helm.Chart.load(ARGOCD).render(
            {"applicationSet": {"applicationsSync": "sync"}}, name="mlops", namespace="argocd"
        )
    )
    (appset,) = [d for d in allowing if d["kind"] == "ApplicationSet"]
    assert appset["spec"]["syncPolicy"]["applicationsSync"] == "sync"
    assert crd_errors([appset]) == [None]
    # the matrix refuses a key both files hold: no model-api values file may have `argocd:`
    schema = json.loads((ARGOCD.parent / "model-api" / "values.schema.json").read_text())
    assert "argocd" not in schema["properties"]
    assert "argocd" not in yaml.safe_load(TEMPLATE.read_text())


def test_init_environment_from_the_command_line(served_gitops, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from mlops_assets.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLOPS_GITOPS_REMOTE", served_gitops.remote)
    args = ["gitops", "init-environment", "--environment", "perf", "--manual-sync"]
    done = CliRunner().invoke(main, [*args, "--sync-wave", "2"])
    assert done.exit_code == 0, done.output
    assert "committed" in done.output and "mlops-perf must exist" in done.output
    again = CliRunner().invoke(main, [*args, "--sync-wave", "2"])
    assert again.exit_code == 0 and "as asked" in again.output  # nothing to commit twice
    refused = CliRunner().invoke(main, [*args, "--namespace", "Not_A_Name"])
    assert refused.exit_code != 0 and "Not_A_Name" in refused.output
    assert served_gitops.deploy(DeployRequest("perf", "digits", _model("digits", "1"))).changed
    apps = _applications(served_gitops, tmp_path)
    perf = apps["digits-perf"]
    assert perf["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "2"
    assert "automated" not in perf["spec"]["syncPolicy"]
