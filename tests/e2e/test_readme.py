"""The README as a newcomer runs it: every bash block, in order, in one fresh folder.

A block whose first lines say `# (not run by tests/e2e/test_readme.py: <why>)` is skipped; the
reason must be one this machine cannot provide (a cluster, a cloud account, a download, a
long-running server, the test command itself) or an edit of the repository's own files,
which another test makes in a copy. Every other block must exit 0. The install
prefix (`python3 -m pip install uv && python3 -m uv run`) and `uv run` stand for this test
environment, which `.ci/run` installed from the lock the same way; ports are the README's
unless busy here, then free ones. Tables must render: no blank line inside one, and every
row has the header's number of cells.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.gitops import git_log
from tests.support.markdown_blocks import PRELUDE, Block, bash_blocks
from tests.support.processes import REPO, clean_env, free_port

README = REPO / "README.md"
ALLOWED = (
    "Kubernetes",
    "S3 bucket",
    "LSFB team's server",
    "long-running server",
    "test command",
    "edits the clone",  # only with the test that runs it in a copy of the repository
)


def run_block(block: Block, cwd: Path, env: dict[str, str], ports: dict[str, str]) -> str:
    script = block.text
    for readme_port, port in ports.items():
        script = re.sub(rf"\b{readme_port}\b", port, script)
    log = cwd.parent / f"readme-line-{block.line}.log"
    with open(log, "w") as out:  # a file, not a pipe: a server left behind cannot hold it open
        process = subprocess.Popen(
            ["bash", "-c", PRELUDE + script],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            process.wait(timeout=420)
        finally:  # whatever the block left running (a server) ends with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = log.read_text()
    assert process.returncode == 0, (
        f"README line {block.line}:\n{block.text}\n---\n{output[-4000:]}"
    )
    return output


@pytest.mark.slow
def test_every_unmarked_bash_block_runs_and_marked_ones_say_why(tmp_path):
    blocks = bash_blocks(README.read_text())
    assert len(blocks) >= 10
    for block in blocks:
        if block.skip:
            assert any(word in block.skip for word in ALLOWED), (block.line, block.skip)
            if "edits the clone" in block.skip:  # then it names the test that runs it
                named = re.search(r"tests/\S+\.py", block.skip)
                assert named and (REPO / named[0]).exists(), (block.line, block.skip)
    env = clean_env()
    ports = {p: (p if _free(int(p)) else str(free_port())) for p in ("8080", "8081", "8000")}
    outputs = {}
    for block in (b for b in blocks if not b.skip):
        outputs[block.line] = run_block(block, tmp_path, env, ports)
    text = "\n".join(outputs.values())

    # the quick start ran the whole pipeline: a dataset, a champion, a deploy commit
    assert "seeding batches 1-3 of 5" in text
    assert "model: digits v1 is champion, test accuracy" in text
    subjects = git_log(tmp_path / ".mlops" / "gitops.git", "--format=%s", "main")
    assert "Deploy digits v1 to dev" in subjects
    assert (tmp_path / ".dagster" / "history" / "runs.db").exists()
    # the served model classified landing rows sent as they landed
    predicted = re.search(r"predicted \[(.*)\]\nlabels +\[(.*)\]", text)
    assert predicted and predicted[1] == predicted[2], text[-3000:]
    # the LSFB sample ran end to end and was served
    assert re.search(r"\.npy -> \[\d+\]", text)
    assert "lsfb v1 to dev" in git_log(tmp_path / ".mlops" / "gitops.git", "--format=%s", "main")
    assert not list(tmp_path.glob("mirror"))  # generated data stays under .mlops/


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_tables_render():
    lines = README.read_text().splitlines()
    in_code = False
    for number, line in enumerate(lines, 1):
        if line.strip().startswith("```"):
            in_code = not in_code
        if in_code or not line.startswith("|"):
            continue
        previous = lines[number - 2]
        if previous.startswith("|"):
            continue  # a row of the table above
        header = _cells(line)
        assert lines[number].startswith("|---") or lines[number].startswith("| ---"), number
        row = number + 1
        while row < len(lines) and lines[row].startswith("|"):
            assert len(_cells(lines[row])) == len(header), (row + 1, lines[row][:60])
            row += 1
        after = lines[row + 1] if row + 1 < len(lines) else ""
        assert not (lines[row] == "" and after.startswith("|")), (
            f"README line {row + 1}: a blank line splits a table"
        )


def _cells(line: str) -> list[str]:
    return re.split(r"(?<!\\)\|", line.strip().strip("|"))


@pytest.mark.parametrize("marker", ["```bash\n# (not run by tests/e2e/test_readme.py: because)\n"])
def test_a_skip_needs_an_allowed_reason(marker):
    (block,) = bash_blocks(marker + "true\n```\n")
    assert block.skip == "because" and not any(word in block.skip for word in ALLOWED)
