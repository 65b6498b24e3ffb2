"""The docs site builds with `mkdocs build --strict`: every internal link and anchor of every
page resolves (mkdocs.yml's validation), the generated reference pages are there, and the
README's own links (which the site does not build) reach files and anchors that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlops_assets.settings import VARIABLES
from tests.support.processes import REPO, clean_env

MKDOCS = Path(sys.executable).parent / "mkdocs"


class Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids |= {value for name, value in attrs if name == "id" and value}


def ids_of(html: Path) -> set[str]:
    parser = Ids()
    parser.feed(html.read_text())
    return parser.ids


def build(root: Path, out: Path) -> subprocess.CompletedProcess:
    # the two variables quiet the banners mkdocs-material and mkdocs print on every build
    env = {**clean_env(), "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(out)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = build(REPO, out)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return out


def test_the_site_builds_strict_with_the_generated_reference(site):
    variables = (site / "reference/environment-variables/index.html").read_text()
    assert all(name in variables for name in VARIABLES)
    yaml_page = (site / "reference/use-case-yaml/index.html").read_text()
    for key in ("gate.metric", "training.estimator", "dataset.columns", "monitor.window_hours"):
        assert f"<code>{key}</code>" in yaml_page, key
    commands = ids_of(site / "reference/commands/index.html")
    assert {"mlops-assets-registry-unpin", "mlops-assets-check", "mlops-assets-serve"} <= commands


def test_a_broken_anchor_fails_the_build(tmp_path):
    """The strictness the first test relies on: the same site and config, one page linking
    to an anchor no page has, fails naming it."""
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path)
    with open(tmp_path / "docs/index.md", "a") as page:
        page.write("\n[the gate](concepts/gate.md#no-such-heading)\n")
    built = build(tmp_path, tmp_path / "site")
    assert built.returncode != 0
    assert "no-such-heading" in built.stdout + built.stderr


def test_the_readme_links_reach_pages_and_anchors_that_exist(site):
    readme = (REPO / "README.md").read_text()
    links = re.findall(r"\]\((?!https?://)([^)#\s]+)(?:#([^)\s]+))?\)", readme)
    assert len(links) >= 20
    for target, anchor in links:
        assert (REPO / target).exists(), target
        if anchor:
            page = site / target.removeprefix("docs/").removesuffix(".md") / "index.html"
            assert anchor in ids_of(page), (target, anchor)


def test_the_readme_is_short():
    assert len((REPO / "README.md").read_bytes()) < 12_000
