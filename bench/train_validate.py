"""Train plus validate through Dagster versus the same scikit-learn calls as a plain script.

One dataset (the digits plus a synthetic batch, big enough that training is the work),
then, interleaved and repeated:
  - `dagster asset materialize --select digits/train,digits/validate` (local default),
  - bench/plain_train_validate.py on the same dataset version and parameters.
Reports the wall-time ratio and the in-run ratio (time inside the two asset bodies over
the plain script's own time). Writes JSON, prints a table.

    uv run python -m bench.train_validate [--rows 60000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from time import perf_counter

from bench.common import REPO, compile_bytecode, write_report
from bench.pipeline_overhead import create_instance, materialize, prepare_landing


def split_paths(root: Path, version: str, use_case: str = "digits") -> dict[str, list[str]]:
    """Each split's files of the dataset version, as paths the plain script reads."""
    from mlops_assets.datasets.tabular.split import split_files
    from mlops_assets.storage import Layout
    from mlops_assets.storage.local import LocalStorage

    storage, layout = LocalStorage(root=str(root)), Layout(use_case)
    return {
        name: [str(root / key) for key in split_files(storage, layout, version, name)]
        for name in ("train", "val", "test")
    }


def bodies(home: Path) -> float:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        return sum(
            instance.get_latest_materialization_event(dg.AssetKey(["digits", step]))
            .asset_materialization.metadata["compute_seconds"]
            .value
            for step in ("train", "validate")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=60_000, help="synthetic rows besides digits")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/train_validate.json")
    args = parser.parse_args()
    compile_bytecode()

    from mlops_assets.core.config import ModelConfig
    from mlops_assets.mlops.train import resolved_params

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root, home = work / "root", work / "home"
        prepare_landing(root, args.rows)
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        create_instance(home)
        env = {**os.environ, "MLOPS_STORAGE_ROOT": str(root), "DAGSTER_HOME": str(home)}
        materialize(env, work, "*digits/split")
        version = json.loads((root / "datasets/digits/latest.json").read_text())["dataset_version"]
        params = resolved_params(_training_config(ModelConfig))
        runs: dict[str, list[dict]] = {"dagster": [], "plain": []}
        for _ in range(args.repeat):
            wall, _ = materialize(env, work, "digits/train,digits/validate")
            runs["dagster"].append({"wall_s": wall, "in_run_s": bodies(home)})
            runs["plain"].append(
                run_plain("plain_train_validate.py", split_paths(root, version), params)
            )
        rows = json.loads((root / "datasets/digits" / version / "manifest.json").read_text())[
            "rows"
        ]

    median, ratios = medians_and_ratios(runs)
    report = {
        "benchmark": "train_validate",
        "dataset_rows": rows,
        "params": params,
        "repeat": args.repeat,
        "median": median,
        "ratios": ratios,
        "runs": runs,
    }
    write_report(args.out, report)
    print(f"dataset rows: {rows}, params {params}")
    print_table(median, ratios, args.out)


def run_plain(script: str, *arguments: object) -> dict[str, float]:
    """bench/`script` with `arguments` as JSON: its wall time and the seconds it reports
    inside its own work (its last line)."""
    command = [sys.executable, str(REPO / "bench" / script), *map(json.dumps, arguments)]
    started = perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    wall = perf_counter() - started
    return {"wall_s": wall, "in_run_s": json.loads(done.stdout.strip().splitlines()[-1])["seconds"]}


def medians_and_ratios(runs: dict[str, list[dict]]) -> tuple[dict, dict[str, float]]:
    """Each mode's medians, and the Dagster-over-plain ratios of wall and in-run time."""
    median = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in runs.items()}
    return median, {
        "wall_dagster_over_plain": median["dagster"]["wall_s"] / median["plain"]["wall_s"],
        "in_run_dagster_over_plain": median["dagster"]["in_run_s"] / median["plain"]["in_run_s"],
    }


def print_table(median: dict, ratios: dict[str, float], out: Path) -> None:
    print(f"{'mode':<10}{'wall s':>9}{'in run s':>10}")
    for mode, row in median.items():
        print(f"{mode:<10}{row['wall_s']:>9.2f}{row['in_run_s']:>10.2f}")
    for name, value in ratios.items():
        print(f"{name}: {value:.3f}")
    print(f"written to {out}")


def _training_config(model_config_cls):
    import yaml

    attributes = yaml.safe_load((REPO / "mlops_assets/defs/digits/defs.yaml").read_text())
    return model_config_cls(**attributes["attributes"].get("training", {}))


if __name__ == "__main__":
    main()
