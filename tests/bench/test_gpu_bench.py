"""bench/lsfb_gpu.sh, as a GPU machine without network runs it, here on the CPU with a tiny
dataset: it must run end to end and report every figure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.processes import REPO, clean_env


@pytest.mark.slow
def test_the_gpu_bench_runs_end_to_end_on_a_machine_without_a_gpu(tmp_path):
    out = tmp_path / "lsfb_gpu.json"
    command = ["bash", "bench/lsfb_gpu.sh", "--clips", "200", "--epochs", "2", "--backend"]
    command += ["jax", "--batches", "32,64@0.002", "--held-out", "100", "--cpu-clips", "100"]
    command += ["--out", str(out)]
    done = subprocess.run(
        command,
        cwd=REPO,
        env={**clean_env(), "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report == json.loads(done.stdout)
    assert report["model"]["signs"] == 500 and report["clips"] == 200
    assert report["held_out"] == 100
    assert report["main"]["backend"] == report["cpu"]["backend"] == "jax"
    assert report["main"]["train"]["32"]["learning_rate"] == 0.001  # the model's own
    assert report["main"]["train"]["64@0.002"]["learning_rate"] == 0.002
    assert report["main"]["train"]["64@0.002"]["batch_size"] == 64
    for figures in report["main"]["train"].values():  # top-1 on 100 held-out clips
        assert 0 <= figures["top1_held_out"] <= 1
    assert report["cpu"]["train"]["128"]["top1_held_out"] is None  # the CPU run: speed only
    for run, batches in ((report["main"], ["32", "64@0.002"]), (report["cpu"], ["128"])):
        assert run["imports_dagster"] is False
        assert run["accelerators"] == []
        assert run["loader_epoch2_samples_per_second"] > 0
        assert sorted(run["train"]) == sorted(batches)
        for figures in run["train"].values():
            assert figures["samples_per_second"] > 0
            assert 0 <= figures["input_wait_share"] < 1
            assert figures["precision"] == "float32" and figures["replicas"] == 1


def test_the_gpu_bench_names_what_is_missing_when_it_has_no_wheels(tmp_path):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")])
    done = subprocess.run(
        ["bash", "bench/lsfb_gpu.sh"],
        cwd=REPO,
        env={**clean_env(), "PYTHON": str(tmp_path / "bare/bin/python")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "missing: numpy keras namex optree (give --wheels DIR" in done.stderr


def test_the_gpu_bench_names_a_malformed_batch_item():
    done = subprocess.run(
        [sys.executable, "-m", "bench.lsfb_gpu", "--batches", "128,big@0.1"],
        cwd=REPO,
        env={**clean_env(), "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--batches: 'big@0.1' is neither BATCH nor BATCH@LEARNING_RATE" in done.stderr
