"""A branch deployment (Dagster+ runs one per pull request) is kept apart from production:
its own storage prefix and registry, its deploys on the GitOps branch preview/<name>,
and nothing of production (storage, the GitOps main branch) changes by a byte."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import dagster as dg
import pytest
import yaml

from mlops_assets.definitions import build_definitions
from mlops_assets.demo.digits_data import seed_digits
from mlops_assets.settings import SettingsError, load_settings
from tests.support.mlops_runs import run_mlops

pytestmark = pytest.mark.slow


def run_digits(instance) -> None:
    defs = build_definitions()
    assert defs.resolve_job_def("digits_dataops").execute_in_process(instance=instance).success
    assert run_mlops(defs, instance).success


def tree_digest(root: Path, skip: str) -> dict[str, str]:
    """Every file under `root` (but `skip/`), by its sha256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).as_posix().startswith(skip + "/")
    }


def refs(bare: Path) -> dict[str, str]:
    out = subprocess.run(
        ["git", "-C", str(bare), "for-each-ref", "--format=%(refname) %(objectname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split() for line in out.splitlines())


def values_on(bare: Path, ref: str, path: str) -> dict:
    shown = subprocess.run(
        ["git", "-C", str(bare), "show", f"{ref}:{path}"], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    return yaml.safe_load(shown.stdout)


def test_a_branch_deployment_releases_and_deploys_apart(local_env, git_server, monkeypatch):
    remote, bare = git_server
    root = local_env / ".mlops"
    monkeypatch.setenv("MLOPS_GITOPS_REMOTE", remote)
    with dg.instance_for_test() as instance:
        # production first: digits v1 released and deployed to dev on main
        storage = build_definitions().resources["storage"]
        seed_digits(storage, 5, [1, 2])
        run_digits(instance)
        production = tree_digest(root, skip="branches")
        production_refs = refs(bare)
        assert (
            values_on(bare, "refs/heads/main", "environments/dev/digits/values.yaml")["model"][
                "version"
            ]
            == "1"
        )

        # the pull request's branch deployment, as Dagster+ announces it
        monkeypatch.setenv("DAGSTER_CLOUD_IS_BRANCH_DEPLOYMENT", "1")
        monkeypatch.setenv("DAGSTER_CLOUD_DEPLOYMENT_NAME", "feature-7")
        settings = load_settings()
        assert settings.env == "branch"
        assert settings.gitops_branch == "preview/feature-7"
        defs = build_definitions()
        repo = defs.get_repository_def()
        # nothing that starts runs by itself is on
        for sensor in repo.sensor_defs:
            assert sensor.default_status == dg.DefaultSensorStatus.STOPPED, sensor.name
        for schedule in repo.schedule_defs:
            assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED, schedule.name
        branch_storage = defs.resources["storage"]
        seed_digits(branch_storage, 7, [1, 2, 3])
        run_digits(instance)

    # the branch registry started empty: its first release is its own v1, under its prefix
    branch_models = root / "branches/feature-7/models/digits"
    assert (branch_models / "1" / "metadata.json").exists()
    assert not (branch_models / "2").exists()
    # production: storage and the GitOps main branch byte for byte as they were
    assert tree_digest(root, skip="branches") == production
    after = refs(bare)
    assert after.pop("refs/heads/preview/feature-7")
    assert after == production_refs
    preview = values_on(bare, "refs/heads/preview/feature-7", "environments/dev/digits/values.yaml")
    assert preview["model"]["version"] == "1"
    assert preview["model"]["uri"].startswith("branches/feature-7/models/digits/1/")
    main = values_on(bare, "refs/heads/main", "environments/dev/digits/values.yaml")
    assert main["model"]["uri"].startswith("models/digits/1/")
    assert preview["model"]["sha256"] != main["model"]["sha256"]  # other data, other model
    subject = subprocess.run(
        ["git", "-C", str(bare), "log", "-1", "--format=%s", "refs/heads/preview/feature-7"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert subject == "Deploy digits v1 to dev (was v1 of models/digits)"


def test_a_branch_deployment_needs_a_safe_name(monkeypatch):
    base = {"MLOPS_ENV": "branch"}
    with pytest.raises(SettingsError, match="MLOPS_BRANCH_DEPLOYMENT"):
        load_settings(base)
    with pytest.raises(SettingsError, match="letters, digits"):
        load_settings({**base, "MLOPS_BRANCH_DEPLOYMENT": "../prod"})
    by_hand = load_settings({**base, "MLOPS_BRANCH_DEPLOYMENT": "try-1"})
    assert by_hand.storage_root.endswith("/branches/try-1")
    assert by_hand.gitops_base_branch == "main"
    # Dagster+'s flag wins over MLOPS_ENV: a pull request's code never acts as production
    cloud = {"MLOPS_ENV": "local", "DAGSTER_CLOUD_IS_BRANCH_DEPLOYMENT": "1"}
    assert load_settings({**cloud, "DAGSTER_CLOUD_DEPLOYMENT_NAME": "pr-3"}).env == "branch"


def test_a_branch_deployment_on_the_cluster_keeps_the_cluster_checks():
    cloud = {
        "MLOPS_ENV": "k8s",
        "DAGSTER_CLOUD_IS_BRANCH_DEPLOYMENT": "1",
        "DAGSTER_CLOUD_DEPLOYMENT_NAME": "pr-3",
        "MLOPS_GITOPS_REMOTE": "https://git.example/gitops.git",
    }
    with pytest.raises(SettingsError, match="MLOPS_STORAGE_ROOT must be set to s3://"):
        load_settings(cloud)
    settings = load_settings({**cloud, "MLOPS_STORAGE_ROOT": "s3://models/mlops"})
    assert settings.env == "branch"
    assert settings.storage_root == "s3://models/mlops/branches/pr-3"
    assert settings.production_storage_root == "s3://models/mlops"
    assert settings.gitops_branch == "preview/pr-3"
