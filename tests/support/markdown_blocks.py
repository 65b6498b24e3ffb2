"""Markdown bash blocks run as a newcomer runs them: the README's and the guides' tests
share the parsing and the shell prelude that stands `uv run` for this test environment."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SKIP = re.compile(r"^# \(not run by tests/e2e/test_docs\.py: (?P<why>.+)\)$")
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>\S*)")
PRELUDE = f"""
set -euo pipefail
export PATH={Path(sys.executable).parent}:$PATH
uv() {{ [ "$1" = run ] || {{ echo "uv $1: not in the README test" >&2; return 2; }}; shift; "$@"; }}
python3() {{
  if [ "$1 $2 $3" = "-m pip install" ]; then return 0; fi    # what .ci/run installed
  if [ "$1 $2" = "-m uv" ]; then shift 2; uv "$@"; return; fi
  python "$@"
}}
helm() {{ python {Path(__file__).parent / "helm_cli.py"} "$@"; }}   # no helm binary: the Helm SDK
"""


@dataclass
class Block:
    line: int
    text: str
    skip: str | None


def bash_blocks(text: str) -> list[Block]:
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, start, body = len(fence["indent"]), i, []
        i += 1
        while not lines[i].strip().startswith("```"):
            body.append(lines[i][indent:])
            i += 1
        i += 1
        if fence["info"] == "bash":
            skips = [m["why"] for m in map(SKIP.match, body[:3]) if m]
            blocks.append(Block(start + 1, "\n".join(body), skips[0] if skips else None))
    return blocks


def run_bash(
    script: str, cwd: Path, env: dict[str, str], timeout: float = 420
) -> subprocess.CompletedProcess:
    """A documented command as a newcomer runs it (`uv run` standing for this environment);
    what it printed, or an assertion naming the script with the end of its output."""
    done = subprocess.run(
        ["bash", "-c", PRELUDE + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{script}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done
