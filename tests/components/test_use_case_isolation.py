"""One broken use case YAML stops no other: the good use case's job runs and its sensor
ticks, and the broken one is one line naming its file, line and key (in the log, and as
the `<name>/not_loaded` asset the UI and `dg list defs` show)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import clean_env, project_copy

SCRIPT = """
import json, sys
import dagster as dg
from mlops_assets.definitions import build_definitions
from mlops_assets.demo.digits_data import seed_digits
from mlops_assets.resources import build_storage
from mlops_assets.settings import load_settings

defs = build_definitions()
repo = defs.get_repository_def()
keys = sorted(k.to_user_string() for k in defs.resolve_all_asset_keys())
storage = build_storage(load_settings())
seed_digits(storage, 5, [1])
with dg.instance_for_test() as instance:
    with dg.build_sensor_context(
        instance=instance, definitions=defs, resources={"storage": storage}
    ) as context:
        tick = defs.resolve_sensor_def("digits_landing_sensor").evaluate_tick(context)
    ran = defs.resolve_job_def("digits_dataops").execute_in_process(instance=instance)
print(json.dumps({
    "jobs": sorted(j.name for j in repo.get_all_jobs()),
    "keys": keys,
    "description": "".join(
        spec.description or "" for spec in defs.resolve_all_asset_specs()
        if spec.key == dg.AssetKey(["lsfb", "not_loaded"])
    ),
    "tick_runs": len(tick.run_requests or []),
    "dataops": ran.success,
}))
"""


def project_with(tmp_path: Path, change) -> Path:
    """A copy of the package whose lsfb YAML `change` edits."""
    copy = project_copy(tmp_path / "project")
    path = copy / "mlops_assets/defs/lsfb/defs.yaml"
    path.write_text(change(path.read_text()))
    return copy


def load(copy: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**clean_env(), "PYTHONPATH": str(copy), "MLOPS_STORAGE_ROOT": str(tmp_path / ".mlops")}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_a_misspelt_key_in_one_use_case_stops_no_other(tmp_path):
    copy = project_with(
        tmp_path, lambda text: text.replace("    threshold: 0.40", "    threshhold: 0.40")
    )
    done = load(copy, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["dataops"] and found["tick_runs"] == 1
    assert "digits_mlops" in found["jobs"] and not any(j.startswith("lsfb_") for j in found["jobs"])
    assert "lsfb/not_loaded" in found["keys"] and "digits/train" in found["keys"]
    yaml_file = copy / "mlops_assets/defs/lsfb/defs.yaml"
    line = next(
        n for n, text in enumerate(yaml_file.read_text().splitlines(), 1) if "threshhold" in text
    )
    expected = f"{yaml_file}:{line}: gate.threshhold: Extra inputs are not permitted"
    assert expected in found["description"]
    (logged,) = [text for text in done.stderr.splitlines() if "not loaded" in text]
    assert logged.endswith(expected)


def test_a_wrong_type_and_a_syntax_error_are_one_line_each(tmp_path):
    from mlops_assets.components.load_errors import one_line  # noqa: F401  (used by the script)

    wrong = project_with(tmp_path / "a", lambda t: t.replace("threshold: 0.40", "threshold: high"))
    done = load(wrong, tmp_path / "a")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert "gate.threshold: Input should be a valid number" in found["description"]
    assert found["dataops"]
    unknown = project_with(tmp_path / "m", lambda t: t.replace("metric: top1", "metric: rmsle"))
    done = load(unknown, tmp_path / "m")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert "defs/lsfb/defs.yaml:" in found["description"]
    assert (
        "gate.metric: Value error, unknown metric 'rmsle': validate computes accuracy"
        in (found["description"])
    )
    assert len(found["description"].splitlines()) == 1 and found["dataops"]
    broken = project_with(
        tmp_path / "b", lambda t: t.replace("threshold: 0.40", "threshold: [0.40")
    )
    done = load(broken, tmp_path / "b")
    # Dagster's own walk of defs/ stops at a file that does not parse; the project's tree
    # leaves that folder out, and the other use case loads, senses and runs
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["dataops"] and found["tick_runs"] == 1
    assert "digits/train" in found["keys"] and "lsfb/not_loaded" in found["keys"]
    assert "mlops_assets/defs/lsfb/defs.yaml:" in found["description"]
    assert "(syntax)" in found["description"]
    assert len(found["description"].splitlines()) == 1


def test_the_tree_matches_dagsters_when_every_folder_parses():
    """The project's walk of defs/ is Dagster's when nothing is broken: the same folders,
    loaded as the same component types."""
    import dagster as dg

    from mlops_assets.components.tree import PROJECT, project_tree

    ours = project_tree()
    theirs = dg.ComponentTree.for_project(PROJECT)

    def described(tree: dg.ComponentTree) -> list[tuple[str, str]]:
        return sorted(
            (type(c).__name__, getattr(c, "name", ""))
            for c in tree.get_all_components(dg.Component)
        )

    assert described(ours) == described(theirs)
    assert ("TabularUseCase", "digits") in described(ours)
    assert ours.unparsed == {}


def test_every_command_names_a_broken_use_case_in_one_line(tmp_path):
    """The broken one's own command fails with its one line (exit 2); a command on a good
    use case runs and warns about the broken one."""
    copy = project_with(
        tmp_path, lambda text: text.replace("    threshold: 0.40", "    threshhold: 0.40")
    )
    env = {**clean_env(), "PYTHONPATH": str(copy), "MLOPS_STORAGE_ROOT": str(tmp_path / ".mlops")}

    def command(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", "from mlops_assets.cli import main; main()", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    line = f"{copy / 'mlops_assets/defs/lsfb/defs.yaml'}:"
    broken = command("feedback", "--use-case", "lsfb", "--label", "some-id", "3")
    assert broken.returncode == 2
    (error,) = [t for t in broken.stderr.splitlines() if t.startswith("Error:")]
    assert line in error and "gate.threshhold: Extra inputs are not permitted" in error
    assert "Traceback" not in broken.stderr
    good = command("feedback", "--use-case", "digits", "--label", "some-id", "3")
    assert good.returncode == 0, good.stderr[-2000:]
    assert "label(s) landed" in good.stdout
    (warning,) = [t for t in good.stderr.splitlines() if t.startswith("Warning:")]
    assert warning.startswith("Warning: use case lsfb does not load: " + line)
