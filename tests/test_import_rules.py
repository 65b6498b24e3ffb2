"""The package's walls, read from its syntax tree (docs/architecture.md, "Packages").

`mlops/` (the MLOps half), `monitoring/` and `pipeline/` (what every kind shares) import no dataset
kind; a kind imports no other kind; only the kind registry, the CLI's demo commands and
the demo data name a kind's package; no comparison with a kind's name is left outside
`kinds/`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mlops_assets"
KIND_PACKAGES = sorted(
    p.name for p in (PACKAGE / "kinds").iterdir() if p.is_dir() and (p / "__init__.py").exists()
)
# what a kind may import from the project (besides its own package)
KIND_MAY_IMPORT = (
    "mlops_assets.components",
    "mlops_assets.errors",
    "mlops_assets.mlops",
    "mlops_assets.model_input",
    "mlops_assets.models",
    "mlops_assets.pipeline",
    "mlops_assets.registry",
    "mlops_assets.settings",
    "mlops_assets.storage",
)
MAY_NAME_A_KIND = ("mlops_assets.kinds", "mlops_assets.cli", "mlops_assets.demo")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str, module: str) -> set[str]:
    """Every project module a source imports, at the top, in a function or for typing."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                package = module.split(".")[: -node.level or None]
                base = ".".join([*package, base] if base else package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("mlops_assets")}


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(module: str, imported: set[str]) -> list[str]:
    """The import rules broken by `module` importing `imported`."""
    broken = []
    for name in sorted(imported):
        if (
            within(module, "mlops_assets.mlops") or within(module, "mlops_assets.monitoring")
        ) and within(name, "mlops_assets.kinds"):
            broken.append(f"{module} (the MLOps half) imports the kind module {name}")
        if within(module, "mlops_assets.mlops") and within(name, "mlops_assets.monitoring"):
            broken.append(
                f"{module} (the gate) imports the production wing's {name}; take it through "
                "pipeline/production.py's interface"
            )
        if within(module, "mlops_assets.pipeline") and (
            within(name, "mlops_assets.kinds") or within(name, "mlops_assets.mlops")
        ):
            broken.append(f"{module} (below every kind) imports {name}")
        for kind in KIND_PACKAGES:
            own = f"mlops_assets.kinds.{kind}"
            if within(module, own):
                if within(name, own) or any(within(name, p) for p in KIND_MAY_IMPORT):
                    continue
                broken.append(f"{module} (the {kind} kind) imports {name}")
            elif within(name, own) and not any(within(module, p) for p in MAY_NAME_A_KIND):
                broken.append(f"{module} names the {kind} kind ({name}); use the registry")
    return broken


def kind_names() -> set[str]:
    from mlops_assets.kinds import kinds

    return {n for cls in kinds().values() for n in (cls.kind, cls.contract_kind)}


def kind_comparisons(source: str, names: set[str]) -> list[int]:
    """Lines that compare something with a kind's name (`x.kind == "lsfb_isol"`)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value in names for o in operands):
                lines.append(node.lineno)
    return lines


def package_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_package_keeps_its_import_rules():
    broken = []
    for path in package_modules():
        module = module_name(path)
        broken += violations(module, imports(path.read_text(), module))
    assert not broken, "\n".join(broken)


def test_no_branch_on_a_kind_outside_the_kinds():
    names = kind_names()
    assert {"tabular", "lsfb_isol", "lsfb_pose"} <= names
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in package_modules()
        if "kinds" not in path.relative_to(PACKAGE).parts
        for line in kind_comparisons(path.read_text(), names)
    ]
    assert not found, f"kind comparisons outside mlops_assets/kinds/: {found}"


@pytest.mark.parametrize(
    "module, source",
    [
        ("mlops_assets.mlops.train", "from mlops_assets.kinds.lsfb.shards import lsfb_split"),
        ("mlops_assets.mlops.train", "import mlops_assets.kinds.tabular.rows"),
        ("mlops_assets.mlops.validate", "from ..kinds.tabular import dataset"),
        ("mlops_assets.mlops.train", "def f():\n    from mlops_assets.kinds import kind"),
        ("mlops_assets.pipeline.report", "from mlops_assets.mlops.train import run_train"),
        ("mlops_assets.kinds.lsfb.stages", "from mlops_assets.kinds.tabular.rows import x"),
        ("mlops_assets.kinds.tabular.clean", "from mlops_assets.serving.app import app"),
        ("mlops_assets.serving.app", "from mlops_assets.kinds.lsfb.contract import x"),
        ("mlops_assets.mlops.validate", "def f():\n    from mlops_assets.monitoring import shadow"),
    ],
)
def test_the_rules_catch_a_forbidden_import(module, source):
    """The checker itself: each of these, put in the package, would fail the test above."""
    assert violations(module, imports(source, module))


def test_the_rules_allow_what_a_kind_needs():
    source = (
        "from mlops_assets.mlops.train import run_train\n"
        "from mlops_assets.pipeline.steps import step_key\n"
        "from mlops_assets.kinds.tabular.rows import parse_batch\n"
    )
    assert not violations("mlops_assets.kinds.tabular.clean", imports(source, "x"))
    assert kind_comparisons('if dataset.kind == "lsfb_isol":\n    pass\n', kind_names())


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """module -> the project modules it imports (at the top, in a function or for typing),
    each `from a import b` resolved to the module a.b when there is one, else to a."""
    graph: dict[str, set[str]] = {}
    for module, source in sources.items():
        found = set()
        for name in imports(source, module):
            if name in sources:
                found.add(name)
            elif name.rpartition(".")[0] in sources:
                found.add(name.rpartition(".")[0])
        found.discard(module)
        graph[module] = found
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def package_sources() -> dict[str, str]:
    return {module_name(path): path.read_text() for path in package_modules()}


def test_no_import_circle_counting_function_and_typing_imports():
    """The component on top, builders below it taking a spec, each kind's stages on its
    configuration leaf: no circle, whatever imports are counted."""
    assert circles(import_graph(package_sources())) == []


def test_the_circle_check_fails_on_an_added_circle():
    sources = package_sources()
    assert not any("mlops_assets.storage.keys" in c for c in circles(import_graph(sources)))
    lazy = "\ndef f():\n    from mlops_assets.storage import local\n"
    sources["mlops_assets.storage.keys"] += lazy
    added = [c for c in circles(import_graph(sources)) if "mlops_assets.storage.keys" in c]
    assert added and "mlops_assets.storage.local" in added[0]
    # a typing-only import counts as well
    sources = package_sources()
    sources["mlops_assets.settings"] += (
        "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from mlops_assets.gitops.git import Git\n"
    )
    assert any("mlops_assets.settings" in c for c in circles(import_graph(sources)))
