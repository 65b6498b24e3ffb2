"""The README and the docs site as a newcomer runs them: every bash block of the README,
then of each docs page in the order of the site's navigation (`mkdocs.yml`), in one fresh
copy of the project, so the pages start where the README's tour ends.

A block whose first lines say `# (not run by tests/e2e/test_docs.py: <why>)` is skipped; the
reason must be one this machine cannot provide (a cluster, a cloud account, a download, a
long-running server, the test command itself) or an edit of the repository's own files,
which another test makes in a copy. Every other block must exit 0. The install
prefix (`python3 -m pip install uv && python3 -m uv run`) and `uv run` stand for this test
environment, which `.ci/run` installed from the lock the same way; ports are the docs'
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
import yaml

from tests.support.gitops import git_log
from tests.support.markdown_blocks import PRELUDE, Block, bash_blocks
from tests.support.processes import REPO, clean_env, free_port, project_copy

README = REPO / "README.md"


RUN_ELSEWHERE = {
    # a guide that edits the clone (a use case into mlops_assets/defs/) runs whole in a copy
    "docs/guides/your-own-data.md": "tests/e2e/test_your_own_data.py",
}


def pages() -> list[Path]:
    """The README, then every page of the site's navigation that is written (not generated)
    and not run whole by its own test."""

    def walk(node) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [p for value in node.values() for p in walk(value)]
        return [p for item in node for p in walk(item)]

    nav = walk(yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"])
    written = [f"docs/{p}" for p in nav if (REPO / "docs" / p).exists()]
    return [README, *(REPO / p for p in written if p not in RUN_ELSEWHERE)]


def test_a_page_run_elsewhere_is_run_by_the_test_it_names():
    for page, test in RUN_ELSEWHERE.items():
        assert page in (REPO / test).read_text(), (page, test)


ALLOWED = (
    "Kubernetes",
    "S3 bucket",
    "Vault server",
    "LSFB team's server",
    "long-running server",
    "test command",
    "edits the clone",  # only with the test that runs it in a copy of the repository
)


def run_block(
    page: Path, block: Block, cwd: Path, env: dict[str, str], ports: dict[str, str]
) -> str:
    script = block.text
    for readme_port, port in ports.items():
        script = re.sub(rf"\b{readme_port}\b", port, script)
    where = f"{page.relative_to(REPO)}:{block.line}"
    log = cwd.parent / f"{where.replace('/', '-')}.log"
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
            process.wait(timeout=600)
        finally:  # whatever the block left running (a server) ends with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = log.read_text()
    assert process.returncode == 0, f"{where}:\n{block.text}\n---\n{output[-4000:]}"
    return output


@pytest.mark.slow
def test_every_unmarked_bash_block_runs_and_marked_ones_say_why(tmp_path):
    work = project_copy(tmp_path / "clone", "docs", "charts")  # `dg` needs the project
    blocks = [(page, block) for page in pages() for block in bash_blocks(page.read_text())]
    assert len(blocks) >= 20 and {p.name for p, _ in blocks} >= {"README.md", "gitops.md"}
    for page, block in blocks:
        if block.skip:
            where = (page.name, block.line, block.skip)
            assert any(word in block.skip for word in ALLOWED), where
            if "edits the clone" in block.skip:  # then it names the test that runs it
                named = re.search(r"tests/\S+\.py", block.skip)
                assert named and (REPO / named[0]).exists(), where
    env = clean_env()
    ports = {
        p: (p if _free(int(p)) else str(free_port())) for p in ("8080", "8081", "8000", "3000")
    }
    outputs = []
    for page, block in blocks:
        if not block.skip:
            outputs.append(run_block(page, block, work, env, ports))
    text = "\n".join(outputs)

    # the quick start ran the whole pipeline: a dataset, a champion, a deploy commit
    assert "seeding batches 1-3 of 5" in text
    assert "model: digits v1 is champion, test accuracy" in text
    subjects = git_log(work / ".mlops" / "gitops.git", "--format=%s", "main").splitlines()
    assert "Deploy digits v1 to dev" in subjects
    assert (work / ".dagster" / "history" / "runs.db").exists()
    # the served model classified landing rows sent as they landed
    predicted = re.search(r"predicted \[(.*)\]\nlabels +\[(.*)\]", text)
    assert predicted and predicted[1] == predicted[2], text[-3000:]
    # the tour's hands-off loop: the monitor's failure retrained, and the winner deployed
    assert "Deploy digits v2 to dev (was v1)" in subjects
    # a pin held a passing release back, and unpinning promoted and deployed it
    assert re.search(r"released v(\d+), not promoted \(champion v1 stays\)", text)
    unpinned = re.search(r"no longer pinned; promoted v(\d+) to champion \(was v1\)", text)
    assert unpinned and f"Deploy digits v{unpinned[1]} to dev (was v1)" in subjects
    # the LSFB sample ran end to end and was served
    assert re.search(r"\.npy -> \[\d+\]", text)
    assert any("lsfb v1 to dev" in s for s in subjects)
    assert not list(work.glob("mirror"))  # generated data stays under .mlops/


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize(
    "page", [README, *sorted((REPO / "docs").rglob("*.md"))], ids=lambda p: str(p.relative_to(REPO))
)
def test_tables_render(page):
    lines = page.read_text().splitlines()
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
        if row >= len(lines):
            continue  # the table ends the page
        after = lines[row + 1] if row + 1 < len(lines) else ""
        assert not (lines[row] == "" and after.startswith("|")), (
            f"{page.name} line {row + 1}: a blank line splits a table"
        )


def _cells(line: str) -> list[str]:
    return re.split(r"(?<!\\)\|", line.strip().strip("|"))


@pytest.mark.parametrize("marker", ["```bash\n# (not run by tests/e2e/test_docs.py: because)\n"])
def test_a_skip_needs_an_allowed_reason(marker):
    (block,) = bash_blocks(marker + "true\n```\n")
    assert block.skip == "because" and not any(word in block.skip for word in ALLOWED)
