"""Use cases to test: a shipped one as Dagster's component tree loads it, the shipped YAML
with blocks replaced, its definitions or some of its assets with the environment's
resources (`dg.materialize`), and a release by the asset bodies' own functions."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import yaml

from mlops_assets.components.tabular import TabularUseCase
from mlops_assets.components.use_case import UseCase
from mlops_assets.core.config import DeployConfig, GateConfig, ModelConfig
from mlops_assets.datasets.tabular.acquire import run_acquire
from mlops_assets.datasets.tabular.clean import run_clean
from mlops_assets.datasets.tabular.dataset import SplitConfig, TabularDataset
from mlops_assets.datasets.tabular.split import run_split
from mlops_assets.datasets.tabular.transform import run_transform
from mlops_assets.demo.digits_data import seed_digits
from mlops_assets.gitops.resource import GitOpsResource
from mlops_assets.mlops.deploy import run_deploy
from mlops_assets.mlops.release import run_release
from mlops_assets.mlops.train import run_train
from mlops_assets.mlops.validate import run_validate
from mlops_assets.resources import environment_definitions
from mlops_assets.settings import load_settings
from mlops_assets.storage import Layout
from mlops_assets.storage.local import LocalStorage
from tests.support.processes import REPO


def shipped(path: str) -> UseCase:
    """The use case at `mlops_assets/defs/<path>`, as Dagster's component tree loads it."""
    return dg.ComponentTree.for_project(REPO).load_component(path, expected_type=UseCase)


def digits_with(training: dict | None = None, **blocks: dict) -> TabularUseCase:
    """The digits use case of the shipped YAML, with `training` settings (and those of any
    other block, `gate={...}`) replaced."""
    attributes = copy.deepcopy(
        yaml.safe_load((REPO / "mlops_assets/defs/digits/defs.yaml").read_text())["attributes"]
    )
    for block, values in {"training": training or {}, **blocks}.items():
        attributes.setdefault(block, {}).update(values)
    return TabularUseCase.from_attributes_dict(attributes=attributes)


def use_case_definitions(use_case: UseCase) -> dg.Definitions:
    """One use case's definitions with the environment's resources, as the code location
    builds them."""
    return dg.Definitions.merge(use_case.build_defs(None), environment_definitions(load_settings()))


def materialize_steps(
    use_case: UseCase, steps: Sequence[str], instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    """`steps` of the use case's assets (and their checks), materialized with the
    environment's resources by `dg.materialize`: the assets, not the code location."""
    defs = use_case.build_defs(None)
    environment = environment_definitions(load_settings())
    return dg.materialize(
        list(defs.assets or []),
        selection=[f"{use_case.name}/{step}" for step in steps],
        resources=dict(environment.resources or {}),
        instance=instance,
        raise_on_error=False,
    )


def plain_release(root: Path, candidate_id: str = "c1", batches: tuple[int, ...] = (1, 2), **gate):
    """Digits from landing to a GitOps commit by the asset bodies' own functions (no Dagster
    run): storage under `root/.mlops`, the local GitOps remote beside it. Returns the
    storage and the GitOps resource."""
    storage, layout = LocalStorage(root=str(root / ".mlops")), Layout("digits")
    dataset, model = TabularDataset(), ModelConfig(params={"C": 10.0})
    seed_digits(storage, 5, list(batches))
    run_acquire(storage, layout, "landing/digits")
    run_clean(storage, layout, dataset)
    run_transform(storage, layout, dataset)
    run_split(storage, layout, dataset, SplitConfig())
    run_train(storage, layout, dataset, model, candidate_id)
    gate_config = GateConfig(threshold=0.5, **gate)
    run_validate(storage, layout, dataset, gate_config, candidate_id, model.adapter)
    run_release(storage, layout, candidate_id, adapter=model.adapter)
    gitops = GitOpsResource(local_path=str(root / ".mlops" / "gitops.git"))
    run_deploy(storage, gitops, "digits", DeployConfig(), "", model.adapter)
    return storage, gitops
