"""Orchestration overhead of the whole graph (nine assets), measured side by side in one run.

Three ways over the same landing files, each on a fresh storage root:
  - `dagster asset materialize` on the local default (in-process executor),
  - the same under Dagster's default multiprocess executor (MLOPS_EXECUTOR=multiprocess),
  - the same stage bodies as a plain script (bench/plain_pipeline.py).
Overhead = wall time of the command minus the time spent inside the asset and asset check
bodies (each body records its own `compute_seconds`). Writes JSON, prints a table.

    uv run python -m bench.pipeline_overhead [--graph whole|dataops] [--rows 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from time import perf_counter

from bench.common import REPO, compile_bytecode, write_report

BIN = Path(sys.executable).parent
GRAPHS = {"dataops": "*digits/split", "whole": "*digits/deploy"}
STEPS = (
    "acquire",
    "observe",
    "clean",
    "transform",
    "split",
    "train",
    "validate",
    "release",
    "deploy",
)


def prepare_landing(folder: Path, rows: int) -> None:
    from mlops_assets.demo.digits_data import seed_digits, synthetic_batch, to_bytes
    from mlops_assets.storage.local import LocalStorage

    storage = LocalStorage(root=str(folder))
    seed_digits(storage, 5, [1, 2, 3, 4, 5])
    if rows:
        storage.write_bytes(
            f"landing/digits/synthetic-{rows}.parquet", to_bytes(synthetic_batch(rows), "parquet")
        )


def create_instance(home: Path) -> None:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get():
        pass


def body_seconds(home: Path, graph: str) -> float:
    """Seconds inside the asset bodies and asset check bodies of the one run in `home`."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs()
        steps = STEPS[:5] if graph == "dataops" else STEPS
        seen, total = set(), 0.0
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is None:
                continue
            if event.is_step_materialization:
                data = event.step_materialization_data.materialization
                seen.add(data.asset_key.path[-1])
            elif event.event_type_value == "ASSET_CHECK_EVALUATION":
                data = event.event_specific_data
            else:
                continue
            if "compute_seconds" in data.metadata:
                total += data.metadata["compute_seconds"].value
        missing = [step for step in steps if step not in seen]
        if missing:
            raise RuntimeError(f"digits/{', digits/'.join(missing)} not materialized in {home}")
        return total


def materialize(env: dict, cwd: Path, selection: str) -> tuple[float, subprocess.CompletedProcess]:
    """`dagster asset materialize` as a user runs it; its wall time and its output."""
    command = [
        str(BIN / "dagster"),
        "asset",
        "materialize",
        "-m",
        "mlops_assets.definitions",
        "--select",
        selection,
    ]
    started = perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    return wall, done


def run_dagster(landing: Path, work: Path, executor: str, graph: str) -> dict[str, float]:
    root, home = work / "root", work / "home"
    shutil.copytree(landing, root)
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    create_instance(home)  # an existing instance, as a user has; schema creation is not a run cost
    env = {
        **os.environ,
        "MLOPS_STORAGE_ROOT": str(root),
        "DAGSTER_HOME": str(home),
        "MLOPS_EXECUTOR": executor,
    }
    wall, done = materialize(env, work, GRAPHS[graph])
    try:
        body = body_seconds(home, graph)
    except RuntimeError as error:
        raise RuntimeError(f"{error}; the run said:\n{done.stderr[-3000:]}") from None
    return {"wall_s": wall, "body_s": body, "overhead_s": wall - body}


def run_plain(landing: Path, work: Path, graph: str) -> dict[str, float]:
    root = work / "root"
    shutil.copytree(landing, root)
    started = perf_counter()
    command = [sys.executable, str(REPO / "bench" / "plain_pipeline.py"), str(root), graph]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    wall = perf_counter() - started
    timings = json.loads(done.stdout.strip().splitlines()[-1])
    body = sum(v for k, v in timings.items())
    return {"wall_s": wall, "body_s": body, "overhead_s": wall - body}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="synthetic rows besides digits")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--graph",
        choices=sorted(GRAPHS),
        default="whole",
        help="the nine assets, or the five DataOps assets",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    runs: dict[str, list[dict[str, float]]] = {"in_process": [], "multiprocess": [], "plain": []}
    compile_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        landing = Path(tmp) / "landing-src"
        prepare_landing(landing, args.rows)
        for i in range(args.repeat):  # interleaved, so drift in the machine hits all three
            for mode in runs:
                work = Path(tmp) / f"{mode}-{i}"
                work.mkdir()
                result = (
                    run_plain(landing, work, args.graph)
                    if mode == "plain"
                    else run_dagster(landing, work, mode, args.graph)
                )
                runs[mode].append(result)

    summary = {
        mode: {k: statistics.median(r[k] for r in results) for k in results[0]}
        for mode, results in runs.items()
    }
    ratios = {
        "overhead_multiprocess_over_in_process": (
            summary["multiprocess"]["overhead_s"] / summary["in_process"]["overhead_s"]
        ),
        "wall_in_process_over_plain": summary["in_process"]["wall_s"] / summary["plain"]["wall_s"],
    }
    report = {
        "benchmark": "pipeline_overhead",
        "graph": args.graph,
        "rows": {"digits": 1797, "synthetic": args.rows},
        "repeat": args.repeat,
        "median": summary,
        "ratios": ratios,
        "runs": runs,
    }
    args.out = args.out or REPO / f"bench/results/pipeline_overhead_{args.graph}.json"
    write_report(args.out, report)
    print(f"{'mode':<14}{'wall s':>9}{'bodies s':>10}{'overhead s':>12}")
    for mode, row in summary.items():
        print(f"{mode:<14}{row['wall_s']:>9.2f}{row['body_s']:>10.2f}{row['overhead_s']:>12.2f}")
    for name, value in ratios.items():
        print(f"{name}: {value:.2f}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
