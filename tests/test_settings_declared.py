"""Every environment variable is declared in settings.py and read only there (or, where a
library needs one set, on a line that says why), and the docs document each of them."""

from __future__ import annotations

import ast
import re

import pytest

from mlops_assets.settings import VARIABLES, env
from tests.support.processes import REPO

PACKAGE = REPO / "mlops_assets"


def _environment_reads(path) -> list[int]:
    """Lines of `os.environ`, `os.getenv(...)` and `<x>.environ.get(...)`."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "getenv")
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            lines.append(node.lineno)
        if isinstance(node, ast.Attribute) and node.attr == "get":
            value = node.value
            if isinstance(value, ast.Attribute) and value.attr == "environ":
                lines.append(node.lineno)
            if isinstance(value, ast.Name) and value.id == "environ":
                lines.append(node.lineno)
    return sorted(set(lines))


def test_the_environment_is_read_only_in_settings():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "settings.py" and path.parent == PACKAGE:
            continue
        text = path.read_text().splitlines()
        for line in _environment_reads(path):
            said = text[line - 1] + (text[line - 2] if line > 1 else "")
            if "# env:" not in said:  # a library needs it set: the comment says which
                offenders.append(f"{path.relative_to(REPO)}:{line}: {text[line - 1].strip()}")
    assert offenders == []


def test_the_check_finds_a_read_outside_settings(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os\nx = os.environ.get('A')\ny = os.getenv('B')\n")
    assert _environment_reads(probe) == [2, 3]


def test_an_undeclared_variable_cannot_be_read():
    with pytest.raises(KeyError, match="MLOPS_NOPE is not declared"):
        env("MLOPS_NOPE")
    assert env("MLOPS_ENV", {"MLOPS_ENV": " k8s "}) == "k8s"
    assert env("MLOPS_ENV", {"MLOPS_ENV": ""}) is None


def test_the_docs_document_every_declared_variable_and_no_other():
    """Every declared variable is explained on a written page (the configuration page, or
    the one its group links to, such as GitOps); no page (nor the README) names one the code
    does not declare. The generated page lists them all by itself."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    written = "\n".join(page.read_text() for page in pages)
    assert [name for name in VARIABLES if name not in written] == []
    constants = {  # names of the code's own constants, as the architecture page cites them
        m
        for f in (REPO / "mlops_assets").rglob("*.py")
        for m in re.findall(r"^(MLOPS_[A-Z0-9_]+) = ", f.read_text(), re.M)
    }
    for page in pages:
        mentioned = set(re.findall(r"\bMLOPS_[A-Z0-9_]*[A-Z0-9]\b", page.read_text()))
        assert mentioned - set(VARIABLES) - constants == set(), page
