"""Every example under docs/examples/ as a user takes it: copied into a copy of the project,
its data landed by the commands at the top of its `defs.yaml`, as written, and one
`dg launch` of all of them to a deploy commit each. The data is what the packages ship
(scikit-learn's sets, palmerpenguins' CSV), so a column the YAML misnames quarantines the
whole table and fails here."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.support.gitops import git_log
from tests.support.markdown_blocks import run_bash
from tests.support.processes import REPO, clean_env, project_copy

EXAMPLES = sorted(p for p in (REPO / "docs/examples").iterdir() if (p / "defs.yaml").exists())


def landing_commands(defs_yaml: str) -> list[str]:
    """The `#   uv run ...` commands of a defs.yaml's header, continuation lines joined."""
    commands: list[str] = []
    for line in defs_yaml.splitlines():
        if not line.startswith("#"):
            break
        text = line[1:].strip()
        if commands and commands[-1].endswith("\\"):
            commands[-1] = commands[-1][:-1] + " " + text
        elif line.startswith("#   uv run "):
            commands.append(text)
    return commands


def test_every_example_says_how_to_land_its_data():
    assert {p.name for p in EXAMPLES} >= {"wine", "penguins", "diabetes", "breast_cancer"}
    for example in EXAMPLES:
        commands = landing_commands((example / "defs.yaml").read_text())
        assert any(f"landing put --use-case {example.name} " in c for c in commands), example


@pytest.mark.slow
def test_each_example_lands_its_data_and_reaches_a_deploy_commit(tmp_path):
    copy = project_copy(tmp_path / "clone", "docs")
    for example in EXAMPLES:
        shutil.copytree(example, copy / "mlops_assets/defs" / example.name)
    env = {**clean_env(), "PYTHONPATH": str(copy)}
    script = "\n".join(
        command
        for example in EXAMPLES
        for command in landing_commands((example / "defs.yaml").read_text())
    )
    selection = " or ".join(f'key:"{example.name}/*"' for example in EXAMPLES)
    script += f"\nuv run dg launch --assets '{selection}'\n"
    done = run_bash(script, copy, env, timeout=900)
    subjects = git_log(copy / ".mlops/gitops.git", "--format=%s", "main").splitlines()
    for example in EXAMPLES:
        assert f"Deploy {example.name} v1 to dev" in subjects, (example.name, subjects)
        # no example's file is quarantined whole (a misnamed column would do that); rows
        # with a reason (a penguin without a species) may be
        quarantine = copy / ".mlops/quarantine" / example.name
        files = [p for p in quarantine.rglob("*") if p.is_file()]
        whole = [p for p in files if p.name not in ("rows.parquet", "quarantine.json")]
        assert whole == [], (example.name, whole)
    assert not re.search(r"Traceback", done.stderr)
