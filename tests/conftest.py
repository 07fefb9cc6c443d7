"""Shared test set-up: an isolated AIRFLOW_HOME, the local pachd, MariaDB.

Set ``CPSIGN_TEST_PACHD_ADDRESS=grpc://host:port`` (pachd's address, ``grpcs://`` with TLS; and
optionally ``CPSIGN_TEST_PACHD_TOKEN``) to run the Pachyderm tests against a real pachd;
tests that need the local pachd's fault injection or pipeline behaviours are
then skipped with that reason.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Airflow reads its configuration at import: isolate it before anything imports it.
_HOME = Path(tempfile.mkdtemp(prefix="cpsign-airflow-test-"))
(_HOME / "dags").mkdir()
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_HOME / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] = "False"
os.environ.pop("AIRFLOW_CONN_PACHYDERM_DEFAULT", None)

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

# The test kit's fixtures live with the tests (tests/fixture_plugins), not in the package.
pytest_plugins = [
    "fixture_plugins.local_pachd",
    "fixture_plugins.databases",
    "fixture_plugins.kube_apiserver",
]


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """Airflow's own metadata DB (SQLite), created once for DAG-run tests."""
    from airflow.utils import db

    db.initdb()
    return airflow_home


class RemotePachd:
    """A real pachd given by address: only what every pachd offers."""

    def __init__(self, address: str, token: str | None) -> None:
        self.address = address
        self.token = token

    def __getattr__(self, name: str):
        pytest.skip(
            f"needs the local pachd's {name!r}; CPSIGN_TEST_PACHD_ADDRESS points at a real one"
        )


@pytest.fixture
def pachd(request):
    """The pachd under test: a real one when CPSIGN_TEST_PACHD_ADDRESS is set, else local."""
    address = os.environ.get("CPSIGN_TEST_PACHD_ADDRESS")
    if address:
        yield RemotePachd(address, os.environ.get("CPSIGN_TEST_PACHD_TOKEN"))
        return
    yield request.getfixturevalue("local_pachd")


@pytest.fixture
def pachyderm_conn(pachd, monkeypatch) -> str:
    """AIRFLOW_CONN_PACHYDERM_DEFAULT pointing at the pachd under test."""
    from cpsign_airflow.hooks.pachyderm import connection_uri

    token = getattr(pachd, "token", None) if isinstance(pachd, RemotePachd) else None
    monkeypatch.setenv("AIRFLOW_CONN_PACHYDERM_DEFAULT", connection_uri(pachd.address, token))
    return "pachyderm_default"


@pytest.fixture
def unique_name(request) -> str:
    """A repo/pipeline-safe name unique to this test (real pachd keeps state)."""
    import uuid

    stem = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:30].strip("-")
    return f"t-{stem}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def cpsign_caplog(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """``caplog`` for the package's loggers, also once Airflow's logging set-up (which runs
    at the first connection lookup of a process) has replaced the root logger's handlers."""
    package = logging.getLogger("cpsign_airflow")
    propagate, package.propagate = package.propagate, False  # each record captured once
    package.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        package.removeHandler(caplog.handler)
        package.propagate = propagate
