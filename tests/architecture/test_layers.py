"""Imports run one way: the layers of the package, and the test kit apart.

From the bottom: the **foundation** (version, exceptions, extras, provider metadata and
the ``[cpsign]`` options' defaults); the **Pachyderm layer** (hooks, operators,
sensors, triggers, links, lineage, specs, pachd discovery), which knows nothing of
CPSign; the **CPSign domain** (``cpsign/``: configuration, spec templates, form,
quality rules; the pipeline stages; the workflow's Kubernetes resources); the
**bookkeeping** store; the Airflow **workflow** (training task group, settings,
pre-flight) and the **notifications**; the **DAGs** and the **models page** on top;
the **dev tools** (``make demo``, the devkit) above all of them. A module imports
only modules of its own layer or below, no two modules import each other (directly
or around a cycle, as modules or as top-level parts such as ``workflow/`` and
``notifications.py``), the stages reach nothing of Airflow, and no product module
imports the test kit (``cpsign_airflow.testing``), except the demo.

Every import, at module level or inside a function, is read from the source with
``ast``, so a lazy import counts too (``TYPE_CHECKING`` blocks included).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "cpsign_airflow"

PACHYDERM_LAYER = (
    "hooks/pachyderm.py",
    "hooks/pachyderm_base.py",
    "hooks/pachyderm_pfs.py",
    "hooks/pachyderm_pps.py",
    "hooks/pachyderm_async.py",
    "hooks/pachyderm_outcome.py",
    "hooks/_sdk.py",
    "hooks/_wire.py",
    "hooks/_grpc_errors.py",
    "operators/pachyderm.py",
    "sensors",
    "triggers",
    "links",
    "specs",
    "lineage",
    # pachd discovery through a Service, and the plain Kubernetes client it uses
    "kubernetes/discovery.py",
    "kubernetes/client.py",
    "kubernetes/errors.py",
    "testing/pachd",
    "example_dags",
    "exceptions.py",
    # the one retry policy: the hook's and the trigger's (bookkeeping uses it too)
    "retries.py",
)
APPLICATION = (
    "cpsign_airflow.cpsign",
    "cpsign_airflow.stages",
    "cpsign_airflow.bookkeeping",
    "cpsign_airflow.workflow",
    "cpsign_airflow.notifications",
    "cpsign_airflow.models_page",
    "cpsign_airflow.demo",
    "cpsign_airflow.bookkeeping.hook",
    "cpsign_airflow.bookkeeping.operators",
    "cpsign_airflow.kubernetes.operators",
    "cpsign_airflow.kubernetes.secrets",
    "cpsign_airflow.kubernetes.prediction",
    "cpsign_airflow.kubernetes.manifests",
)


def _files() -> list[Path]:
    found = []
    for entry in PACHYDERM_LAYER:
        path = PACKAGE / entry
        if path.is_dir():
            found += sorted(path.rglob("*.py"))
        elif path.exists():
            found.append(path)
        elif (PACKAGE / f"{entry}.py").exists():
            found.append(PACKAGE / f"{entry}.py")
    return found


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


# ------------------------------------------------------------------------ the layers

#: Product modules by layer, bottom first. An entry names a module or a package (all
#: of its modules); a module belongs to the longest entry naming it. The package's
#: own ``__init__`` is the foundation; the test kit (``cpsign_airflow.testing``) is
#: not a layer of the product (see below).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "cpsign_airflow.__init__",
            "cpsign_airflow.exceptions",
            "cpsign_airflow.extras",
            "cpsign_airflow.get_provider_info",
            "cpsign_airflow.config",
            # the one retry policy of the hook, the trigger and bookkeeping
            "cpsign_airflow.retries",
        ),
    ),
    (
        "pachyderm",
        (
            "cpsign_airflow.hooks",
            "cpsign_airflow.operators",
            "cpsign_airflow.sensors",
            "cpsign_airflow.triggers",
            "cpsign_airflow.links",
            "cpsign_airflow.lineage",
            "cpsign_airflow.specs",
            "cpsign_airflow.kubernetes.__init__",
            "cpsign_airflow.kubernetes.discovery",
            "cpsign_airflow.kubernetes.client",
            "cpsign_airflow.kubernetes.errors",
            "cpsign_airflow.example_dags",
        ),
    ),
    (
        "cpsign domain",
        (
            "cpsign_airflow.cpsign",
            "cpsign_airflow.stages",
            # the workflow's Kubernetes resources: pipeline secrets, the prediction service
            "cpsign_airflow.kubernetes.manifests",
            "cpsign_airflow.kubernetes.secrets",
            "cpsign_airflow.kubernetes.prediction",
            "cpsign_airflow.kubernetes.operators",
        ),
    ),
    ("bookkeeping", ("cpsign_airflow.bookkeeping",)),
    ("workflow", ("cpsign_airflow.workflow", "cpsign_airflow.notifications")),
    ("dags", ("cpsign_airflow.dags", "cpsign_airflow.models_page", "cpsign_airflow.dag_files")),
    (
        "dev tools",
        (
            "cpsign_airflow.demo",
            "cpsign_airflow.demo_data",
            "cpsign_airflow.devkit",
            "cpsign_airflow._dag_test",
        ),
    ),
)
#: What the pipeline stages may reach (the stage image has no Airflow, no pachyderm-sdk):
#: the foundation, the CPSign domain's own package, the spec handling it renders with.
STAGE_REACH = (
    *LAYERS[0][1],
    "cpsign_airflow.cpsign",
    "cpsign_airflow.stages",
    "cpsign_airflow.specs",
)


def _module_name(path: Path) -> str:
    """``cpsign_airflow.workflow.settings``; a package's ``__init__`` keeps its name."""
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def _all_modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(root.rglob("*.py"))}


def _package_of(module: str) -> str:
    """The package a module's relative imports start from."""
    return (
        module.removesuffix(".__init__")
        if module.endswith(".__init__")
        else module.rpartition(".")[0]
    )


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported name is: the longest module or package it names."""
    while name:
        for candidate in (name, f"{name}.__init__"):
            if candidate in modules:
                return candidate
        name = name.rpartition(".")[0]
    return None


def _import_nodes(tree: ast.Module, when_imported: bool) -> list[ast.stmt]:
    """Every import statement, or (``when_imported``) those that run when the module is
    imported: not inside a function, nor under ``TYPE_CHECKING``."""
    if not when_imported:
        return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    found: list[ast.stmt] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
            elif isinstance(node, ast.If | ast.Try | ast.With | ast.ClassDef):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(node, field, []):
                        visit(child.body if isinstance(child, ast.ExceptHandler) else [child])

    visit(tree.body)
    return found


def _module_imports(
    module: str, modules: dict[str, Path], *, when_imported: bool = False
) -> set[str]:
    """The package's modules ``module`` imports, anywhere in it (or only those its import
    runs). ``from pkg import sub`` is an arrow to ``pkg.sub`` when that is a module; the
    parent packages Python initialises on the way are not arrows of their own."""
    found: set[str] = set()
    tree = ast.parse(modules[module].read_text(encoding="utf-8"))
    for node in _import_nodes(tree, when_imported):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(module)
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            targets = [
                f"{base}.{alias.name}"
                if _resolve(f"{base}.{alias.name}", modules) not in (None, _resolve(base, modules))
                else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == PACKAGE.name:
                resolved = _resolve(target, modules)
                if resolved and resolved != module:
                    found.add(resolved)
    return found


def _graph() -> dict[str, set[str]]:
    """The product's import graph (the test kit left out, as a node and as a target)."""
    modules = _all_modules()
    product = {m for m in modules if not _in(m, (TEST_KIT,))}
    return {m: _module_imports(m, modules) & product for m in sorted(product)}


def _in(module: str, entries: tuple[str, ...]) -> bool:
    """``module`` is one of ``entries`` or inside one (a ``.__init__`` entry: only itself)."""
    for entry in entries:
        if entry.endswith(".__init__"):
            if module == entry:
                return True
        elif module == entry or module.startswith(entry + "."):
            return True
    return False


def _layer(module: str) -> int | None:
    """The index in :data:`LAYERS` of the longest entry naming ``module``."""
    best: tuple[int, int] | None = None
    for index, (_, entries) in enumerate(LAYERS):
        for entry in entries:
            if _in(module, (entry,)) and (best is None or len(entry) > best[1]):
                best = (index, len(entry))
    return None if best is None else best[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _part(module: str) -> str:
    """The top-level part a module belongs to: ``workflow``, ``notifications``, ``cpsign``."""
    return module.split(".")[1] if module.count(".") else module


def test_every_product_module_has_a_layer():
    graph = _graph()
    assert len(graph) > 80, sorted(graph)
    assert [m for m in graph if _layer(m) is None] == []


def test_no_module_imports_a_higher_layer():
    graph = _graph()
    upward = [
        f"{module} ({LAYERS[_layer(module)][0]}) -> {target} ({LAYERS[_layer(target)][0]})"
        for module, targets in graph.items()
        for target in sorted(targets)
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_no_import_cycles_between_modules():
    assert _cycles(_graph()) == []


def test_no_import_cycles_between_top_level_parts():
    """``workflow/`` and ``notifications.py`` (say) never import each other, whichever
    modules of theirs the arrows join."""
    parts: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        parts.setdefault(_part(module), set()).update(
            _part(t) for t in targets if _part(t) != _part(module)
        )
    assert _cycles(parts) == []


def _reached(start: list[str], modules: dict[str, Path], *, when_imported: bool) -> set[str]:
    """``start`` and every module it imports, transitively, with the parent packages
    Python initialises on the way."""
    todo, reached = list(start), set()
    while todo:
        module = todo.pop()
        if module in reached:
            continue
        reached.add(module)
        parents = module.removesuffix(".__init__").split(".")[:-1]
        todo += [f"{'.'.join(parents[: i + 1])}.__init__" for i in range(len(parents))]
        todo += sorted(_module_imports(module, modules, when_imported=when_imported))
    return reached


def test_the_stages_reach_nothing_of_the_workflow_or_airflow():
    """Whatever a stage may import, and all that may import in turn, stays within
    :data:`STAGE_REACH` (no workflow, bookkeeping, notifications, Pachyderm client); and
    importing a stage imports no Airflow: the stage image runs without it."""
    modules = _all_modules()
    stages = [m for m in modules if m.startswith("cpsign_airflow.stages")]
    reached = _reached(stages, modules, when_imported=False)
    assert sorted(m for m in reached if not _in(m, STAGE_REACH)) == []
    on_import = _reached(stages, modules, when_imported=True)
    airflow = {
        module: name
        for module in sorted(on_import)
        for name in _module_level_imports(modules[module])
        if name.split(".")[0] in ("airflow", "pachyderm_sdk", "grpc", "kubernetes")
    }
    assert airflow == {}


def test_the_pachyderm_layer_imports_nothing_of_the_application():
    files = _files()
    assert len(files) > 20, files  # the layer is found where this test says it is
    offending = {
        str(path.relative_to(PACKAGE)): name
        for path in files
        for name in _imports(path)
        if any(name == app or name.startswith(app + ".") for app in APPLICATION)
    }
    assert offending == {}


# ------------------------------------------------------------------------ the test kit apart

#: The test kit: the local pachd, the fake Kubernetes API server, MariaDB and Airflow
#: deployment drivers. It ships (``python -m cpsign_airflow.testing.pachd``, the
#: ``local-pachd`` extra) but the product never needs it.
TEST_KIT = "cpsign_airflow.testing"
#: Dev tools that run the product on the test kit, knowingly: ``make demo`` runs the
#: bundled DAGs against the test kit's local pachd (LocalPachd), since a demo on a
#: laptop has no Pachyderm cluster; it is a dev tool (the top layer), so nothing of the
#: product imports it, and the kit stays out of every deployment's import graph.
USES_THE_KIT = ("demo.py",)
#: Imported by no product module at module level: each belongs to an extra
#: (cpsign_airflow/extras.py) and is imported where it is used.
OPTIONAL = (
    "pytest",
    "MySQLdb",
    "psycopg2",
    "matplotlib",
    "kubernetes",
    "airflow.providers.mysql",
    "airflow.providers.cncf.kubernetes",
)


def _product_files() -> list[Path]:
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if not path.relative_to(PACKAGE).as_posix().startswith("testing/")
        and path.relative_to(PACKAGE).as_posix() not in USES_THE_KIT
    ]


def _module_level_imports(path: Path) -> list[str]:
    """Imports run when the module is imported: not inside a function or ``TYPE_CHECKING``."""
    names: list[str] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                names.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.append(node.module)
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
            elif isinstance(node, ast.If | ast.Try | ast.With | ast.ClassDef):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for child in getattr(node, field, []):
                        visit(child.body if isinstance(child, ast.ExceptHandler) else [child])

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return names


def test_no_product_module_imports_the_test_kit():
    files = _product_files()
    assert len(files) > 60, files
    offending = {
        str(path.relative_to(PACKAGE)): name
        for path in files
        for name in _imports(path)
        if name == TEST_KIT or name.startswith(TEST_KIT + ".")
    }
    assert offending == {}


def test_no_pytest_in_the_package():
    """The pytest plugins live in tests/fixture_plugins: the wheel's runtime never needs pytest."""
    offending = {
        str(path.relative_to(PACKAGE)): name
        for path in sorted(PACKAGE.rglob("*.py"))
        for name in _imports(path)
        if name == "pytest" or name.startswith(("pytest.", "_pytest"))
    }
    assert offending == {}


def test_optional_packages_are_imported_only_where_used():
    offending = {
        str(path.relative_to(PACKAGE)): name
        for path in _product_files()
        for name in _module_level_imports(path)
        if any(name == opt or name.startswith(opt + ".") for opt in OPTIONAL)
    }
    assert offending == {}
