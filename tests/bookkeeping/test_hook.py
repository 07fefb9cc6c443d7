"""BookkeepingHook: the bookkeeping store behind an Airflow connection of type mysql or sqlite."""

from __future__ import annotations

import logging

import pytest

from cpsign_airflow.bookkeeping.errors import BookkeepingConfigError
from cpsign_airflow.bookkeeping.hook import BookkeepingHook
from cpsign_airflow.bookkeeping.schema import head_revision

PASSWORD = "hook-Pa55word-never-shown"


def test_defaults_follow_airflow_hook_conventions():
    hook = BookkeepingHook()
    assert hook.bookkeeping_conn_id == "cpsign_bookkeeping"
    assert (BookkeepingHook.conn_name_attr, BookkeepingHook.default_conn_name) == (
        "bookkeeping_conn_id",
        "cpsign_bookkeeping",
    )
    # no connection type of its own: the store is an ordinary mysql or sqlite connection
    assert getattr(BookkeepingHook, "conn_type", None) in (None, "")


def test_one_engine_per_hook_and_a_ledger_on_it(bookkeeping_conn_id):
    hook = BookkeepingHook(bookkeeping_conn_id)
    engine = hook.get_conn()
    assert hook.get_conn() is engine
    with hook.get_ledger() as ledger:
        assert ledger.engine is engine
        assert ledger.target == hook.target
        assert f"connection {bookkeeping_conn_id!r}" in ledger.target
        ledger.upgrade_schema()
    # leaving the ledger closed the pool only: the hook's engine still works
    with hook.get_ledger() as ledger:
        assert ledger.schema_revision() == head_revision()
    hook.close()
    assert hook.get_conn() is not engine
    hook.close()


def test_test_connection_reports_the_schema_state(bookkeeping_conn_id):
    hook = BookkeepingHook(bookkeeping_conn_id)
    ok, message = hook.test_connection()
    assert ok, message
    assert message.startswith(f"Connected to connection {bookkeeping_conn_id!r}")
    assert "no schema yet" in message
    with hook.get_ledger() as ledger:
        ledger.upgrade_schema()
    ok, message = hook.test_connection()
    assert ok and f"newest revision {head_revision()}" in message


def test_test_connection_fails_clearly_without_the_password(monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_BK_DOWN", f"mysql://cpsign:{PASSWORD}@127.0.0.1:1/bk")
    caplog.set_level(logging.DEBUG)
    hook = BookkeepingHook("cpsign_bk_down")
    assert "127.0.0.1:1/bk" in hook.target and PASSWORD not in hook.target
    ok, message = hook.test_connection()
    assert not ok
    assert "connection 'cpsign_bk_down' (mysql 127.0.0.1:1/bk)" in message
    assert PASSWORD not in message
    assert PASSWORD not in caplog.text


def test_connection_errors_are_clear(monkeypatch):
    with pytest.raises(BookkeepingConfigError, match="AIRFLOW_CONN_CPSIGN_MISSING"):
        BookkeepingHook("cpsign_missing").get_ledger()
    monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_PG", f"postgres://u:{PASSWORD}@h/db")
    with pytest.raises(BookkeepingConfigError, match="type 'postgres'.*'mysql' or 'sqlite'"):
        BookkeepingHook("cpsign_pg").get_conn()
    ok, message = BookkeepingHook("cpsign_pg").test_connection()
    assert not ok and "'cpsign_pg'" in message and PASSWORD not in message


def test_sqlite_connection_path_from_the_host_field(tmp_path, monkeypatch):
    """In the UI a sqlite connection's file goes in Host; as a URI it lands in Schema."""
    path = tmp_path / "dir with space" / "bk.db"
    path.parent.mkdir()
    monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_BK_UI", f'{{"conn_type": "sqlite", "host": "{path}"}}')
    with BookkeepingHook("cpsign_bk_ui").get_ledger() as ledger:
        ledger.upgrade_schema()
        assert ledger.schema_revision() == head_revision()
        assert str(path) in ledger.target
    assert path.exists()


def test_sqlite_connection_without_a_file_is_refused(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_BK_NOFILE", '{"conn_type": "sqlite"}')
    with pytest.raises(BookkeepingConfigError, match="names no database file"):
        BookkeepingHook("cpsign_bk_nofile").get_conn()
