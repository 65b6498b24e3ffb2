"""Train plus validate of a mixed-type table with the default tabular model, through
Dagster, versus the same estimator fitted and scored by a plain scikit-learn script.

A use case declared by YAML alone (copied into a copy of the package, as a user adds one):
a table of `--rows` rows and 30 columns (24 numbers, four of them with missing values, five
categories, a string label), landed as Parquet files of 10k rows, taken through the DataOps
assets once. Then, interleaved and repeated:
  - `dagster asset materialize --select table/train,table/validate` (local default),
  - bench/plain_tabular_train_validate.py on the same dataset version and parameters.
Reports the wall-time ratio and the in-run ratio (time inside the two asset bodies over
the plain script's own time). Writes JSON, prints a table.

    uv run python -m bench.tabular_train_validate [--rows 200000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from time import perf_counter

from bench.common import REPO, compile_bytecode, write_report
from bench.pipeline_overhead import create_instance, materialize
from bench.train_validate import medians_and_ratios, print_table, run_plain, split_paths
from tests.support.processes import project_copy

NAME = "table"
NUMBERS, WITH_MISSING, CATEGORIES = 24, 4, 5
PARAMS = {"max_iter": 100, "learning_rate": 0.1}


def table(rows: int, seed: int = 0):
    """Rows whose class depends on numbers and categories alike, with 2% missing values in
    four number columns."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(rows, NUMBERS))
    frame = pd.DataFrame(numbers, columns=[f"n{i}" for i in range(NUMBERS)])
    levels = [f"level_{k}" for k in range(6)]
    codes = rng.integers(0, len(levels), size=(rows, CATEGORIES))
    for j in range(CATEGORIES):
        frame[f"c{j}"] = np.asarray(levels, dtype=object)[codes[:, j]]
    score = numbers[:, 0] + np.sin(numbers[:, 1] * 2) + 0.5 * numbers[:, 2] * numbers[:, 3]
    score += (codes[:, 0] - 2.5) * 0.4 + rng.normal(scale=0.5, size=rows)
    frame["label"] = np.where(score < -0.7, "low", np.where(score > 0.7, "high", "mid"))
    for i in range(WITH_MISSING):
        frame.loc[rng.random(rows) < 0.02, f"n{i}"] = np.nan
    return frame


def use_case_yaml() -> str:
    columns = [
        *(
            f"      - {{name: n{i}, type: number, min: -10, max: 10"
            + (", nullable: true}" if i < WITH_MISSING else "}")
            for i in range(NUMBERS)
        ),
        *(f"      - {{name: c{j}, type: category}}" for j in range(CATEGORIES)),
        "      - {name: label, role: label, type: category}",
    ]
    return "\n".join(
        [
            "type: mlops_assets.components.tabular.TabularUseCase",
            "attributes:",
            f"  name: {NAME}",
            "  task: classification",
            "  dataset:",
            f"    landing: landing/{NAME}",
            "    columns:",
            *columns,
            "  training:",
            f"    params: {json.dumps(PARAMS)}",
            "  gate: {metric: balanced_accuracy, threshold: 0.5}",
            "",
        ]
    )


def project(work: Path) -> Path:
    """A copy of the package with the table's use case beside digits and LSFB."""
    copy = project_copy(work / "project")
    (copy / "mlops_assets/defs" / NAME).mkdir()
    (copy / "mlops_assets/defs" / NAME / "defs.yaml").write_text(use_case_yaml())
    return copy


def land(root: Path, rows: int) -> None:
    frame = table(rows)
    folder = root / "landing" / NAME
    folder.mkdir(parents=True)
    for n, start in enumerate(range(0, rows, 10_000)):
        frame.iloc[start : start + 10_000].to_parquet(folder / f"batch-{n:04d}.parquet")


def landed_project(work: Path, rows: int) -> tuple[Path, Path, dict[str, str]]:
    """Under `work`: a storage root with `rows` rows landed, a Dagster home, and the
    environment that runs the package copy holding the table's use case on them."""
    root, home = work / "root", work / "home"
    land(root, rows)
    copy = project(work)
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    create_instance(home)
    env = {
        **os.environ,
        "PYTHONPATH": str(copy),
        "MLOPS_STORAGE_ROOT": str(root),
        "DAGSTER_HOME": str(home),
    }
    return root, home, env


def bodies(home: Path) -> dict[str, float]:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        return {
            step: instance.get_latest_materialization_event(dg.AssetKey([NAME, step]))
            .asset_materialization.metadata["compute_seconds"]
            .value
            for step in ("train", "validate")
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench/results/tabular_train_validate.json"
    )
    args = parser.parse_args()
    compile_bytecode()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root, home, env = landed_project(work, args.rows)
        started = perf_counter()
        materialize(env, work, f"*{NAME}/split")
        dataops_s = perf_counter() - started
        latest = root / "datasets" / NAME / "latest.json"
        version = json.loads(latest.read_text())["dataset_version"]
        spec = {
            "features": {
                **{f"n{i}": "number" for i in range(NUMBERS)},
                **{f"c{j}": "category" for j in range(CATEGORIES)},
            },
            "label": "label",
            "params": PARAMS,
        }
        runs: dict[str, list[dict]] = {"dagster": [], "plain": []}
        for _ in range(args.repeat):
            wall, _ = materialize(env, work, f"{NAME}/train,{NAME}/validate")
            steps = bodies(home)
            runs["dagster"].append({"wall_s": wall, "in_run_s": sum(steps.values()), **steps})
            runs["plain"].append(
                run_plain("plain_tabular_train_validate.py", split_paths(root, version, NAME), spec)
            )
        rows = json.loads((root / "datasets" / NAME / version / "manifest.json").read_text())[
            "rows"
        ]

    median, ratios = medians_and_ratios(runs)
    report = {
        "benchmark": "tabular_train_validate",
        "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
        "columns": {"numbers": NUMBERS, "with_missing": WITH_MISSING, "categories": CATEGORIES},
        "dataset_rows": rows,
        "params": PARAMS,
        "repeat": args.repeat,
        "dataops_once_s": dataops_s,
        "median": median,
        "ratios": ratios,
        "goal": {"wall_dagster_over_plain": 1.3},
        "runs": runs,
    }
    write_report(args.out, report)
    print(f"dataset rows: {rows}, params {PARAMS}; DataOps once: {dataops_s:.1f} s")
    print_table(median, ratios, args.out)


if __name__ == "__main__":
    main()
