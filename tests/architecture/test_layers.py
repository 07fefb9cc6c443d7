"""The two layers: the Pachyderm layer never imports the CPSign application.

Pachyderm layer: hooks, operators, sensors, triggers, links, specs, lineage, the
pachd discovery and the local pachd. CPSign application: cpsign content, stages,
bookkeeping, workflow, notifications, kubernetes resources of the workflow (pipeline
secrets, prediction service) and the DAGs. Every import, at module level or inside
a function, is read from the source with ``ast``, so a lazy import counts too.
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
#: Dev tools that run the product on the test kit, knowingly: ``make demo``.
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
