"""The docs' repository layout (docs/reference/repository-layout.md) matches the tree: every
path it lists exists, and every package and top-level module of mlops_assets/ is listed."""

from __future__ import annotations

import re

from tests.support.processes import REPO


def listed_paths() -> list[str]:
    page = (REPO / "docs/reference/repository-layout.md").read_text()
    block = page.split("# Repository layout", 1)[1].split("```", 2)[1]
    paths, parent = [], ""
    for line in block.splitlines():
        match = re.match(r"^( *)(\S+)", line)
        if not match or len(match.group(1)) > 2 or not re.search(r"[/.]", match.group(2)):
            continue  # a continuation line of a description
        name = match.group(2)
        if not match.group(1):
            parent = name if name.endswith("/") else ""
            paths.append(name)
        else:
            paths.append(parent + name)
    return paths


def test_every_listed_path_exists():
    paths = listed_paths()
    assert "mlops_assets/datasets/tabular/" in paths
    missing = [p for p in paths if not (REPO / p).exists()]
    assert not missing, f"the layout page lists what the tree does not have: {missing}"


def test_every_package_and_module_is_listed():
    paths = set(listed_paths())
    package = REPO / "mlops_assets"
    present = {
        f"mlops_assets/{p.name}/" if p.is_dir() else f"mlops_assets/{p.name}"
        for p in package.iterdir()
        if not p.name.startswith(("_", ".")) and (p.is_dir() or p.suffix == ".py")
    }
    present -= {"mlops_assets/defs/"}  # listed use case by use case
    unlisted = sorted(present - paths)
    assert not unlisted, f"the layout page does not list: {unlisted}"
