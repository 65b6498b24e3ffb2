"""What a Dagster user expects to see in the UI: each asset's kinds, its owners from the
use case YAML, a code reference (linked to git when the repository is set), and a
freshness policy where an asset should stay fresh (the monitor)."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml

from mlops_assets.components.use_case import BuildOptions
from mlops_assets.definitions import _use_case_definitions, build_definitions
from tests.support.processes import REPO
from tests.support.use_cases import digits_with, shipped, use_case_definitions

EXPECTED_KINDS = {
    "digits/acquire": {"pandas"},
    "digits/split": {"pandas"},
    "digits/train": {"scikitlearn"},
    "digits/validate": {"scikitlearn"},
    "digits/release": {"python"},
    "digits/deploy": {"git", "kubernetes"},
    "digits/inference_log": {"parquet"},
    "digits/monitor": {"python"},
    "lsfb/clean": {"numpy"},
    "lsfb/train": {"keras"},
}


def specs(defs: dg.Definitions) -> dict[str, dg.AssetSpec]:
    return {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}


def kinds(spec: dg.AssetSpec) -> set[str]:
    return {t.removeprefix("dagster/kind/") for t in spec.tags if t.startswith("dagster/kind/")}


def test_assets_show_their_kinds_owners_and_code(monkeypatch):
    monkeypatch.delenv("MLOPS_CODE_REPO_URL", raising=False)
    _use_case_definitions.cache_clear()
    found = specs(build_definitions())
    for key, expected in EXPECTED_KINDS.items():
        assert kinds(found[key]) == expected, key
    for key, spec in found.items():
        assert spec.owners == ["team:ml-platform"], key  # the shipped YAMLs' owners
        # the Python that builds it, and the use case's YAML (Dagster's component tree adds it)
        python, yaml_file = spec.metadata["dagster/code_references"].code_references
        assert python.file_path.endswith(".py") and python.line_number > 0, key
        assert yaml_file.file_path.endswith(f"defs/{key.split('/')[0]}/defs.yaml"), key
    assert found["digits/monitor"].freshness_policy is not None
    assert found["digits/train"].freshness_policy is None  # trains when data says so


def test_code_references_link_to_git_when_the_repository_is_known(monkeypatch):
    monkeypatch.setenv("MLOPS_CODE_REPO_URL", "https://github.com/example/mlops-assets")
    monkeypatch.setenv("MLOPS_CODE_VERSION", "0123abc")
    _use_case_definitions.cache_clear()
    try:
        found = specs(build_definitions())
    finally:
        _use_case_definitions.cache_clear()
    python, yaml_file = found["digits/deploy"].metadata["dagster/code_references"].code_references
    assert python.url.startswith(
        "https://github.com/example/mlops-assets/tree/0123abc/mlops_assets/mlops/assets.py#L"
    )
    assert yaml_file.url.startswith(
        "https://github.com/example/mlops-assets/tree/0123abc/mlops_assets/defs/digits/defs.yaml#L"
    )
    # everything else of the definitions survives the linking pass
    assert {"digits_mlops", "digits_dataops", "lsfb_mlops"} <= {
        job.name for job in build_definitions().get_repository_def().get_all_jobs()
    }


def test_an_owner_that_is_no_email_or_team_is_refused_when_the_definitions_load():
    use_case = digits_with()
    broken = use_case.model_copy(update={"owners": ["nobody"]})
    with pytest.raises(Exception, match="nobody"):
        broken.definitions(BuildOptions())


@pytest.mark.parametrize("path", ["digits", "lsfb"])
def test_the_component_tree_loads_each_use_case_with_its_yaml_owners(path):
    use_case = shipped(path)  # Dagster's ComponentTree, as `dg` and the code location load it
    declared = yaml.safe_load((REPO / "mlops_assets/defs" / path / "defs.yaml").read_text())
    assert use_case.name == path
    assert use_case.owners == declared["attributes"]["owners"]
    assert {spec.owners[0] for spec in specs(use_case_definitions(use_case)).values()} == set(
        use_case.owners
    )
