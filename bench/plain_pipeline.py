"""The whole graph's asset bodies as a plain script: the baseline for `pipeline_overhead.py`.

Same functions, same order, same metadata work as the nine assets (DataOps, then train,
validate, release, deploy and deploy's consistency check); no Dagster. Prints the time
spent in each stage as JSON.
"""

from __future__ import annotations

import json
import sys
from time import perf_counter


def main(root: str, graph: str = "whole") -> None:
    timings: dict[str, float] = {}
    started = perf_counter()

    from mlops_assets.datasets.tabular.acquire import run_acquire
    from mlops_assets.datasets.tabular.clean import contract_violations, run_clean
    from mlops_assets.datasets.tabular.dataset import ObserveConfig, SplitConfig, TabularDataset
    from mlops_assets.datasets.tabular.observe import run_observe
    from mlops_assets.datasets.tabular.observe_report import observe_metadata
    from mlops_assets.datasets.tabular.split import run_split
    from mlops_assets.datasets.tabular.split_report import split_metadata
    from mlops_assets.datasets.tabular.transform import run_transform
    from mlops_assets.storage import Layout
    from mlops_assets.storage.local import LocalStorage

    storage, layout = LocalStorage(root=root), Layout("digits")
    dataset, observe, split = TabularDataset(), ObserveConfig(), SplitConfig()
    timings["imports"] = perf_counter() - started

    t = perf_counter()
    run_acquire(storage, layout, "landing/digits", "plain")
    timings["acquire"] = perf_counter() - t
    t = perf_counter()
    observe_metadata(run_observe(storage, layout, dataset, observe), dataset, observe)
    timings["observe"] = perf_counter() - t
    t = perf_counter()
    result = run_clean(storage, layout, dataset)
    contract_violations(storage, layout, [b["batch_id"] for b in result.batches], dataset)
    timings["clean"] = perf_counter() - t
    t = perf_counter()
    run_transform(storage, layout, dataset)
    timings["transform"] = perf_counter() - t
    t = perf_counter()
    split_metadata(storage, layout, run_split(storage, layout, dataset, split), dataset)
    timings["split"] = perf_counter() - t
    if graph == "dataops":
        print(json.dumps(timings))
        return

    from mlops_assets.core.config import DeployConfig, GateConfig, ModelConfig
    from mlops_assets.gitops.resource import GitOpsResource
    from mlops_assets.mlops.consistency import compare
    from mlops_assets.mlops.deploy import run_deploy
    from mlops_assets.mlops.release import run_release
    from mlops_assets.mlops.train import run_train
    from mlops_assets.mlops.validate import run_validate
    from mlops_assets.mlops.validate_report import validation_metadata

    training = ModelConfig(params={"C": 10.0, "gamma": "scale", "kernel": "rbf"})
    t = perf_counter()
    run_train(storage, layout, dataset, training, "plain")
    timings["train"] = perf_counter() - t
    t = perf_counter()
    validation_metadata(
        run_validate(storage, layout, dataset, GateConfig(threshold=0.5), "plain", training.adapter)
    )
    timings["validate"] = perf_counter() - t
    t = perf_counter()
    run_release(storage, layout, "plain", "plain", adapter=training.adapter)
    timings["release"] = perf_counter() - t
    t = perf_counter()
    gitops = GitOpsResource(local_path=f"{root}/gitops.git")
    run_deploy(storage, gitops, "digits", DeployConfig(), "plain", training.adapter)
    timings["deploy"] = perf_counter() - t
    t = perf_counter()
    compare(storage, gitops, "digits", DeployConfig().environment)
    timings["deployed_is_champion"] = perf_counter() - t
    print(json.dumps(timings))


if __name__ == "__main__":
    main(sys.argv[1], *sys.argv[2:3])
