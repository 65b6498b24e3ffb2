"""LSFB-ISOL: transform throughput and peak memory, and training throughput.

On a generated dataset in the exact LSFB-ISOL layout (20,000 clips by default),
acquired once through the real Downloader from a loopback HTTP server, each
measurement runs in its own process (so its peak RSS is its own):
  - load:      np.load of every pose file of every clip, nothing kept (the baseline),
  - clean:     the clean stage (read, check, fill missing landmarks, write shards),
  - transform: the transform stage (fixed-length tensors with masks, in shards),
  - train:     the Keras model on the train folds for --epochs epochs (samples/s).
Reports clips/s and peak RSS of each, and their ratios to `load`. Writes JSON.

    uv run python -m bench.lsfb_pipeline [--clips 20000] [--epochs 2]
    bench/lsfb_gpu.sh      # the same on a machine with an NVIDIA GPU (mixed precision)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from time import perf_counter

from bench.common import REPO, peak_rss_mib, write_report

LANDMARKS = ("pose", "left_hand", "right_hand")


def config(shard_size: int = 1024):
    from mlops_assets.datasets.lsfb.dataset import LsfbDataset

    return LsfbDataset(landmarks=list(LANDMARKS), poses="cleaned", shard_size=shard_size)


def prepare(work: Path, clips: int) -> None:
    """Generate the dataset straight into the download cache, then acquire it: the
    Downloader fetches the metadata from the loopback server and finds every pose file
    complete, so the run measures the stages, not a 20,000-file HTTP transfer."""
    from mlops_assets.datasets.lsfb.acquire import run_acquire
    from mlops_assets.datasets.lsfb.observe import run_observe
    from mlops_assets.datasets.lsfb.versions import cache_dir
    from mlops_assets.demo.lsfb_data import generate
    from mlops_assets.storage import Layout
    from mlops_assets.storage.local import LocalStorage

    os.environ["MLOPS_CACHE_DIR"] = str(work / "cache")
    download = cache_dir("lsfb") / "download"
    signs = 100
    per_sign = max(1, clips // (20 * signs))
    generate(
        download,
        signers=20,
        signs=signs,
        clips_per_sign=per_sign,
        landmarks=LANDMARKS,
        empty_clips=5,
        all_missing_clips=0,
        folders=("poses",),
    )
    handler = partial(SimpleHTTPRequestHandler, directory=str(download))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["MLOPS_LSFB_SOURCE"] = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        storage = LocalStorage(root=str(work / "root"))
        run_acquire(storage, Layout("lsfb"), config(), lambda *_: None)
        run_observe(storage, Layout("lsfb"), config())
    finally:
        server.shutdown()


def child(mode: str, work: Path, epochs: int) -> dict:
    """One measurement, in this process."""
    import numpy as np

    from mlops_assets.datasets.lsfb import clean, split, transform, versions
    from mlops_assets.storage import Layout
    from mlops_assets.storage.local import LocalStorage

    storage, layout, cfg = LocalStorage(root=str(work / "root")), Layout("lsfb"), config()
    snapshot = versions.current_snapshot(storage, layout)
    clips = storage.read_parquet(layout.raw(snapshot, "clips.parquet"))
    started = perf_counter()
    result: dict = {}
    if mode == "load":
        root = work / "root"
        for entry in clips.to_dict("records"):
            for landmark_set in LANDMARKS:
                np.load(root / entry[f"key_{landmark_set}"], allow_pickle=False)
        result["clips"] = len(clips)
    elif mode == "clean":
        result["clips"] = clean.run_clean(storage, layout, cfg).kept
    elif mode == "transform":
        result["clips"] = transform.run_transform(storage, layout, cfg)["rows"]
    elif mode == "train":
        from mlops_assets.models.keras_sequence import KerasSequenceClassifier

        manifest = split.run_split(storage, layout, cfg)
        train = cfg.load_split(storage, layout, manifest["dataset_version"], "train")
        empty = cfg.load_split(storage, layout, manifest["dataset_version"], "val")
        empty.rows, empty._shards = 0, []  # no early stopping: exactly `epochs` epochs
        adapter = KerasSequenceClassifier()
        params = {**adapter.default_params, "epochs": epochs, "batch_size": 128}
        started = perf_counter()
        adapter.fit(train, empty, params, seed=0)
        import tensorflow as tf

        result["samples"] = train.rows * epochs
        result["gpu"] = bool(tf.config.list_physical_devices("GPU"))
    result["seconds"] = perf_counter() - started
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/lsfb_pipeline.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.work, args.epochs)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        began = perf_counter()
        prepare(work, args.clips)
        print(f"prepared {args.clips} clips in {perf_counter() - began:.0f} s", flush=True)
        runs = {}
        for mode in ("load", "clean", "transform", "train"):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.lsfb_pipeline",
                    "--child",
                    mode,
                    "--work",
                    str(work),
                    "--epochs",
                    str(args.epochs),
                ],
                cwd=REPO,
                capture_output=True,
                text=True,
            )
            if done.returncode:
                raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
            runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
            print(mode, runs[mode], flush=True)

    def rate(mode: str) -> float:
        return runs[mode]["clips"] / runs[mode]["seconds"]

    report = {
        "benchmark": "lsfb_pipeline",
        "clips": args.clips,
        "runs": runs,
        "clips_per_second": {m: rate(m) for m in ("load", "clean", "transform")},
        "ratios_to_load": {
            "clean_throughput": rate("clean") / rate("load"),
            "transform_throughput": rate("transform") / rate("load"),
            "clean_peak_rss": runs["clean"]["peak_rss_mib"] / runs["load"]["peak_rss_mib"],
            "transform_peak_rss": runs["transform"]["peak_rss_mib"] / runs["load"]["peak_rss_mib"],
        },
        "train_samples_per_second": runs["train"]["samples"] / runs["train"]["seconds"],
        "train_on_gpu": runs["train"]["gpu"],
    }
    write_report(args.out, report)
    print(
        json.dumps(
            {
                k: report[k]
                for k in (
                    "clips_per_second",
                    "ratios_to_load",
                    "train_samples_per_second",
                    "train_on_gpu",
                )
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
