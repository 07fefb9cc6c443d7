"""The bundled DAG files, wired for a test: settings, connections and a DAGs folder."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def logd_source_db(path: Path) -> str:
    """An empty SQLite source database with the LogD example's tables; its connection URI."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE compound_structures (molregno INTEGER, canonical_smiles TEXT)")
        db.execute("CREATE TABLE compound_properties (molregno INTEGER, acd_logd REAL)")
    return f"sqlite:///{path}"


def source_example(name: str = "logd-flat") -> dict:
    """A packaged example configuration whose database block names this test's source
    connection (``AIRFLOW_CONN_CPSIGN_SOURCE_DB``, a SQLite file): a configuration must name
    the administrator's connection, field by field."""
    import os

    from cpsign_airflow.cpsign.configuration import load_example

    config = load_example(name)
    uri = os.environ["AIRFLOW_CONN_CPSIGN_SOURCE_DB"]
    assert uri.startswith("sqlite:///"), uri
    database = {"dialect": "sqlite", "host": "-", "user": "-", "db_name": uri[len("sqlite:///") :]}
    if "database" in config:  # the flat (LogD) layout
        config["database"] = database
    else:
        config["preprocessing"]["database"] = database
    return config


def use_bundled_dags(
    monkeypatch: pytest.MonkeyPatch,
    folder: Path,
    *,
    bookkeeping_conn_id: str,
    source_db_uri: str,
    **settings: str,
) -> Path:
    """Copy ``dags/*.py`` into ``folder`` (emptied first) and set what dag.test() runs need.

    The wait polls every 0.2 s in poke mode, no deadline (``dag.test()`` cannot run
    one), no retry delay; ``settings`` adds or overrides ``[cpsign]`` options.
    """
    options = {
        "bookkeeping_conn_id": bookkeeping_conn_id,
        "poke_interval": "0.2",
        "sensor_mode": "poke",
        "training_deadline_minutes": "0",
        "retry_delay_seconds": "0",
        **settings,
    }
    monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_SOURCE_DB", source_db_uri)
    for key, value in options.items():
        monkeypatch.setenv(f"AIRFLOW__CPSIGN__{key.upper()}", value)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.py"):
        old.unlink()
    for path in (REPO / "dags").glob("*.py"):
        shutil.copy(path, folder / path.name)
    return folder
