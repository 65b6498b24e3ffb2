"""The landing zone's cost against its history (issue: ingestion at scale).

On the local default, a landing zone with N files already ingested (10k and 100k by
default; `--sizes 10000,100000,1000000` for the million) and 100 new ones: the time of one
`digits_landing_sensor` tick, evaluated through Dagster's sensor API as the daemon does,
and of acquire on the 100 new files, each in its own process so that its peak memory
(`ru_maxrss`) is its own. The ingested history is written as acquire leaves it (the raw
copies, the catalog, the landing index) without running acquire N times. Writes JSON,
prints a table with the ratio of each figure to its value at the smallest size.

    uv run python bench/landing_scale.py [--sizes 10000,100000] [--new 100]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pipeline_overhead import REPO, compile_bytecode, machine

ROW = ",".join(["0"] * 64) + ",{label}\n"
HEADER = ",".join([f"pixel_{i}" for i in range(64)] + ["label"]) + "\n"

MEASURE = r"""
import json, resource, sys, time
import dagster as dg
from mlops_assets.definitions import build_definitions
from mlops_assets.resources import build_storage
from mlops_assets.settings import load_settings

what = sys.argv[1]
storage = build_storage(load_settings())
started = time.perf_counter()
if what == "tick":
    defs = build_definitions()
    sensor = defs.resolve_sensor_def("digits_landing_sensor")
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(
            instance=instance, definitions=defs, resources={"storage": storage}
        ) as context:
            result = sensor.evaluate_tick(context)
    detail = {"new_files": int(result.run_requests[0].tags["mlops/new_files"])
              if result.run_requests else 0}
else:
    from mlops_assets.kinds.tabular.acquire import run_acquire
    from mlops_assets.storage import Layout
    result = run_acquire(storage, Layout("digits"), "landing/digits")
    detail = {"new_batches": len(result.new), "landing_files": result.landing_files}
seconds = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, **detail}))
"""


def history(root: Path, count: int, new: int) -> None:
    """`count` landing files as acquire leaves them ingested, and `new` not ingested yet."""
    landing = root / "landing/digits"
    raw = root / "raw/digits"
    landing.mkdir(parents=True)
    raw.mkdir(parents=True)
    index, catalog = {}, []
    for n in range(count + new):
        name = f"batch-{n:08d}.csv"
        data = (HEADER + ROW.format(label=n % 10)).encode()
        (landing / name).write_bytes(data)
        if n >= count:
            continue
        stat = (landing / name).stat()
        digest = hashlib.sha256(data).hexdigest()
        batch_id = hashlib.sha256(name.encode()).hexdigest()[:16]  # distinct per file
        index[name] = {
            "version": f"{stat.st_mtime_ns}-{stat.st_size}",
            "sha256": digest,
            "batch_id": batch_id,
        }
        catalog.append(
            {
                "batch_id": batch_id,
                "source": name,
                "file": name,
                "raw_key": f"raw/digits/{batch_id}/{name}",
                "sha256": digest,
                "bytes": len(data),
                "ingested_at": "2026-11-28T00:00:00+00:00",
                "run_id": "",
            }
        )
    (raw / "_landing_index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
    (raw / "_catalog.json").write_text(json.dumps(catalog, indent=2, sort_keys=True))


def measure(root: Path, what: str) -> dict:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")},
        "MLOPS_STORAGE_ROOT": str(root),
        "DAGSTER_HOME": str(root.parent / "dagster_home"),
    }
    (root.parent / "dagster_home").mkdir(exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, what],
        cwd=root.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/landing_scale.json")
    args = parser.parse_args()
    compile_bytecode()
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / ".mlops"
            history(root, size, args.new)
            tick = measure(root, "tick")
            acquire = measure(root, "acquire")
            results.append({"ingested": size, "new": args.new, "tick": tick, "acquire": acquire})
            print(
                f"{size:>9,} ingested + {args.new} new: tick {tick['seconds']:.2f} s "
                f"({tick['peak_mb']:.0f} MB), acquire {acquire['seconds']:.2f} s "
                f"({acquire['peak_mb']:.0f} MB)",
                flush=True,
            )
    base = results[0]
    for result in results:
        for what in ("tick", "acquire"):
            result[what]["ratio_to_smallest"] = result[what]["seconds"] / base[what]["seconds"]
    report = {
        "benchmark": "landing_scale",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "storage": "local",
        "results": results,
        "goals": "1M ingested, 100 new: tick <= 1 s, acquire <= 5 s beyond reading the new "
        "files, peak < 300 MB, each within 2x of its value at 10k",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
