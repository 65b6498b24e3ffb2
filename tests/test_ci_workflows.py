"""The GitHub Actions workflows and the Dockerfile, checked here as CI cannot check itself:
actionlint and hadolint pass, every action is pinned by a full commit SHA with its tag
beside it, permissions are minimal, the CI/CD page says what each workflow needs, and the image's
file set, installed from the lock without the dev group, runs the image's commands."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.support.processes import REPO

BIN = Path(sys.executable).parent
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?@[0-9a-f]{40}$")


def test_the_workflows_are_there_and_actionlint_passes():
    assert {w.name for w in WORKFLOWS} == {"ci.yml", "image.yml", "dagster-plus.yml", "release.yml"}
    done = subprocess.run(
        [str(BIN / "actionlint"), "-no-color", *map(str, WORKFLOWS)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        (REPO / ".github/workflows/ci.yml").read_text().replace("runs-on:", "run-on:", 1)
    )
    done = subprocess.run(
        [str(BIN / "actionlint"), "-no-color", str(broken)], capture_output=True, text=True
    )
    assert done.returncode == 1 and "run-on" in done.stdout


def test_hadolint_passes_on_the_dockerfile():
    done = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", "Dockerfile"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _steps(workflow: dict):
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield name, job, step


def test_every_action_is_pinned_by_a_commit_sha_with_its_tag_beside_it():
    seen = {}
    for path in WORKFLOWS:
        text = path.read_text()
        for line in text.splitlines():
            match = re.match(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$", line)
            if not match or match.group(1).startswith("./"):
                continue
            action, rest = match.groups()
            assert PINNED.match(action), f"{path.name}: {action} is not pinned by a commit SHA"
            tag = re.match(r"^\s+#\s+(v\d+(\.\d+)*(-[a-z]+)?)\s*$", rest)
            assert tag, f"{path.name}: {action} has no `# vX.Y.Z` comment beside it"
            repo, sha = action.split("@")
            repo = "/".join(repo.split("/")[:2])
            # one SHA per action repository, and one tag per SHA, across all workflows
            assert seen.setdefault(repo, (sha, tag.group(1))) == (sha, tag.group(1)), repo
    assert {
        "actions/checkout",
        "docker/build-push-action",
        "dagster-io/dagster-cloud-action",
    } <= set(seen)


def test_permissions_are_minimal():
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        top = workflow.get("permissions")
        assert top in ({}, {"contents": "read"}), f"{path.name}: top-level permissions {top}"
        for name, job in workflow["jobs"].items():
            granted = job.get("permissions", {})
            writes = {k for k, v in granted.items() if v == "write"}
            allowed = {
                ("image.yml", "build"): {"packages"},
                ("dagster-plus.yml", "deploy"): {"packages", "pull-requests"},
                ("release.yml", "release"): {"contents"},
            }.get((path.name, name), set())
            assert writes <= allowed, f"{path.name} {name}: {writes}"
            for _, _, step in _steps({"jobs": {name: job}}):
                if step.get("uses", "").startswith("actions/checkout@") and name != "release":
                    assert step.get("with", {}).get("persist-credentials") is False, (
                        path.name,
                        name,
                    )


def test_the_docs_name_every_secret_and_variable_the_workflows_use():
    section = (REPO / "docs/deploy/ci-cd.md").read_text()
    used = set()
    for path in WORKFLOWS:
        assert f".github/workflows/{path.name}" in section, path.name
        used |= set(re.findall(r"\b(?:secrets|vars)\.([A-Z_]+)", path.read_text()))
    used.discard("GITHUB_TOKEN")
    assert used == {
        "DAGSTER_CLOUD_API_TOKEN",
        "DAGSTER_CLOUD_ORGANIZATION",
        "MLOPS_GITOPS_REMOTE",
        "MLOPS_GITOPS_AUTHOR",
        "MLOPS_GITOPS_TOKEN",
        "RELEASE_TOKEN",
    }
    for name in used:
        assert f"`{name}`" in section, name


def _copied(dockerfile: str) -> list[str]:
    """The sources of the Dockerfile's COPY lines (not those from another image)."""
    found = []
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            found += words[1:-1]
    return found


@pytest.mark.slow
def test_the_image_file_set_installed_from_the_lock_runs_the_image_commands(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    sources = _copied((REPO / "Dockerfile").read_text())
    assert {"pyproject.toml", "uv.lock", "README.md", "mlops_assets"} <= set(sources)
    for source in sources:
        for path in REPO.glob(source.rstrip("*") if source.endswith("*") else source):
            target = app / path.relative_to(REPO)
            if path.is_dir():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, target)
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv"),
        "VIRTUAL_ENV": "",
        "UV_PYTHON": sys.executable,
        # the image compiles at install; compiling the whole tree here would cost more than
        # the three commands' imports it saves
        "UV_COMPILE_BYTECODE": "0",
    }
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` names itself in UV
    assert uv, "uv is needed (the README installs it)"
    synced = subprocess.run(
        [uv, "sync", "--locked", "--no-dev"], cwd=app, env=env, capture_output=True, text=True
    )
    assert synced.returncode == 0, synced.stderr[-3000:]
    venv = tmp_path / "venv" / "bin"
    assert not (venv / "pytest").exists() and not (venv / "ruff").exists()  # no dev group
    image_env = {"PATH": f"{venv}:/usr/bin:/bin", "HOME": str(tmp_path)}
    commands = [
        ["mlops-assets", "serve", "--help"],
        ["dagster", "api", "grpc", "--help"],
        ["dagster", "definitions", "validate", "--module-name", "mlops_assets.definitions"],
    ]
    running = [  # at once: each is mostly imports
        subprocess.Popen(
            c, cwd=app, env=image_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for c in commands
    ]
    for command, process in zip(commands, running, strict=True):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, (command, out[-2000:], err[-2000:])


def test_ci_runs_the_readme_test_command_and_an_ordinary_uv_run_compiles_nothing():
    """`.ci/run` ends in the README's test command, as written; bytecode is compiled by CI's
    environment and the image (UV_COMPILE_BYTECODE), not by every `uv run` (no
    `compile-bytecode` in pyproject.toml), so a newcomer's commands print only their own."""
    readme = (REPO / "README.md").read_text()
    (command,) = [line for line in readme.splitlines() if line.endswith("uv run pytest")]
    ci = (REPO / ".ci/run").read_text().splitlines()
    assert ci[-1] == command
    assert "export UV_COMPILE_BYTECODE=1" in ci
    uv_settings = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"].get("uv", {})
    assert "compile-bytecode" not in uv_settings
    assert "UV_COMPILE_BYTECODE=1" in (REPO / "Dockerfile").read_text()
