"""Pre-flight: the source query runs through the source connection's own database hook."""

from __future__ import annotations

import json
import logging
import sqlite3
import traceback

import pytest

from cpsign_airflow.testing.mariadb import _connect, scratch_database
from cpsign_airflow.workflow.preflight import PreflightError, check_source_query, source_hook

PASSWORD = "src-Pa55word-never-shown"
QUERY = "SELECT molregno, canonical_smiles, standard_value FROM activities WHERE 1 = 1 {}"


def config(query: str = QUERY, smi_columns=("canonical_smiles",)) -> dict:
    return {
        "preprocessing": {
            "query": {"database_query": query, "smi_columns": list(smi_columns)},
        }
    }


@pytest.fixture
def source_db(tmp_path):
    path = tmp_path / "source dir" / "chembl.db"
    path.parent.mkdir()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE raw (molregno INT, canonical_smiles TEXT)")
        db.execute("INSERT INTO raw VALUES (1, 'CCO')")
        # reading a row of this view fails (integer overflow): only LIMIT 0 gets through
        db.execute(
            "CREATE VIEW activities AS SELECT molregno, canonical_smiles,"
            " abs(-9223372036854775808) AS standard_value FROM raw"
        )
    return path


@pytest.mark.parametrize("form", ["uri", "host"])
def test_sqlite_source_through_sqlite_hook(source_db, monkeypatch, form):
    """Both ways of naming the file: ``sqlite:////abs.db`` (Schema, as docker-compose and the
    demo write it) and the UI's Host field."""
    if form == "uri":
        monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_SOURCE_DB", f"sqlite:///{source_db}")
    else:
        value = json.dumps({"conn_type": "sqlite", "host": str(source_db)})
        monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_SOURCE_DB", value)
    hook, conn = source_hook("cpsign_source_db")
    assert type(hook).__name__ == "SqliteHook" and conn.conn_id == "cpsign_source_db"
    columns = check_source_query(config(), "cpsign_source_db")
    assert columns == ["molregno", "canonical_smiles", "standard_value"]
    # the query ran with LIMIT 0: a row read would have raised (see source_db)
    with sqlite3.connect(source_db) as db, pytest.raises(sqlite3.OperationalError):
        db.execute("SELECT * FROM activities").fetchall()


def test_a_broken_query_names_the_source_connection(source_db, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_SOURCE_DB", f"sqlite:///{source_db}")
    monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_BOOKKEEPING", "sqlite:////nowhere/bookkeeping.db")
    with pytest.raises(PreflightError) as info:
        check_source_query(config("SELECT smiles FROM no_such_table{}"), "cpsign_source_db")
    message = str(info.value)
    assert message.startswith(
        "preprocessing.query.database_query does not run on the source database connection "
        f"'cpsign_source_db' (sqlite file {source_db}): "
    )
    assert "no such table: no_such_table" in message
    assert "bookkeeping" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_smi_columns_must_be_among_the_querys_columns(source_db, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_SOURCE_DB", f"sqlite:///{source_db}")
    with pytest.raises(PreflightError, match=r"smi_columns: \['smiles'\] not among"):
        check_source_query(config(smi_columns=["smiles"]), "cpsign_source_db")


def test_a_connection_type_without_a_database_hook_is_refused(monkeypatch):
    """pachyderm has a hook, but not a DbApiHook; a type no provider knows has none at all."""
    monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_SOURCE_PACHD", f"pachyderm://:{PASSWORD}@pachd:30650")
    with pytest.raises(PreflightError) as info:
        check_source_query(config(), "cpsign_source_pachd")
    message = str(info.value)
    assert "connection 'cpsign_source_pachd'" in message
    assert "type 'pachyderm'" in message and "PachydermHook" in message
    assert "not a SQL database hook (DbApiHook)" in message
    assert PASSWORD not in message

    monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_SOURCE_ODD", f"oddsql://u:{PASSWORD}@db:1234/chembl")
    with pytest.raises(PreflightError) as info:
        check_source_query(config(), "cpsign_source_odd")
    message = str(info.value)
    assert "source database connection 'cpsign_source_odd' (oddsql db:1234/chembl)" in message
    assert "no database hook for connection type 'oddsql'" in message
    assert "install the Airflow provider" in message
    assert PASSWORD not in message


def test_a_missing_connection_is_named():
    with pytest.raises(PreflightError, match="AIRFLOW_CONN_CPSIGN_NO_SOURCE"):
        check_source_query(config(), "cpsign_no_source")


def test_an_unreachable_mysql_source_keeps_the_password_out(monkeypatch, caplog):
    monkeypatch.setenv(
        "AIRFLOW_CONN_CPSIGN_SOURCE_DOWN", f"mysql://chembl:{PASSWORD}@127.0.0.1:1/chembl_24"
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PreflightError) as info:
        check_source_query(config(), "cpsign_source_down")
    message = str(info.value)
    assert (
        "source database connection 'cpsign_source_down' (mysql 127.0.0.1:1/chembl_24)" in message
    )
    assert PASSWORD not in "".join(traceback.format_exception(info.value))
    assert PASSWORD not in caplog.text


def test_mysql_source_through_mysql_hook(mysql_server_url, monkeypatch):
    from sqlalchemy.engine import make_url

    with scratch_database(mysql_server_url, prefix="cpsign_src_") as url:
        u = make_url(url)
        db = _connect(url)
        try:
            cur = db.cursor()
            cur.execute(f"USE `{u.database}`")
            cur.execute(
                "CREATE TABLE activities "
                "(molregno INT, canonical_smiles VARCHAR(200), standard_value DOUBLE)"
            )
        finally:
            db.close()
        auth = u.username or "root"
        if u.password:
            from urllib.parse import quote

            auth += f":{quote(u.password, safe='')}"
        monkeypatch.setenv(
            "AIRFLOW_CONN_CPSIGN_SOURCE_MYSQL",
            f"mysql://{auth}@{u.host}:{u.port or 3306}/{u.database}",
        )
        hook, _conn = source_hook("cpsign_source_mysql")
        assert type(hook).__name__ == "MySqlHook"
        assert check_source_query(config(QUERY + ";"), "cpsign_source_mysql") == [
            "molregno",
            "canonical_smiles",
            "standard_value",
        ]
        with pytest.raises(PreflightError) as info:
            check_source_query(config("SELECT smiles FROM compounds{}"), "cpsign_source_mysql")
    message = str(info.value)
    assert (
        f"does not run on the source database connection 'cpsign_source_mysql' "
        f"(mysql {u.host}:{u.port or 3306}/{u.database}): "
    ) in message
    assert f"{u.database}.compounds" in message and "doesn't exist" in message


def test_a_sqlite_connection_without_a_file_is_refused(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_SOURCE_NOFILE", '{"conn_type": "sqlite"}')
    with pytest.raises(PreflightError, match="'cpsign_source_nofile'.*names no database file"):
        check_source_query(config(), "cpsign_source_nofile")


def test_a_driver_message_quoting_the_password_is_scrubbed(monkeypatch):
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    def leaky(self, sql, parameters=None):
        raise RuntimeError(f"cannot parse DSN mysql://chembl:{PASSWORD}@db/chembl_24\nmore")

    monkeypatch.setattr(MySqlHook, "get_records", leaky)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CPSIGN_SOURCE_LEAKY", f"mysql://chembl:{PASSWORD}@db/chembl_24"
    )
    with pytest.raises(PreflightError) as info:
        check_source_query(config(), "cpsign_source_leaky")
    assert str(info.value).endswith("cannot parse DSN mysql://chembl:***@db/chembl_24")
    assert PASSWORD not in "".join(traceback.format_exception(info.value))
