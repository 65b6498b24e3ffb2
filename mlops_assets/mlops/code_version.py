"""Which code trained a model: the image's build setting, else the git commit."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

from mlops_assets import __version__
from mlops_assets.settings import env


@cache
def code_version() -> str:
    """`MLOPS_CODE_VERSION` (set when the image is built), the git sha, or the package version."""
    if built := env("MLOPS_CODE_VERSION"):
        return built
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "mlops_assets"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return f"{sha}{'-dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return f"mlops_assets {__version__}"
