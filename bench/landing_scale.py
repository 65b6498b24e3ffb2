"""The landing zone's cost against its history (issue: ingestion at scale).

On the local default, a landing zone with N files already ingested (10k, 100k and 1M by
default) and 100 new ones, per discovery mode (listing; lexical on one flat folder and on
folders of 1,000 files): the time of one `digits_landing_sensor` tick, evaluated through
Dagster's sensor API as the daemon does (definitions loaded before the clock starts), and
of acquire on the 100 new files, each in its own process so that its peak memory
(`VmHWM`) is its own. The ingested history is written as acquire leaves it (markers,
catalog segments, acquire's cursor) without running acquire N times. Then the time of a
new dataset version (split) over N batches plus 100 new, against only writing the new
rows; and, on a moto S3 server, the requests of one tick per mode (landing_scale_s3.py).
Writes JSON; prints each figure with its ratio to the smallest size.

    uv run python -m bench.landing_scale [--sizes 10000,100000,1000000] [--new 100]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import REPO, compile_bytecode, write_report

ROW = "{pixels},{label}\n"
HEADER = ",".join([f"pixel_{i}" for i in range(64)] + ["label"]) + "\n"

MEASURE = r"""
import json, sys, time
what, discovery = sys.argv[1], sys.argv[2]
import dagster as dg, yaml
from mlops_assets.components.tabular import TabularUseCase
from mlops_assets.resources import build_storage, environment_definitions
from mlops_assets.settings import load_settings
from mlops_assets.storage import Layout

storage = build_storage(load_settings())
cursor = (json.loads(storage.read_bytes(Layout("digits").landing_cursor))["cursor"]
          if what in ("tick", "acquire") else None)
if what == "tick":
    loaded = time.perf_counter()
    attributes = yaml.safe_load(open(sys.argv[3]))["attributes"]
    attributes["dataset"]["landing"] = {"prefix": "landing/digits", "discovery": discovery}
    use_case = TabularUseCase.from_attributes_dict(attributes=attributes)
    defs = dg.Definitions.merge(
        use_case.build_defs(None), environment_definitions(load_settings())
    )
    loaded = time.perf_counter() - loaded
    sensor = defs.resolve_sensor_def("digits_landing_sensor")
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(
            instance=instance, definitions=defs, resources={"storage": storage}, cursor=cursor
        ) as context:
            started = time.perf_counter()
            result = sensor.evaluate_tick(context)
            seconds = time.perf_counter() - started
    detail = {"new_files": int(result.run_requests[0].tags["mlops/new_files"])
              if result.run_requests else 0, "definitions_load_seconds": loaded}
elif what in ("split", "stages"):
    from mlops_assets.components.tabular import TabularUseCase
    from mlops_assets.datasets.tabular.clean import run_clean
    from mlops_assets.datasets.tabular.observe import run_observe
    from mlops_assets.datasets.tabular.split import run_split
    from mlops_assets.datasets.tabular.split_report import split_metadata
    from mlops_assets.datasets.tabular.transform import run_transform
    attributes = yaml.safe_load(open(sys.argv[3]))["attributes"]
    uc = TabularUseCase.from_attributes_dict(attributes=attributes)
    layout = Layout("digits")
    new = json.loads(storage.read_bytes("bench/new.json"))
    detail = {}
    if what == "split":
        started = time.perf_counter()  # the baseline: only writing the new rows, one file each
        for batch in new:
            frame = storage.read_parquet(layout.staged("transform", batch, "parquet"))
            storage.write_parquet(f"bench/copy/{batch}.parquet", frame)
        detail["write_new_rows_seconds"] = time.perf_counter() - started
    steps = {"split": lambda: run_split(storage, layout, uc.dataset, uc.split)}
    if what == "stages":
        steps = {
            "observe": lambda: run_observe(storage, layout, uc.dataset, uc.observe),
            "clean": lambda: run_clean(storage, layout, uc.dataset),
            "transform": lambda: run_transform(storage, layout, uc.dataset),
            **steps,
        }
    seconds = 0.0
    for name, step in steps.items():
        started = time.perf_counter()
        result = step()
        if name == "split":  # the version's checks, as the asset runs them
            split_metadata(storage, layout, result, uc.dataset)
        detail[f"{name}_seconds"] = time.perf_counter() - started
        seconds += detail[f"{name}_seconds"]
    detail["new_rows"] = sum(result.new_rows.values())
    if what == "split":
        detail["ratio_to_writing"] = seconds / detail["write_new_rows_seconds"]
else:
    from mlops_assets.datasets.tabular.acquire import run_acquire
    started = time.perf_counter()
    result = run_acquire(storage, Layout("digits"), "landing/digits", discovery=discovery)
    seconds = time.perf_counter() - started
    detail = {"new_batches": len(result.new), "landing_files": result.landing_files}
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec, so a
# child of a bench process that grew while writing a large history would report its size
peak_mb = next(int(line.split()[1]) for line in open("/proc/self/status")
               if line.startswith("VmHWM:")) / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, **detail}))
"""

MODES = ("listing", "lexical", "lexical/partitioned")
"""Discovery, and the zone's naming: flat (one folder) unless `/partitioned` (1,000 files a
folder, as date partitions such as 2026/11/28/ give)."""


def history(root: Path, count: int, new: int, discovery: str, partitioned: bool = False) -> None:
    """`count` landing files as acquire leaves them ingested (their markers, the catalog
    in segments of 1,000 batches, acquire's cursor after the last of them), and `new`
    landed since. The raw copies are left out: nothing on these paths reads them."""
    from mlops_assets.storage import Layout

    layout = Layout("digits")
    landing = root / "landing/digits"
    landing.mkdir(parents=True)
    segment: list[dict] = []
    last = None
    for n in range(count + new):
        name = f"part-{n // 1000:05d}/batch-{n:08d}.csv" if partitioned else f"batch-{n:08d}.csv"
        pixels = ",".join(f"{n:064d}")  # distinct rows, every pixel a digit in range
        data = (HEADER + ROW.format(pixels=pixels, label=n % 10)).encode()
        if partitioned and n % 1000 == 0:
            (landing / name).parent.mkdir()
        (landing / name).write_bytes(data)
        if n >= count:
            continue
        stat = (landing / name).stat()
        digest = hashlib.sha256(data).hexdigest()
        version = f"{stat.st_mtime_ns}-{stat.st_size}"
        marker = root / layout.landing_marker(name)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(
            json.dumps(
                {"name": name, "version": version, "sha256": digest, "batch_id": digest[:16]}
            )
        )
        segment.append(
            {
                "batch_id": digest[:16],
                "source": name,
                "file": name,
                "raw_key": f"raw/digits/{digest[:16]}/{name}",
                "sha256": digest,
                "bytes": len(data),
                "ingested_at": "2026-11-28T00:00:00+00:00",
                "run_id": "",
            }
        )
        if len(segment) == 1000 or n == count - 1:
            head = f"s{n // 1000 + 1:012d}.json"
            path = root / layout.catalog_segment(head)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(segment))
            (root / layout.catalog_head).write_text(json.dumps({"segment": head}))
            segment = []
        last = (f"landing/digits/{name}", version, stat.st_mtime_ns)
    if discovery == "lexical":
        cursor = {"after": last[0]}
    else:
        cursor = {"modified_ns": last[2], "seen": [f"{last[0]}@{last[1]}"]}
    (root / layout.landing_cursor).write_text(
        json.dumps({"discovery": discovery, "cursor": json.dumps(cursor)})
    )


def split_history(root: Path, count: int, new: int, what: str, rows: int = 20) -> None:
    """`count` batches as the DataOps stages leave them (the catalog in segments of 1,000
    batches, each stage's cursor after them, a dataset version holding them) and `new`
    cataloged since in one segment, as one acquire leaves them: for `split`, transformed
    already (what the next version adds); for `stages`, only ingested. The history's own
    files (raw copies, outputs, parts, row markers) are left out: nothing on these paths
    reads them."""
    import numpy as np
    import pandas as pd

    from mlops_assets.components.tree import load_use_case
    from mlops_assets.datasets.tabular.profile import merge_profiles, profile_frame
    from mlops_assets.datasets.tabular.transform import transform_frame
    from mlops_assets.storage import Layout

    use_case = load_use_case("digits")
    dataset = use_case.dataset
    layout = Layout("digits")
    ids = [f"{n:016x}" for n in range(count + new)]
    segments = root / layout.catalog_segment()
    segments.mkdir(parents=True)
    names = []
    for n, start in enumerate([*range(0, count, 1000), count], start=1):
        end = min(start + 1000, count) if start < count else count + new
        chunk = [
            {"batch_id": b, "source": f"{b}.csv", "raw_key": f"raw/digits/{b}/{b}.csv"}
            for b in ids[start:end]
        ]
        names.append(f"s{n:012d}.json")
        (segments / names[-1]).write_text(json.dumps(chunk))
    (root / layout.catalog_head).write_text(json.dumps({"segment": names[-1]}))
    rng = np.random.default_rng(0)
    profiles = []
    for n, batch in enumerate(ids[count:]):
        pixels = rng.integers(0, 17, (rows, 64))
        frame = pd.DataFrame(pixels, columns=[f"pixel_{i}" for i in range(64)])
        frame["label"] = (np.arange(rows) + n) % 10
        raw = root / f"raw/digits/{batch}/{batch}.csv"
        raw.parent.mkdir(parents=True)
        frame.to_csv(raw, index=False)
        text = frame.astype(str)
        profiles.append(profile_frame(text, dataset, use_case.observe.drift_bins))
        if what == "split":
            clean = frame.assign(content_hash=[f"{batch}-{r}" for r in range(rows)])
            out = root / layout.staged("transform", batch, "parquet")
            out.parent.mkdir(parents=True, exist_ok=True)
            transform_frame(clean, batch, dataset).to_parquet(out, index=False)
    history = names[-2]
    cursors = root / layout.stage_cursor("x")
    cursors.parent.mkdir(parents=True)
    done = names[-1] if what == "split" else history
    merged = merge_profiles(profiles)  # stands for the history's running profiles
    (root / layout.stage_cursor("observe")).write_text(
        json.dumps(
            {"segment": done, "dataset": merged, "reference": merged, "reference_batches": 99}
        )
    )
    for stage in ("clean", "transform"):
        (root / layout.stage_cursor(stage)).write_text(json.dumps({"segment": done}))
    base = "00000000bench000"
    version = root / layout.dataset(base)
    version.mkdir(parents=True)
    manifest = {
        "dataset_version": base,
        "base": None,
        "content": "0" * 64,
        "parts": {"train": [], "val": [], "test": []},
        "added": [],
        "batch_count": count,
        "rows": {"train": 1, "val": 1, "test": 1},
        "class_balance": {"train": {"0": 1}, "val": {"0": 1}, "test": {"0": 1}},
        "fractions": {"train": 0.7, "val": 0.15, "test": 0.15},
    }
    (version / "manifest.json").write_text(json.dumps(manifest))
    (root / layout.dataset_latest).write_text(
        json.dumps(
            {"dataset_version": base, "segment": history, "catalog": history, "previous": None}
        )
    )
    (root / "bench").mkdir()
    (root / "bench/new.json").write_text(json.dumps(ids[count:]))


def measure(root: Path, what: str, discovery: str) -> dict:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")},
        "MLOPS_STORAGE_ROOT": str(root),
        "DAGSTER_HOME": str(root.parent / "dagster_home"),
    }
    (root.parent / "dagster_home").mkdir(exist_ok=True)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            MEASURE,
            what,
            discovery,
            str(REPO / "mlops_assets/defs/digits/defs.yaml"),
        ],
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
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--new", type=int, default=100)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--split-sizes", default="10000,100000,1000000")
    parser.add_argument(
        "--plot",
        default=str(REPO / "docs/images/landing-scale.png"),
        help="where the log-log plot goes; empty: none",
    )
    parser.add_argument(
        "--s3-ingested", type=int, default=100_000, help="history on moto S3; 0 skips it"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/landing_scale.json")
    args = parser.parse_args()
    compile_bytecode()
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        for mode in args.modes.split(","):
            discovery, _, naming = mode.partition("/")
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp) / ".mlops"
                history(root, size, args.new, discovery, naming == "partitioned")
                tick = measure(root, "tick", discovery)
                acquire = measure(root, "acquire", discovery)
            results.append(
                {
                    "ingested": size,
                    "new": args.new,
                    "discovery": discovery,
                    "naming": naming or "flat",
                    "tick": tick,
                    "acquire": acquire,
                }
            )
            print(
                f"{size:>9,} ingested + {args.new} new, {mode:>19}: "
                f"tick {tick['seconds']:.3f} s ({tick['peak_mb']:.0f} MB), "
                f"acquire {acquire['seconds']:.3f} s ({acquire['peak_mb']:.0f} MB)",
                flush=True,
            )
    for result in results:
        base = next(
            r
            for r in results
            if (r["discovery"], r["naming"]) == (result["discovery"], result["naming"])
        )
        for what in ("tick", "acquire"):
            result[what]["ratio_to_smallest"] = result[what]["seconds"] / base[what]["seconds"]
    splits = []
    for size in [int(s) for s in args.split_sizes.split(",") if s]:
        measured = {}
        for what in ("split", "stages"):
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp) / ".mlops"
                split_history(root, size, args.new, what)
                measured[what] = measure(root, what, "listing")
        split = {**measured["split"], "ingested": size, "dataops_stages": measured["stages"]}
        splits.append(split)
        stages = measured["stages"]
        print(
            f"{size:>9,} batches in the dataset + {args.new} new: new dataset version "
            f"{split['seconds']:.3f} s ({split['peak_mb']:.0f} MB), "
            f"{split['ratio_to_writing']:.1f}x writing the new rows alone; observe, clean, "
            f"transform and split {stages['seconds']:.3f} s ({stages['peak_mb']:.0f} MB)",
            flush=True,
        )
    for split in splits:
        split["ratio_to_smallest"] = split["seconds"] / splits[0]["seconds"]
        stages = split["dataops_stages"]
        stages["ratio_to_smallest"] = stages["seconds"] / splits[0]["dataops_stages"]["seconds"]
    s3 = []
    if args.s3_ingested:
        from bench.landing_scale_s3 import measure as s3_requests

        s3 = s3_requests(args.s3_ingested, args.new)
        for row in s3:
            print(
                f"S3, {row['ingested']:,} ingested + {row['new']} new, {row['discovery']:>13}: "
                f"{row['total']} requests per tick ({row['list_requests']} LIST)",
                flush=True,
            )
    report = {
        "benchmark": "landing_scale",
        "storage": "local",
        "results": results,
        "new_dataset_version": splits,
        "s3_requests_per_tick": s3,
        "goals": "1M ingested, 100 new: tick <= 1 s, acquire <= 5 s beyond reading the new "
        "files, peak < 300 MB, each within 2x of its value at 10k; S3: notifications <= 5 "
        "requests per idle tick, lexical <= 3 LIST requests for 100 new files",
    }
    report = write_report(args.out, report)
    print(f"written to {args.out}")
    if args.plot:
        plot(report, Path(args.plot))
        print(f"plotted to {args.plot}")


def plot(report: dict, path: Path) -> None:
    """Cost against history on log-log axes: a flat line is a cost that does not grow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, what in zip(axes, ("tick", "acquire"), strict=True):
        modes = sorted({(r["discovery"], r.get("naming", "flat")) for r in report["results"]})
        for discovery, naming in modes:
            rows = [
                r
                for r in report["results"]
                if (r["discovery"], r.get("naming", "flat")) == (discovery, naming)
            ]
            label = discovery if naming == "flat" else f"{discovery}, {naming}"
            ax.plot(
                [r["ingested"] for r in rows],
                [r[what]["seconds"] for r in rows],
                marker="o",
                label=label,
            )
        if what == "acquire" and report.get("new_dataset_version"):
            rows = report["new_dataset_version"]
            ax.plot(
                [r["ingested"] for r in rows],
                [r["seconds"] for r in rows],
                marker="s",
                linestyle="--",
                label="new dataset version (batches)",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("files already ingested")
        ax.set_title(f"{what} with {report['results'][0]['new']} new files")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("seconds")
    figure.suptitle(f"landing zone cost vs history ({report['machine']['cpus']} cores, local disk)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
