"""What every bench shares: the repository, what a figure was measured on (machine and
commit), steady-state bytecode, and the JSON report each bench writes under bench/results/."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def machine() -> dict[str, object]:
    """What a figure was measured on, for the JSON reports."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
    except (OSError, StopIteration, ValueError):
        memory_kb = 0
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def commit() -> dict[str, object]:
    """The commit measured, and whether tracked files had changes on top of it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "sha": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def compile_bytecode() -> None:
    """Measure steady state: every process reads compiled bytecode, as it does in an image
    built with UV_COMPILE_BYTECODE=1, even where PYTHONDONTWRITEBYTECODE is set."""
    import compileall
    import sysconfig

    for path in (sysconfig.get_paths()["purelib"], str(REPO / "mlops_assets")):
        compileall.compile_dir(path, quiet=2, workers=0)


def write_report(out: Path, report: dict) -> dict:
    """`report` as JSON at `out`, with the date, machine and commit it was measured on
    (docs/performance.md is generated from these files: `python -m bench.report`); returns
    it as written."""
    stamped = {
        "bench": out.stem,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **report,
        "commit": commit(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(stamped, indent=2) + "\n")
    return stamped


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM; `ru_maxrss` would carry the parent's
    peak over `exec`)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
