"""The tests are shaped like the package (docs/architecture.md, "Tests and benches"): a
folder per package, fixtures only in conftest.py, shared servers and factories in
tests/support/ (which bench/ imports as a package, never through sys.path)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.processes import REPO

TESTS = REPO / "tests"
# folders beside the package mirrors: the whole loop (e2e), and the repository's own
# charts/ and bench/
WHOLE_LOOP, REPOSITORY_FOLDERS = "e2e", {"charts", "bench"}


def _folders() -> list[Path]:
    return sorted(
        p
        for p in TESTS.rglob("*")
        if p.is_dir()
        and "support" not in p.relative_to(TESTS).parts
        and not p.name.startswith((".", "__"))
    )


def test_every_test_folder_mirrors_a_package_folder():
    for folder in _folders():
        relative = folder.relative_to(TESTS)
        if relative.parts[0] == WHOLE_LOOP:
            continue
        if relative.parts[0] in REPOSITORY_FOLDERS:
            assert (REPO / relative).is_dir(), relative
            continue
        assert (REPO / "mlops_assets" / relative).is_dir(), f"tests/{relative} mirrors nothing"


def _is_fixture(node: ast.AST) -> bool:
    def name(decorator: ast.expr) -> str:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        return ast.unparse(target)

    return any(name(d) in ("pytest.fixture", "fixture") for d in node.decorator_list)


def conftest_defines_only_fixtures(source: str) -> list[str]:
    """What a conftest.py defines besides fixtures and pytest hooks."""
    others = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if not (_is_fixture(node) or node.name.startswith("pytest_")):
                others.append(node.name)
        elif isinstance(node, ast.ClassDef | ast.Assign | ast.AnnAssign):
            others.append(ast.unparse(node).splitlines()[0])
    return others


def test_conftest_files_hold_fixtures_only():
    conftests = sorted(TESTS.rglob("conftest.py"))
    assert len(conftests) >= 2
    for path in conftests:
        assert conftest_defines_only_fixtures(path.read_text()) == [], path


def test_the_conftest_rule_fails_on_a_helper():
    helper = (
        "import pytest\n\ndef free_port():\n    return 0\n\n"
        "@pytest.fixture\ndef f():\n    return 1\n"
    )
    assert conftest_defines_only_fixtures(helper) == ["free_port"]


def _imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_tests_share_code_through_tests_support_only():
    for path in sorted(TESTS.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        for module in _imports(path):
            top = module.split(".")[0]
            assert top != "conftest" and not top.startswith("test_"), (path, module)
            if module.startswith("tests."):
                assert module.startswith("tests.support"), (path, module)


def test_benches_and_support_leave_sys_path_alone():
    for path in sorted([*(REPO / "bench").glob("*.py"), *(TESTS / "support").glob("*.py")]):
        tree = ast.parse(path.read_text())
        touched = [
            ast.unparse(node)
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and ast.unparse(node) == "sys.path"
        ]
        assert touched == [], path
