"""How tests get a MySQL server (never by skipping), and the bookkeeping command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpsign_airflow.bookkeeping.__main__ import main
from cpsign_airflow.testing import mariadb
from cpsign_airflow.testing.mariadb import MariaDBUnavailable, _connect, mysql_server


def test_throwaway_mariadbd_starts_serves_and_is_removed(monkeypatch):
    """What CI gets where no server runs: a private mariadbd in a temporary directory."""
    monkeypatch.setenv(mariadb.ENV_URL, "mysql://root@127.0.0.1:1/test")  # ignored when forced
    with mysql_server(force_throwaway=True) as server:
        assert server.source == "throwaway"
        assert ":3306/" not in server.url
        conn = _connect(server.url)
        cur = conn.cursor()
        cur.execute("SELECT @@datadir, @@port")
        datadir, port = cur.fetchone()
        conn.close()
        assert datadir.startswith(str(Path(datadir).anchor)) and "cpsign-mariadb-" in datadir
        assert f":{port}/" in server.url
        # The store works on it like on any server.
        with mariadb.scratch_database(server.url) as url:
            assert main(["upgrade", "--url", url]) == 0
    assert not Path(datadir).exists()
    assert not mariadb.reachable(server.url, timeout=1)


def test_configured_url_that_does_not_answer_is_an_error_not_a_skip(monkeypatch):
    monkeypatch.setenv(mariadb.ENV_URL, "mysql://root:hunter2@127.0.0.1:1/test")
    monkeypatch.delenv(mariadb.ENV_FORCE_THROWAWAY, raising=False)
    with pytest.raises(MariaDBUnavailable) as info:
        with mysql_server():
            pass
    assert "127.0.0.1:1" in str(info.value) and "hunter2" not in str(info.value)


def test_no_server_and_no_mariadbd_says_how_to_install(monkeypatch):
    monkeypatch.setattr(mariadb, "_which", lambda *names: None)
    with pytest.raises(MariaDBUnavailable, match="apt-get install -y mariadb-server"):
        with mysql_server(force_throwaway=True):
            pass


def test_cli_upgrade_current_and_runs(bookkeeping_url, capsys):
    assert main(["current", "--url", bookkeeping_url]) == 0
    assert "None (newest 0007)" in capsys.readouterr().out

    assert main(["upgrade", "--url", bookkeeping_url]) == 0
    assert "upgraded 0007 (was None)" in capsys.readouterr().out
    assert main(["upgrade", "--url", bookkeeping_url]) == 0  # every setup may run it
    assert "already at 0007" in capsys.readouterr().out

    from cpsign_airflow.bookkeeping.ledger import TrainingLedger

    with TrainingLedger.from_url(bookkeeping_url) as ledger:
        ledger.record_pending_run("LogD", {"workflow_name": "LogD"})
    assert main(["runs", "--url", bookkeeping_url, "--workflow", "LogD"]) == 0
    [line] = capsys.readouterr().out.strip().splitlines()
    row = json.loads(line)
    assert (row["workflow"], row["status"]) == ("LogD", "pending")


def test_cli_with_airflow_connection(bookkeeping_conn_id, capsys):
    assert main(["upgrade", "--conn-id", bookkeeping_conn_id]) == 0
    assert f"connection {bookkeeping_conn_id!r}" in capsys.readouterr().out


def test_cli_failure_is_one_clear_line(capsys):
    url = "mysql://cpsign:pw-not-printed@127.0.0.1:1/bk"
    assert main(["current", "--url", url, "--attempts", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Bookkeeping database mysql 127.0.0.1:1/bk unavailable")
    assert "pw-not-printed" not in err
