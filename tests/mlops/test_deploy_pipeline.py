"""The deploy step inside the release job: an unreachable remote, and secrets kept out."""

from __future__ import annotations

import json
import subprocess

import dagster as dg
import pytest

from mlops_assets.definitions import build_definitions
from mlops_assets.demo.digits_data import seed_digits
from mlops_assets.registry import ModelRegistry
from tests.support.gitops import git_log
from tests.support.mlops_runs import run_mlops as mlops_runs


def run_mlops(instance, **kw):
    if "asset_selection" in kw:  # deploy again alone
        return (
            build_definitions()
            .resolve_job_def("digits_release")
            .execute_in_process(instance=instance, raise_on_error=False, **kw)
        )
    return mlops_runs(build_definitions(), instance)


def prepare_dataset(instance, storage) -> None:
    seed_digits(storage, 5, [1, 2, 3])
    job = build_definitions().resolve_job_def("digits_dataops")
    assert job.execute_in_process(instance=instance).success


# the remote is the point; deploy on S3 storage runs in test_no_credential_in_logs_...
@pytest.mark.parametrize("storage_env", ["local"], indirect=True)
def test_unreachable_remote_fails_deploy_only_and_a_later_run_deploys(
    local_env, storage, monkeypatch, git_server
):
    url, bare = git_server
    with dg.instance_for_test() as instance:
        prepare_dataset(instance, storage)
        monkeypatch.setenv("MLOPS_GITOPS_REMOTE", "git://127.0.0.1:9/gitops.git")
        failed = run_mlops(instance)
        assert not failed.success
        (failure,) = failed.get_step_failure_events()
        assert failure.step_key == "digits__deploy"
        error = failure.event_specific_data.error
        assert "127.0.0.1:9" in error.message + (error.cause.message if error.cause else "")
        registry = ModelRegistry(storage, "digits")
        assert registry.versions() == [1] and registry.champion()["version"] == 1

        monkeypatch.setenv("MLOPS_GITOPS_REMOTE", url)
        # the remote is back: the consistency check (executable alone from the UI) shows that
        # the champion is released but not deployed
        check = dg.AssetCheckKey(dg.AssetKey(["digits", "deploy"]), "deployed_is_champion")
        check_only = dg.define_asset_job("check_only", selection=dg.AssetSelection.checks(check))
        shown = (
            dg.Definitions.merge(build_definitions(), dg.Definitions(jobs=[check_only]))
            .resolve_job_def("check_only")
            .execute_in_process(instance=instance)
        )
        (evaluation,) = shown.get_asset_check_evaluations()
        assert not evaluation.passed
        assert "the registry's champion is v1" in evaluation.description
        again = run_mlops(instance, asset_selection=[dg.AssetKey(["digits", "deploy"])])
        assert again.success
        assert registry.versions() == [1]  # deploying did not release anything
        (after,) = [
            e for e in again.get_asset_check_evaluations() if e.check_name == "deployed_is_champion"
        ]
        assert after.passed
    subject = git_log(bare, "-1", "--format=%s", "main")
    assert subject.startswith("Deploy digits v1 to dev")


def test_no_credential_in_logs_metadata_commits_or_git_config(
    local_env, storage, monkeypatch, https_git_server
):
    """The token authenticates the push to an HTTPS remote and shows up nowhere else."""
    url, bare, token, authorizations = https_git_server
    monkeypatch.setenv("MLOPS_GITOPS_REMOTE", url)
    monkeypatch.setenv("MLOPS_GITOPS_TOKEN", token)
    with dg.instance_for_test() as instance:
        prepare_dataset(instance, storage)
        result = run_mlops(instance)
        assert result.success
        assert result.release is not None
        for run_id in (result.gate.run_id, result.release.run_id):
            records = instance.all_logs(run_id)
            assert records
            for record in records:
                assert token not in json.dumps(record.user_message) + str(record.dagster_event)
            run = instance.get_run_by_id(run_id)
            assert token not in json.dumps(run.run_config, default=str)
    everything = subprocess.run(
        ["git", "--git-dir", str(bare), "log", "--all", "-p", "--format=%B"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Model-Version: 1" in everything and token not in everything
    assert token not in (bare / "config").read_text()
    (deployed,) = result.asset_materializations_for_node("digits__deploy")
    assert deployed.metadata["changed"].value is True
    assert token not in str(deployed.metadata)
    assert token not in repr(build_definitions().resources["gitops"])
    assert authorizations  # the push did authenticate with it


# git against the registry, whatever holds it (the registry on S3: tests/mlops/test_mlops.py)
@pytest.mark.parametrize("storage_env", ["local"], indirect=True)
def test_consistency_check_warns_until_the_champion_is_deployed(
    local_env, storage, monkeypatch, git_server
):
    from mlops_assets.mlops.consistency import compare
    from mlops_assets.resources import build_gitops
    from mlops_assets.settings import load_settings

    url, _ = git_server
    monkeypatch.setenv("MLOPS_GITOPS_REMOTE", url)
    with dg.instance_for_test() as instance:
        prepare_dataset(instance, storage)
        first = run_mlops(instance)
        assert first.success
        (check,) = [
            e for e in first.get_asset_check_evaluations() if e.check_name == "deployed_is_champion"
        ]
        assert check.passed and check.description == "dev deploys champion v1"

        registry = ModelRegistry(storage, "digits")
        registry.release(b"x", "model.bin", {"adapter": "x"}, beaten_champion=1)  # v2, no deploy
        ok, summary, rows = compare(storage, build_gitops(load_settings()), "digits", "dev")
        assert not ok
        assert summary.startswith("dev deploys v1, but the registry's champion is v2")
        statuses = {row[0]: row[3] for row in rows}
        assert statuses["dev"] == "differs from champion v2"

        registry.promote(1, "v2 is a stand-in", pin=True)  # back to v1, pinned
        ok, summary, _ = compare(storage, build_gitops(load_settings()), "digits", "dev")
        assert ok and summary == "dev deploys champion v1 (pinned)"
