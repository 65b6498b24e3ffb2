"""The README's main command, run as a newcomer runs it: a fresh folder, the CLI."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.support.processes import clean_env, run_demo


@pytest.mark.slow
def test_demo_command_runs_the_whole_pipeline(tmp_path):
    env = clean_env()
    result = run_demo(tmp_path, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "seeding batches 1-3 of 5" in result.stdout
    assert "dataset version" in result.stdout
    datasets = tmp_path / ".mlops" / "datasets" / "digits"
    (version,) = [p for p in datasets.iterdir() if p.is_dir()]
    assert {p.name for p in version.iterdir()} == {"manifest.json"}
    files = json.loads((version / "manifest.json").read_text())["parts"]
    assert set(files) == {"train", "val", "test"}  # the first version: all its parts, each there
    assert all((tmp_path / ".mlops" / key).is_file() for keys in files.values() for key in keys)
    # runs are kept in the Dagster home for `dagster dev` to show
    assert (tmp_path / ".dagster" / "history" / "runs.db").exists()
    # a released model, and its deploy committed to the local GitOps repository
    assert "model: digits v1 is champion, test accuracy" in result.stdout
    assert "gitops: dev deploys digits v1 on branch main, last commit" in result.stdout
    assert "BetaWarning" not in result.stdout + result.stderr
    message = subprocess.run(
        ["git", "--git-dir", str(tmp_path / ".mlops" / "gitops.git"), "log", "-1", "--format=%B"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert message.startswith("Deploy digits v1 to dev")
    for trailer in ("Model-Version: 1", "Model-Sha256: ", "Dataset-Version: ", "Dagster-Run-Id: "):
        assert trailer in message

    again = run_demo(tmp_path, env)
    assert again.returncode == 0
    assert "only deploying it" in again.stdout
    assert "already deployed" in again.stdout + again.stderr
    # nothing landed: only acquire runs, so no skipped step's blocking check is warned about
    assert "only acquire runs" in again.stdout
    assert "emitted no result" not in again.stdout + again.stderr
