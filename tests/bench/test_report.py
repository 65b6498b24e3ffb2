"""docs/performance.md's tables are the committed bench results (bench/report.py): each
block is what its JSON renders to, and each JSON says when, where and on which commit it
was measured."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.common import RESULTS
from bench.report import BLOCK, DOCS, RENDERERS, render, rewrite
from tests.support.processes import REPO


def test_the_docs_tables_are_what_the_committed_results_render_to():
    done = subprocess.run(
        [sys.executable, "-m", "bench.report", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_every_result_is_stamped_and_shown_and_every_table_has_its_result():
    shown = {m.group("name") for m in BLOCK.finditer(DOCS.read_text())}
    committed = {p.stem for p in RESULTS.glob("*.json")}
    assert committed and committed == shown
    for name in committed:
        report = json.loads((RESULTS / f"{name}.json").read_text())
        assert report["date"][:4].isdigit() and report["machine"]["cpus"] >= 1, name
        assert len(report["commit"]["sha"]) == 40, name
        assert name in RENDERERS or report.get("benchmark") in RENDERERS, name


def test_a_changed_result_changes_its_table_and_the_check_fails(tmp_path):
    name = sorted(p.stem for p in RESULTS.glob("*.json"))[0]
    report = json.loads((RESULTS / f"{name}.json").read_text())
    report["date"] = "1999-01-01T00:00:00+00:00"
    (tmp_path / f"{name}.json").write_text(json.dumps(report))
    text = DOCS.read_text()
    changed = rewrite(text, tmp_path)
    assert "1999-01-01" in changed and "1999-01-01" not in text
    assert "1999-01-01" in render(name, tmp_path)
