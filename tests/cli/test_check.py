"""`mlops-assets check`: each problem of a use case YAML in one line naming its file, line
and key, exit status 2, as loading the definitions would find it (the cron string too, which
Dagster only refuses when it builds the schedule)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.processes import clean_env, project_copy

CASES = {
    "misspelt key": (
        "    threshold: 0.95",
        "    threshhold: 0.95",
        "gate.threshhold",
        "Extra inputs",
    ),
    "misspelt metric": ("    metric: accuracy", "    metric: acuracy", "gate.metric", "acuracy"),
    "wrong type": ("    threshold: 0.95", "    threshold: high", "gate.threshold", "valid number"),
    "syntax error": ("    threshold: 0.95", "    threshold: [0.95", "(syntax)", "expected"),
    "not a cron": (
        '    retrain_cron: "0 3 * * 0"',
        '    retrain_cron: "every sunday"',
        "schedules.retrain_cron",
        "not a cron expression",
    ),
}


@pytest.mark.slow
def test_each_mistake_is_one_line_with_file_line_and_key(tmp_path):
    copy = project_copy(tmp_path / "project")
    yaml_file = copy / "mlops_assets/defs/digits/defs.yaml"
    good = yaml_file.read_text()
    env = {**clean_env(), "PYTHONPATH": str(copy), "MLOPS_STORAGE_ROOT": str(tmp_path / ".mlops")}

    def check() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", "from mlops_assets.cli import main; main()", "check"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    fine = check()
    assert fine.returncode == 0 and "2 use case(s) check: digits, lsfb" in fine.stdout
    for case, (before, after, key, what) in CASES.items():
        assert before in good, case
        yaml_file.write_text(good.replace(before, after, 1))
        line = next(
            n for n, text in enumerate(yaml_file.read_text().splitlines(), 1) if after in text
        )
        found = check()
        assert found.returncode == 2, case
        (problem,) = found.stdout.splitlines()  # one line, for the one broken use case
        assert problem.startswith(f"{yaml_file}:{line}: {key}: "), (case, problem)
        assert what in problem and "Traceback" not in found.stderr, case
        assert "1 use case(s) check: lsfb" in found.stderr  # the other one still checks
