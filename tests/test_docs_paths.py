"""docs/architecture.md's "Extending it" table names files and registries that exist."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.processes import REPO

DOC = REPO / "docs" / "architecture.md"
PLACEHOLDER = re.compile(r"<[a-z]+>")


def extending_table(text: str) -> str:
    section = text.split("## Extending it", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


def named_paths(table: str) -> list[str]:
    """Every backticked repository path of the table (`mlops_assets/...`, `docs/...`)."""
    return [
        p for p in re.findall(r"`([\w./<>-]+)`", table) if p.startswith(("mlops_assets/", "docs/"))
    ]


def missing(paths: list[str], root: Path) -> list[str]:
    """The paths that do not exist; one with a `<placeholder>` needs its folder to."""
    gone = []
    for path in paths:
        if PLACEHOLDER.search(path):
            folder = PLACEHOLDER.split(path, 1)[0].rstrip("/")
            if not (root / folder).is_dir():
                gone.append(path)
        elif not (root / path).exists():
            gone.append(path)
    return gone


def test_every_path_of_the_extending_table_exists():
    paths = named_paths(extending_table(DOC.read_text()))
    assert len(paths) >= 15  # the table, not an empty match
    assert missing(paths, REPO) == []


def test_every_registry_the_table_names_is_in_its_file():
    """`NAME` in `path`: the file defines or holds that name."""
    pairs = re.findall(r"`(\w+)` in `([\w./]+)`", extending_table(DOC.read_text()))
    assert len(pairs) >= 6
    absent = [f"{name} in {path}" for name, path in pairs if name not in (REPO / path).read_text()]
    assert absent == []


def test_the_check_finds_a_path_that_does_not_exist(tmp_path):
    (tmp_path / "mlops_assets" / "datasets").mkdir(parents=True)
    (tmp_path / "mlops_assets" / "settings.py").write_text("")
    table = (
        "| a kind | `mlops_assets/datasets/<kind>/config.py`, `mlops_assets/settings.py` |\n"
        "| gone | `mlops_assets/kinds/tabular/stages.py`, `mlops_assets/pipeline/<x>.py` |"
    )
    assert missing(named_paths(table), tmp_path) == [
        "mlops_assets/kinds/tabular/stages.py",
        "mlops_assets/pipeline/<x>.py",
    ]
