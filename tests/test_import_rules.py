"""The package's walls, read from its syntax tree (docs/architecture.md, "Packages").

`mlops/` (the MLOps half), `monitoring/` and `core/` (what every kind shares) import no dataset
kind; a kind imports no other kind; only the kind registry, the CLI's demo commands and
the demo data name a kind's package; no comparison with a kind's name is left outside
`datasets/`.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import after_definitions_load

PACKAGE = Path(__file__).resolve().parent.parent / "mlops_assets"
KIND_PACKAGES = sorted(
    p.name for p in (PACKAGE / "datasets").iterdir() if p.is_dir() and (p / "__init__.py").exists()
)
# what a kind may import from the project (besides its own package)
KIND_MAY_IMPORT = (
    "mlops_assets.errors",
    "mlops_assets.mlops",
    "mlops_assets.datasets.model_input",
    "mlops_assets.models",
    "mlops_assets.core",
    "mlops_assets.registry",
    "mlops_assets.settings",
    "mlops_assets.storage",
)
# the composition root: the component types (and the CLI's demo commands, the demo data)
MAY_NAME_A_KIND = (
    "mlops_assets.datasets",
    "mlops_assets.components",
    "mlops_assets.cli",
    "mlops_assets.demo",
)
# what the bottom layer may import: itself and the leaves below it
BOTTOM_MAY_IMPORT = (
    "mlops_assets.core",
    "mlops_assets.errors",
    "mlops_assets.settings",
    "mlops_assets.storage",
    "mlops_assets.models",
)


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
        ) and within(name, "mlops_assets.datasets"):
            broken.append(f"{module} (the MLOps half) imports the kind module {name}")
        if within(module, "mlops_assets.mlops") and within(name, "mlops_assets.monitoring"):
            broken.append(
                f"{module} (the gate) imports the production wing's {name}; take it through "
                "core/production.py's interface"
            )
        if (
            within(module, "mlops_assets.core")
            and name != "mlops_assets"
            and not any(within(name, p) for p in BOTTOM_MAY_IMPORT)
        ):
            broken.append(f"{module} (the bottom layer) imports {name}, which sits above it")
        for kind in KIND_PACKAGES:
            own = f"mlops_assets.datasets.{kind}"
            if within(module, own):
                if within(name, own) or any(within(name, p) for p in KIND_MAY_IMPORT):
                    continue
                broken.append(f"{module} (the {kind} kind) imports {name}")
            elif within(name, own) and not any(within(module, p) for p in MAY_NAME_A_KIND):
                broken.append(f"{module} names the {kind} kind ({name}); use the registry")
    return broken


def kind_names() -> set[str]:
    from mlops_assets.datasets import kinds

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
        if "datasets" not in path.relative_to(PACKAGE).parts
        for line in kind_comparisons(path.read_text(), names)
    ]
    assert not found, f"kind comparisons outside mlops_assets/datasets/: {found}"


@pytest.mark.parametrize(
    "module, source",
    [
        ("mlops_assets.mlops.train", "from mlops_assets.datasets.lsfb.shards import lsfb_split"),
        ("mlops_assets.mlops.train", "import mlops_assets.datasets.tabular.rows"),
        ("mlops_assets.mlops.validate", "from ..datasets.tabular import dataset"),
        ("mlops_assets.mlops.train", "def f():\n    from mlops_assets.datasets import kind"),
        ("mlops_assets.core.report", "from mlops_assets.mlops.train import run_train"),
        ("mlops_assets.core.spec", "from mlops_assets.components.use_case import UseCase"),
        ("mlops_assets.core.kind", "def f():\n    from mlops_assets.monitoring import shadow"),
        ("mlops_assets.datasets.tabular.clean", "from mlops_assets.components.tabular import x"),
        ("mlops_assets.datasets.lsfb.clean", "from mlops_assets.datasets.tabular.rows import x"),
        ("mlops_assets.datasets.tabular.clean", "from mlops_assets.serving.app import app"),
        ("mlops_assets.serving.app", "from mlops_assets.datasets.lsfb.contract import x"),
        ("mlops_assets.mlops.validate", "def f():\n    from mlops_assets.monitoring import shadow"),
    ],
)
def test_the_rules_catch_a_forbidden_import(module, source):
    """The checker itself: each of these, put in the package, would fail the test above."""
    assert violations(module, imports(source, module))


def test_the_rules_allow_what_a_kind_needs():
    source = (
        "from mlops_assets.mlops.train import run_train\n"
        "from mlops_assets.core.steps import step_key\n"
        "from mlops_assets.datasets.tabular.rows import parse_batch\n"
    )
    assert not violations("mlops_assets.datasets.tabular.clean", imports(source, "x"))
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


# Libraries that cost a definitions load noticeable time or memory (each 0.1 s or more, or
# a native runtime): imported only where the work is, inside an asset, op, sensor or command
# body, or at the top of a module that only such bodies import. Later issues extend this list.
HEAVY = (
    "tensorflow",
    "keras",
    "sklearn",
    "scipy",
    "pandas",
    "pyarrow",
    "boto3",
    "botocore",
    "numpy",
    "matplotlib",
    "skops",
    "lightgbm",
    "xgboost",
    "kfp",
    "kubernetes",
    "dagster_k8s",
    "dagster_aws",
    "jax",
    "torch",
    "lsfb_dataset",
    "requests",
)
# Functions run from their own source text, whose imports must sit inside them.
RUN_FROM_SOURCE = {
    "mlops_assets.kubeflow.pipeline": "KFP lightweight components: a task runs the function alone",
}
# The command line answers --help and --version without loading Dagster either.
CLI_HEAVY = (*HEAVY, "dagster", "dagster_webserver", "uvicorn", "fastapi")


def _is_typing_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def placed_imports(source: str, module: str) -> list[tuple[int, str, bool]]:
    """(line, imported name, at the top) for each import of a source: at the top means run
    when the module is imported (module level, or in a top-level if/try), not in a function
    and not in an `if TYPE_CHECKING:` block."""
    found: list[tuple[int, str, bool]] = []

    def names(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:
            package = module.split(".")[: -node.level or None]
            base = ".".join([*package, base] if base else package)
        return [base, *(f"{base}.{alias.name}" for alias in node.names)]

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((child.lineno, name, top) for name in names(child))
                continue
            inner = top and not isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            )
            visit(child, inner and not _is_typing_block(child))

    visit(ast.parse(source), True)
    return found


def _resolve(name: str, sources: dict[str, str]) -> str | None:
    if name in sources:
        return name
    parent = name.rpartition(".")[0]
    return parent if parent in sources else None


def _packages_of(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def top_edges(sources: dict[str, str]) -> dict[str, set[str]]:
    """Project module -> the project modules its import runs (its top-level imports, the
    packages they sit in, and its own packages' `__init__`)."""
    edges: dict[str, set[str]] = {}
    for module, source in sources.items():
        found = set(_packages_of(module)) & set(sources)
        for _, name, at_top in placed_imports(source, module):
            resolved = _resolve(name, sources) if at_top else None
            if resolved:
                found.add(resolved)
                found.update(p for p in _packages_of(resolved) if p in sources)
        edges[module] = found - {module}
    return edges


def heavy_modules(sources: dict[str, str], libraries: tuple[str, ...] = HEAVY) -> dict[str, str]:
    """Project module -> the heavy library its import runs, for the modules that run one."""
    heavy = {}
    for module, source in sources.items():
        for _, name, at_top in placed_imports(source, module):
            if at_top and name.split(".")[0] in libraries:
                heavy.setdefault(module, name.split(".")[0])
    edges = top_edges(sources)
    changed = True
    while changed:
        changed = False
        for module in sorted(edges):
            reached = next((heavy[e] for e in sorted(edges[module]) if e in heavy), None)
            if module not in heavy and reached:
                heavy[module] = reached
                changed = True
    return heavy


def cli_closure(sources: dict[str, str]) -> set[str]:
    """The modules that `mlops-assets --help` imports."""
    edges = top_edges(sources)
    seen = {m for m in sources if within(m, "mlops_assets.cli")}
    todo = list(seen)
    while todo:
        for reached in edges[todo.pop()] - seen:
            seen.add(reached)
            todo.append(reached)
    return seen


def lazy_light_imports(sources: dict[str, str]) -> list[str]:
    """Import statements inside a function (or for typing only) that import nothing heavy:
    they belong at the top of their module."""
    heavy = {lib: heavy_modules(sources, lib) for lib in (HEAVY, CLI_HEAVY)}
    command_line = cli_closure(sources)
    statements: dict[tuple[str, int], list[bool]] = {}
    for module, source in sources.items():
        if module in RUN_FROM_SOURCE:
            continue
        libraries = CLI_HEAVY if module in command_line else HEAVY
        for line, name, at_top in placed_imports(source, module):
            if at_top:
                continue
            root = name.split(".")[0]
            resolved = _resolve(name, sources) if root == "mlops_assets" else None
            is_heavy = root in libraries or (resolved is not None and resolved in heavy[libraries])
            statements.setdefault((module, line), []).append(is_heavy)
    return [
        f"{module_path(module, sources)}:{line}"
        for (module, line), heavy_names in sorted(statements.items())
        if not any(heavy_names)
    ]


def module_path(module: str, sources: dict[str, str]) -> str:
    """The file of a module, as the repository names it."""
    path = module.replace(".", "/")
    return (
        f"{path}/__init__.py" if any(m.startswith(module + ".") for m in sources) else f"{path}.py"
    )


def test_lazy_imports_are_only_of_heavy_libraries():
    """Everything light is imported at the top of its module; a function imports only what
    `HEAVY` names, or a project module whose import runs one of them."""
    found = lazy_light_imports(package_sources())
    assert not found, f"{len(found)} lazy imports of light modules:\n" + "\n".join(found)


def test_the_lazy_import_rule_fails_on_a_light_lazy_import():
    sources = package_sources()
    sources["mlops_assets.storage.keys"] += "\ndef f():\n    import json\n    import pandas\n"
    found = lazy_light_imports(sources)
    lines = len(sources["mlops_assets.storage.keys"].splitlines())
    assert f"mlops_assets/storage/keys.py:{lines - 1}" in found  # import json
    assert f"mlops_assets/storage/keys.py:{lines}" not in found  # import pandas


def test_loading_definitions_or_the_command_line_runs_no_heavy_import():
    sources = package_sources()
    heavy = heavy_modules(sources)
    assert "mlops_assets.definitions" not in heavy, heavy.get("mlops_assets.definitions")
    for_cli = heavy_modules(sources, CLI_HEAVY)
    assert not cli_closure(sources) & set(for_cli), sorted(cli_closure(sources) & set(for_cli))


def test_the_command_line_starts_without_dagster_or_a_heavy_library():
    code = (
        "import sys, json\n"
        "import mlops_assets.cli\n"
        f"print(json.dumps([m for m in {CLI_HEAVY!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_loading_definitions_imports_no_heavy_library(local_env):
    code = (
        "import sys, json\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    assert json.loads(after_definitions_load(code).strip().splitlines()[-1]) == []
