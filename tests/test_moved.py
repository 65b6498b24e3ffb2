"""The previous release's import paths forward to the new ones for one release, warning."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from mlops_assets import moved
from tests.support.processes import clean_env, project_copy


@pytest.mark.parametrize(
    "old, attribute, new",
    [
        ("mlops_assets.pipeline.kind", "DatasetKind", "mlops_assets.core.kind"),
        ("mlops_assets.pipeline.steps", "step_key", "mlops_assets.core.steps"),
        ("mlops_assets.kinds", "kind", "mlops_assets.datasets"),
        ("mlops_assets.kinds.tabular", "TabularUseCase", "mlops_assets.components.tabular"),
        ("mlops_assets.kinds.tabular", "TabularDataset", "mlops_assets.datasets.tabular"),
        ("mlops_assets.kinds.tabular.rows", "parse_batch", "mlops_assets.datasets.tabular.rows"),
        ("mlops_assets.kinds.lsfb", "LsfbUseCase", "mlops_assets.components.lsfb"),
        ("mlops_assets.registry.registry", "ModelRegistry", "mlops_assets.registry.store"),
        ("mlops_assets.model_input", "to_model_input", "mlops_assets.datasets.model_input"),
        ("mlops_assets.components.config", "GateConfig", "mlops_assets.core.config"),
    ],
)
def test_an_old_path_imports_the_same_object_with_a_warning(old, attribute, new):
    for name in [m for m in sys.modules if m == old or m.startswith(old + ".")]:
        del sys.modules[name]
    with pytest.warns(DeprecationWarning, match=f"{old} moved to"):
        module = importlib.import_module(old)
    assert getattr(module, attribute) is getattr(importlib.import_module(new), attribute)


def test_every_moved_path_names_a_module_that_exists():
    targets = [*moved.MOVED_MODULES.values(), *moved.MOVED_PACKAGES.values()]
    for target in targets:
        importlib.import_module(target)
    assert moved.new_name("mlops_assets.storage") is None  # nothing else is forwarded
    assert moved.new_name("mlops_assets.pipelines") is None


def test_a_defs_yaml_naming_the_old_component_type_still_loads(tmp_path):
    copy = project_copy(tmp_path / "project")
    path = copy / "mlops_assets/defs/digits/defs.yaml"
    text = path.read_text()
    assert "type: mlops_assets.components.tabular.TabularUseCase" in text
    path.write_text(text.replace("mlops_assets.components.tabular", "mlops_assets.kinds.tabular"))
    script = (
        "import json, warnings\n"
        "warnings.simplefilter('always')\n"
        "from mlops_assets.components.tree import load_use_case\n"
        "uc = load_use_case('digits')\n"
        "print(json.dumps([type(uc).__module__, uc.name]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**clean_env(), "PYTHONPATH": str(copy)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        "mlops_assets.components.tabular",
        "digits",
    ]
    assert "mlops_assets.kinds.tabular moved to" in done.stderr
