"""pytest fixtures for the bookkeeping store on real MySQL/MariaDB and on SQLite.

Load with ``pytest_plugins = ["fixture_plugins.databases"]`` in the
root conftest. ``bookkeeping_url`` is parametrised: each test using it runs once
against MySQL (a fresh database per test) and once against a SQLite file. The
MySQL server is found or started once per session by
:func:`cpsign_airflow.testing.mariadb.mysql_server`; if none can be had the
tests error, they are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cpsign_airflow.testing.mariadb import mysql_server, scratch_database

BACKENDS = ("mysql", "sqlite")


@pytest.fixture(scope="session")
def mysql_server_url() -> Iterator[str]:
    """URL of a reachable MySQL/MariaDB server (env, local, or a throwaway mariadbd)."""
    with mysql_server() as server:
        yield server.url


@pytest.fixture(params=BACKENDS)
def bookkeeping_backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def bookkeeping_url(
    bookkeeping_backend: str, request: pytest.FixtureRequest, tmp_path_factory
) -> Iterator[str]:
    """SQLAlchemy URL of an empty database: a fresh MySQL database, or a new SQLite file."""
    if bookkeeping_backend == "mysql":
        server_url = request.getfixturevalue("mysql_server_url")
        with scratch_database(server_url) as url:
            yield url
    else:
        path = tmp_path_factory.mktemp("bookkeeping") / "bookkeeping.db"
        yield f"sqlite:///{path}"


@pytest.fixture
def bookkeeping_conn_id(bookkeeping_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """An Airflow connection (via AIRFLOW_CONN_*) to ``bookkeeping_url``; returns its id."""
    from sqlalchemy.engine import make_url

    u = make_url(bookkeeping_url)
    if u.get_backend_name() == "sqlite":
        uri = f"sqlite:///{u.database}"
    else:
        auth = u.username or "root"
        if u.password:
            from urllib.parse import quote

            auth += f":{quote(u.password, safe='')}"
        uri = f"mysql://{auth}@{u.host}:{u.port or 3306}/{u.database}"
    conn_id = "cpsign_bookkeeping_test"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", uri)
    return conn_id
