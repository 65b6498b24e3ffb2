"""A third tabular use case by YAML alone (docs/examples/wine, docs/guides/add-a-use-case.md).

The project is copied as a user's clone would be, `docs/examples/wine/` is copied to
`mlops_assets/defs/wine/` and nothing else changes: the code location then has the
`wine/*` assets (nine, and the production side's three) with their sensors, jobs and
schedules, and `dagster asset materialize` takes scikit-learn's wine data from the landing
zone to a released, deployed model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import REPO

pytestmark = pytest.mark.slow

LIST = """
import json
from mlops_assets.definitions import defs
repo = defs().get_repository_def()
print(json.dumps({
    "assets": sorted(k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()),
    "jobs": sorted(j.name for j in repo.get_all_jobs()),
    "sensors": sorted(s.name for s in repo.sensor_defs),
    "schedules": sorted(s.name for s in repo.schedule_defs),
}))
"""


def clone_with_wine(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        source = REPO / name
        if source.is_file() and not name.startswith("docs/images/"):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    shutil.copytree(REPO / "docs/examples/wine", dest / "mlops_assets/defs/wine")
    return dest


def land_wine(storage_root: Path) -> int:
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame  # its columns as scikit-learn names them
    landing = storage_root / "landing" / "wine"
    landing.mkdir(parents=True)
    frame.sample(frac=1.0, random_state=0).to_csv(landing / "wine-001.csv", index=False)
    return len(frame)


def test_a_tabular_yaml_alone_gives_the_assets_and_a_deployed_model(tmp_path):
    project = clone_with_wine(tmp_path / "clone")
    root = tmp_path / ".mlops"
    rows = land_wine(root)
    (tmp_path / "dagster_home").mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")},
        "PYTHONPATH": str(project),  # the clone's package, not the one under test
        "MLOPS_STORAGE_ROOT": str(root),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    listed = subprocess.run(
        [sys.executable, "-c", LIST], cwd=project, env=env, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr[-3000:]
    defs = json.loads(listed.stdout.strip().splitlines()[-1])
    steps = ("acquire", "observe", "clean", "transform", "split")
    steps += ("train", "validate", "release", "deploy")
    steps += ("inference_log", "feedback", "monitor")  # the production side
    assert [a for a in defs["assets"] if a.startswith("wine/")] == sorted(
        f"wine/{s}" for s in steps
    )
    assert {"wine_dataops", "wine_mlops", "wine_reobserve", "wine_monitor"} <= set(defs["jobs"])
    assert {"wine_landing_sensor", "wine_new_dataset_sensor", "wine_retrain_trigger"} <= set(
        defs["sensors"]
    )
    assert {"wine_retrain_schedule", "wine_reobserve_schedule"} <= set(defs["schedules"])
    assert "digits/deploy" in defs["assets"]  # the others are still there

    run = subprocess.run(
        [sys.executable, "-m", "dagster", "asset", "materialize"]
        + ["-m", "mlops_assets.definitions", "--select", 'key:"wine/*"'],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    from mlops_assets.registry import ModelRegistry
    from mlops_assets.storage.local import LocalStorage

    storage = LocalStorage(root=str(root))
    registry = ModelRegistry(storage, "wine")
    champion = registry.champion()
    assert champion is not None and champion["version"] == 1
    metadata = registry.metadata(1)
    assert metadata["request"]["inputs"][0]["features"][-1] == "proline"
    manifest = storage.read_json(f"datasets/wine/{metadata['dataset_version']}/manifest.json")
    assert sum(manifest["rows"].values()) == rows  # every wine landed in one of the splits
    assert metadata["classes"] == [0, 1, 2]
    clone = tmp_path / "gitops"
    subprocess.run(["git", "clone", "-q", str(root / "gitops.git"), str(clone)], check=True)
    import yaml

    values = yaml.safe_load((clone / "environments/dev/wine/values.yaml").read_text())
    assert values["model"]["name"] == "wine"
    assert values["model"]["version"] == "1"
    assert values["model"]["adapter"] == "sklearn_svc"
