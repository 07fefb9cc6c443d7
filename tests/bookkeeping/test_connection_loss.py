"""A connection lost mid-transaction: no partial row, a retry that succeeds, or a clear error.

On MySQL the connection is killed from a second session (``KILL CONNECTION``),
as a server restart or a proxy timeout would; on SQLite the driver connection
is closed under the transaction.
"""

from __future__ import annotations

import logging
import time
import traceback

import pytest
import sqlalchemy as sa

from cpsign_airflow.bookkeeping.engine import RetryPolicy
from cpsign_airflow.bookkeeping.errors import BookkeepingUnavailable
from cpsign_airflow.bookkeeping.hook import BookkeepingHook
from cpsign_airflow.bookkeeping.ledger import TrainingLedger
from cpsign_airflow.bookkeeping.records import TaskKey
from cpsign_airflow.testing.mariadb import _connect

TASK = TaskKey("cpsign_train_LogD", "manual__1", "record_pending_run")
PASSWORD = "s3cr3t-Pa55word-never-shown"


def _drop_connection(bookkeeping_url: str, dbapi_conn) -> None:
    """Kill the connection under a running transaction, and wait until it is gone."""
    if sa.make_url(bookkeeping_url).get_backend_name() == "sqlite":
        dbapi_conn.close()
        return
    thread_id = dbapi_conn.thread_id()
    admin = _connect(bookkeeping_url)
    try:
        cur = admin.cursor()
        cur.execute("KILL CONNECTION %s", (thread_id,))
        deadline = time.monotonic() + 30
        while True:  # KILL is asynchronous: await the server's removal of that session
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s", (thread_id,)
            )
            if cur.fetchone()[0] == 0:
                break
            assert time.monotonic() < deadline, "killed connection still listed"
            time.sleep(0.02)
    finally:
        admin.close()


def _kill_before(ledger: TrainingLedger, url: str, prefix: str, times: int) -> dict:
    """Drop the connection just before the first ``times`` statements starting with ``prefix``."""
    state = {"killed": 0}

    @sa.event.listens_for(ledger.engine, "before_cursor_execute")
    def _kill(conn, cursor, statement, params, context, executemany):
        if statement.startswith(prefix) and state["killed"] < times:
            state["killed"] += 1
            _drop_connection(url, conn.connection.dbapi_connection)

    return state


def _rows(ledger: TrainingLedger, table: str) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()


@pytest.fixture
def ledger(bookkeeping_url):
    led = TrainingLedger.from_url(bookkeeping_url, retry=RetryPolicy(attempts=3, backoff=0.01))
    led.upgrade_schema()
    led.list_runs()  # schema checked: the next statements are the write's own
    yield led
    led.dispose()


def test_dropped_mid_transaction_is_retried_without_partial_rows(ledger, bookkeeping_url, caplog):
    # The workflow row is inserted, then the connection dies before the run row.
    state = _kill_before(ledger, bookkeeping_url, "INSERT INTO cpsign_training_runs", times=1)
    caplog.set_level(logging.WARNING, logger="cpsign_airflow.bookkeeping.engine")

    run_id = ledger.record_pending_run("LogD", {"a": 1}, task=TASK)

    assert state["killed"] == 1
    assert "retrying" in caplog.text
    assert _rows(ledger, "cpsign_workflows") == 1
    assert _rows(ledger, "cpsign_training_runs") == 1
    assert ledger.get_run(run_id).status == "pending"
    assert ledger.record_pending_run("LogD", {"a": 1}, task=TASK) == run_id


def test_dropped_for_good_raises_a_clear_error_and_leaves_nothing(ledger, bookkeeping_url):
    state = _kill_before(ledger, bookkeeping_url, "INSERT INTO cpsign_training_runs", times=99)

    with pytest.raises(BookkeepingUnavailable) as info:
        ledger.record_pending_run("LogD", {"a": 1}, task=TASK)

    assert state["killed"] == 3  # every attempt of the retry policy
    message = str(info.value)
    assert "unavailable while recording a pending run of LogD" in message
    assert "3 attempts" in message
    assert _rows(ledger, "cpsign_workflows") == 0  # rolled back with the lost transaction
    assert _rows(ledger, "cpsign_training_runs") == 0


def test_dropped_during_a_batch_of_jobs_records_all_or_none(ledger, bookkeeping_url):
    run_id = ledger.record_pending_run("LogD", {"a": 1})
    jobs = [{"pipeline": f"LogD-{s}", "job_id": "j", "state": "JOB_SUCCESS"} for s in "abc"]
    state = {"seen": 0, "killed": 0}

    @sa.event.listens_for(ledger.engine, "before_cursor_execute")
    def _kill_third_insert(conn, cursor, statement, params, context, executemany):
        if statement.startswith("INSERT INTO cpsign_pipeline_jobs"):
            state["seen"] += 1
            if state["seen"] == 3 and not state["killed"]:
                state["killed"] = 1
                _drop_connection(bookkeeping_url, conn.connection.dbapi_connection)

    records = ledger.record_jobs(run_id, jobs)

    assert state["killed"] == 1
    assert [j.pipeline for j in records] == ["LogD-a", "LogD-b", "LogD-c"]
    assert _rows(ledger, "cpsign_pipeline_jobs") == 3  # two lost inserts were redone, not doubled


def test_status_update_lost_before_commit_is_redone_once(ledger, bookkeeping_url):
    """The UPDATE ran, the connection died before COMMIT: the re-run applies it, once."""
    run_id = ledger.record_pending_run("LogD", {"a": 1})
    ledger.mark_committed(run_id, "a" * 32)
    killed = {"n": 0}

    @sa.event.listens_for(ledger.engine, "before_cursor_execute")
    def _kill_on_reread(conn, cursor, statement, params, context, executemany):
        # finish_run: UPDATE (applied), then SELECT of the run; die on that SELECT once.
        if (
            statement.startswith("SELECT")
            and "cpsign_training_runs" in statement
            and not killed["n"]
        ):
            killed["n"] = 1
            _drop_connection(bookkeeping_url, conn.connection.dbapi_connection)

    run = ledger.finish_run(run_id, "failed", "first error")
    assert killed["n"] == 1
    assert (run.status, run.error) == ("failed", "first error")
    assert ledger.get_run(run_id).finished_at == run.finished_at


def test_unreachable_server_fails_clearly_without_the_password(caplog):
    url = f"mysql://cpsign:{PASSWORD}@127.0.0.1:1/bookkeeping"
    ledger = TrainingLedger.from_url(url, retry=RetryPolicy(attempts=2, backoff=0.01))
    caplog.set_level(logging.DEBUG)

    with pytest.raises(BookkeepingUnavailable) as info:
        ledger.list_runs()

    text = "".join(traceback.format_exception(info.value))
    assert "127.0.0.1:1/bookkeeping" in str(info.value)
    assert "2 attempts" in str(info.value)
    assert PASSWORD not in text
    assert PASSWORD not in caplog.text


def test_airflow_connection_unreachable_names_conn_id_not_password(monkeypatch, caplog):
    monkeypatch.setenv(
        "AIRFLOW_CONN_CPSIGN_BOOKKEEPING_DOWN", f"mysql://cpsign:{PASSWORD}@127.0.0.1:1/bk"
    )
    caplog.set_level(logging.DEBUG)
    ledger = BookkeepingHook(
        "cpsign_bookkeeping_down", retry=RetryPolicy(attempts=2, backoff=0.01)
    ).get_ledger()

    with pytest.raises(BookkeepingUnavailable) as info:
        ledger.get_run(1)

    assert "connection 'cpsign_bookkeeping_down'" in str(info.value)
    assert PASSWORD not in "".join(traceback.format_exception(info.value))
    assert PASSWORD not in caplog.text


def test_a_rejected_run_lost_before_its_rejection_leaves_no_pending_run(ledger, bookkeeping_url):
    # the run row is inserted, then the connection dies before it is marked rejected, for
    # good: nothing is left (not a 'pending' run that a failure callback would call 'failed')
    state = _kill_before(ledger, bookkeeping_url, "UPDATE cpsign_training_runs", times=99)
    with pytest.raises(BookkeepingUnavailable):
        ledger.record_rejected_run("LogD", {"a": 1}, "cost: must be positive", task=TASK)
    assert state["killed"] == 3
    assert _rows(ledger, "cpsign_training_runs") == 0


def test_a_rejected_run_lost_once_is_recorded_rejected_once(ledger, bookkeeping_url):
    state = _kill_before(ledger, bookkeeping_url, "UPDATE cpsign_training_runs", times=1)
    run_id = ledger.record_rejected_run("LogD", {"a": 1}, "cost: must be positive", task=TASK)
    assert state["killed"] == 1
    assert _rows(ledger, "cpsign_training_runs") == 1
    run = ledger.get_run(run_id)
    assert (run.status, run.error) == ("rejected", "cost: must be positive")
