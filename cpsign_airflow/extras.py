"""The package's optional parts (pip extras) and the error naming the one a feature needs.

``pip install cpsign-airflow`` gives the Pachyderm provider and the CPSign workflow with
SQLite bookkeeping. These extras add the rest:

* ``mysql``: MySQL/MariaDB bookkeeping and MySQL source databases
  (apache-airflow-providers-mysql, mysqlclient; mysqlclient needs a C compiler and the
  MySQL client headers where pip finds no wheel);
* ``kubernetes``: pipeline secrets, prediction services and pachd discovery through a
  Service (apache-airflow-providers-cncf-kubernetes);
* ``postgres``: PostgreSQL source databases (psycopg2-binary);
* ``chart``: the models page's history plot (matplotlib); without it the page shows a note;
* ``local-pachd``: the local pachd of the test kit (``cpsign_airflow.testing.pachd``);
* ``all``: every one of them.

Code that uses an optional package imports it where it is used, through :func:`require`
or with an ``except ImportError`` that raises :class:`MissingExtra`; no module the
provider, the plugin or the DAGs load imports one at module level
(tests/architecture/test_layers.py checks).
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: extra -> what it gives, as error messages name it
EXTRAS: dict[str, str] = {
    "mysql": "MySQL/MariaDB bookkeeping and MySQL source databases",
    "kubernetes": "Kubernetes secrets, prediction services and pachd discovery",
    "postgres": "PostgreSQL source databases",
    "chart": "the models page's history plot",
    "local-pachd": "the local pachd",
}


class MissingExtra(ImportError):
    """An optional package is not installed; the message names the extra that installs it."""

    def __init__(self, extra: str, purpose: str, module: str) -> None:
        self.extra = extra
        super().__init__(
            f"{purpose} needs the optional package {module!r}, which is not installed: "
            f"pip install 'cpsign-airflow[{extra}]'",
            name=module,
        )


def require(module: str, extra: str, purpose: str | None = None) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtra` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module
        # Only a missing optional package is the extra's fault, not a broken one inside it.
        if not (module == missing or module.startswith(missing + ".")):
            raise
        raise MissingExtra(extra, purpose or EXTRAS[extra], missing) from exc
