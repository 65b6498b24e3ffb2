"""The LSFB training input pipeline on its own: samples/s delivered as ready batches, no model.

On a generated dataset in the LSFB-ISOL layout (20,000 clips by default, prepared as in
lsfb_pipeline.py and taken through clean, transform and split), each in its own process
(its peak memory, VmHWM, its own), for batch 128 over two epochs of the training split:
  - tfdata:    the pipeline training used before (tf.data from a Python generator over the
               shards, unbatch, shuffle 4,096, batch, prefetch): the baseline;
  - memory:    core/batches.py with the split held in memory (the default up to 2 GB);
  - streamed:  core/batches.py reading shards ahead with a 4,096-example window.
Prints samples/s per epoch and the ratio to the baseline; writes JSON.

    uv run python -m bench.lsfb_loader [--clips 20000] [--batch 128]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from time import perf_counter

from bench.common import REPO, write_report

MODES = ("tfdata", "memory", "streamed")


def prepare(work: Path, clips: int) -> None:
    from bench.lsfb_pipeline import config
    from bench.lsfb_pipeline import prepare as acquire
    from mlops_assets.datasets.lsfb import clean, split, transform
    from mlops_assets.storage import Layout
    from mlops_assets.storage.local import LocalStorage

    acquire(work, clips)
    storage, layout = LocalStorage(root=str(work / "root")), Layout("lsfb")
    clean.run_clean(storage, layout, config())
    transform.run_transform(storage, layout, config())
    split.run_split(storage, layout, config())


def child(mode: str, work: Path, batch: int, epochs: int) -> dict:
    from bench.lsfb_pipeline import config
    from mlops_assets.core.batches import Batches
    from mlops_assets.storage import Layout
    from mlops_assets.storage.local import LocalStorage

    storage, layout = LocalStorage(root=str(work / "root")), Layout("lsfb")
    version = storage.read_json(layout.dataset_latest)["dataset_version"]
    split = config().load_split(storage, layout, version, "train")
    if mode == "tfdata":
        import tensorflow as tf

        spec = (
            tf.TensorSpec((None, *split.item_shape), tf.float32),
            tf.TensorSpec((None,), tf.int64),
        )
        data = (
            tf.data.Dataset.from_generator(split.chunks, output_signature=spec)
            .unbatch()
            .shuffle(4096, seed=0)
            .batch(batch)
            .prefetch(tf.data.AUTOTUNE)
        )

        def epoch(_: int):
            for x, y in data:
                yield x.numpy(), y.numpy()  # as a training step would receive them
    else:
        loader = Batches(split, batch_size=batch, in_memory_mb=2048 if mode == "memory" else 0)
        epoch = loader.epoch
    seconds = []
    for number in range(epochs):
        started = perf_counter()
        samples = sum(len(y) for _, y in epoch(number))
        seconds.append(perf_counter() - started)
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return {
        "samples": samples,
        "seconds": seconds,
        "samples_per_second": [samples / s for s in seconds],
        "peak_mb": peak / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/lsfb_loader.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.work, args.batch, args.epochs)))
        return
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        began = perf_counter()
        prepare(work, args.clips)
        print(f"prepared {args.clips} clips in {perf_counter() - began:.0f} s", flush=True)
        for mode in MODES:
            command = [
                sys.executable,
                "-m",
                "bench.lsfb_loader",
                "--child",
                mode,
                "--work",
                str(work),
            ]
            command += ["--batch", str(args.batch), "--epochs", str(args.epochs)]
            done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
            runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
            rates = ", ".join(f"{r:,.0f}" for r in runs[mode]["samples_per_second"])
            print(f"{mode:>9}: {rates} samples/s by epoch, {runs[mode]['peak_mb']:.0f} MB")
    base = runs["tfdata"]["samples_per_second"]
    for run in runs.values():
        run["ratio_to_tfdata"] = [
            a / b for a, b in zip(run["samples_per_second"], base, strict=True)
        ]
    report = {
        "benchmark": "lsfb_loader",
        "clips": args.clips,
        "batch": args.batch,
        "runs": runs,
        "goal": "at least 60,000 samples/s from a dataset version of 20k generated clips",
    }
    write_report(args.out, report)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
