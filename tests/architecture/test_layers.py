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
