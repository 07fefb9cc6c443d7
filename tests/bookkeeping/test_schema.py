"""Schema migrations: empty database, upgrade from 0001, idempotence, concurrency."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from cpsign_airflow.bookkeeping import schema
from cpsign_airflow.bookkeeping.engine import engine_from_url
from cpsign_airflow.bookkeeping.errors import SchemaNotReady
from cpsign_airflow.bookkeeping.ledger import TrainingLedger
from cpsign_airflow.bookkeeping.tables import metadata, training_runs
from cpsign_airflow.testing.mariadb import scratch_database

from .fixtures import schema_v0001 as v0001

TABLES = {
    "cpsign_workflows",
    "cpsign_pipeline_deployments",
    "cpsign_training_runs",
    "cpsign_pipeline_jobs",
    "cpsign_model_artifacts",
}


def _diff(engine: sa.Engine, target: sa.MetaData) -> list:
    def include_name(name, type_, parent_names) -> bool:
        return type_ != "table" or name != schema.LOCK_TABLE

    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "version_table": schema.VERSION_TABLE,
                "compare_type": True,
                "include_name": include_name,
            },
        )
        return compare_metadata(ctx, target)


HEAD = "0007"


def test_head_is_0007_and_revisions_are_ordered():
    assert schema.known_revisions() == ("0001", "0002", "0003", "0004", "0005", "0006", "0007")
    assert schema.head_revision() == HEAD


def test_migrate_empty_database_to_head_matches_tables(bookkeeping_url):
    engine = engine_from_url(bookkeeping_url)
    assert schema.current_revision(engine) is None

    result = schema.upgrade(engine)

    assert (result.before, result.after) == (None, HEAD)
    names = set(sa.inspect(engine).get_table_names())
    assert TABLES | {schema.VERSION_TABLE, schema.LOCK_TABLE} == names
    # The migrations build exactly what tables.py (used by every query) declares.
    assert _diff(engine, metadata) == []


def test_upgrade_is_a_no_op_at_head(bookkeeping_url):
    engine = engine_from_url(bookkeeping_url)
    schema.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO cpsign_workflows (name, project, config_repo, created_at, updated_at)"
                " VALUES (:n, 'default', 'config', :t, :t)"
            ),
            {"n": "LogD", "t": v0001.T0},
        )

    again = schema.upgrade(engine)

    assert (again.before, again.after, again.changed) == (HEAD, HEAD, False)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT name FROM cpsign_workflows")).scalars().all() == [
            "LogD"
        ]


def test_revision_0001_matches_the_frozen_fixture(bookkeeping_url):
    engine = engine_from_url(bookkeeping_url)
    schema.upgrade(engine, "0001")
    assert schema.current_revision(engine) == "0001"
    assert _diff(engine, v0001.metadata) == []


def test_upgrade_from_0001_fixture_keeps_rows_and_adds_publication(bookkeeping_url):
    engine = engine_from_url(bookkeeping_url)
    v0001.metadata.create_all(engine)
    with engine.begin() as conn:
        for table in v0001.metadata.sorted_tables:
            conn.execute(table.insert(), v0001.ROWS[table.name])
        command.stamp(schema.alembic_config(conn), v0001.REVISION)
    assert schema.current_revision(engine) == "0001"

    # The ledger refuses the old schema with a clear instruction rather than failing mid-write.
    ledger = TrainingLedger.from_url(bookkeeping_url)
    with pytest.raises(SchemaNotReady, match="revision 0001.*upgrade"):
        ledger.list_runs()

    result = ledger.upgrade_schema()
    assert (result.before, result.after) == ("0001", HEAD)

    run = ledger.get_run(1)
    assert run.configuration_json == v0001.CONFIG
    assert run.status == "succeeded"
    assert run.started_at.replace(tzinfo=None) == v0001.T0
    [job] = ledger.list_jobs(1)
    assert (job.pipeline, job.data_total, job.state) == ("LogD-training", 5, "JOB_SUCCESS")
    [art] = ledger.list_artifacts(1)
    assert art.publication_status == "unpublished"
    assert (art.size_bytes, art.sha256) == (123456, "8" * 64)
    assert ledger.latest_successful_configuration("LogD") == {
        "workflow_name": "LogD",
        "cpsign": {"ptype": 2, "model-name": "LogD_full_split"},
        "note": "Säure 😀",
    }
    # Old rows take new writes: publish the old model, fail the old open run.
    assert art.published_version is None  # 0003's column, NULL on old rows
    [published] = ledger.record_publication(
        1,
        "LogD_full_split",
        status="published",
        target="model_store",
        url="https://m/1",
        version="c" * 32,
    )
    assert published.publication_url == "https://m/1"
    assert published.published_version == "c" * 32
    assert ledger.fail_open_runs("cpsign_train", "scheduled__2026-03-02", "lost") == [2]
    new_id = ledger.record_pending_run("LogD", {"a": 1})
    assert new_id == 3
    assert _diff(engine, metadata) == []


def test_ledger_on_empty_database_says_how_to_create_schema(bookkeeping_url):
    ledger = TrainingLedger.from_url(bookkeeping_url)
    with pytest.raises(SchemaNotReady, match="no bookkeeping schema.*upgrade"):
        ledger.record_pending_run("LogD", {"a": 1})
    assert sa.inspect(ledger.engine).get_table_names() == []


def test_unknown_newer_revision_is_refused(bookkeeping_url):
    ledger = TrainingLedger.from_url(bookkeeping_url)
    ledger.upgrade_schema()
    with ledger.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {schema.VERSION_TABLE} SET version_num = '0099'"))
    with pytest.raises(SchemaNotReady, match="unknown to this provider"):
        ledger.list_runs()


def test_migration_cut_off_half_way_is_completed(bookkeeping_url):
    """MySQL commits DDL one statement at a time: a killed setup leaves tables but no stamp."""
    engine = engine_from_url(bookkeeping_url)
    schema.upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(sa.text(f"DELETE FROM {schema.VERSION_TABLE}"))  # died before stamping 0001
        [index] = [
            ix for ix in training_runs.indexes if ix.name == "ix_cpsign_training_runs_config_sha256"
        ]
        index.drop(conn)
    assert schema.current_revision(engine) is None

    assert schema.upgrade(engine).after == HEAD
    assert _diff(engine, metadata) == []


def test_0002_cut_off_after_its_first_column_is_completed(bookkeeping_url):
    engine = engine_from_url(bookkeeping_url)
    schema.upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "ALTER TABLE cpsign_model_artifacts ADD COLUMN publication_status VARCHAR(16)"
                " DEFAULT 'unpublished' NOT NULL"
            )
        )
    assert schema.upgrade(engine).after == HEAD
    assert _diff(engine, metadata) == []


def _upgrade_in_child(url: str, errors) -> None:
    try:
        engine = engine_from_url(url)
        schema.upgrade(engine, target="child")
        engine.dispose()
    except BaseException as exc:  # reported to the parent
        errors.put(repr(exc))
        raise


def _fork_upgrade(url: str, errors):
    """A setup task in its own process (forked: no second Airflow import to wait for)."""
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_upgrade_in_child, args=(url, errors))
    proc.start()
    return proc


def test_two_setup_processes_migrating_at_once_both_succeed(bookkeeping_url):
    """Two setup runs (separate processes, as Airflow tasks are) upgrade one empty database."""
    errors = multiprocessing.get_context("fork").Queue()
    procs = [_fork_upgrade(bookkeeping_url, errors) for _ in range(2)]
    for proc in procs:
        proc.join(timeout=120)

    assert [p.exitcode for p in procs] == [0, 0], [errors.get() for _ in range(errors.qsize())]
    engine = engine_from_url(bookkeeping_url)
    assert schema.current_revision(engine) == HEAD
    assert _diff(engine, metadata) == []
    with engine.connect() as conn:
        versions = conn.execute(sa.text(f"SELECT version_num FROM {schema.VERSION_TABLE}"))
        assert versions.scalars().all() == [HEAD]


def test_two_setups_migrating_at_once_in_one_process_both_succeed(bookkeeping_url):
    """Two threads: Alembic is not thread-safe, the process lock must order them."""
    start = threading.Barrier(2, timeout=30)
    results: list = []
    errors: list = []

    def setup() -> None:
        engine = engine_from_url(bookkeeping_url)
        try:
            start.wait()
            results.append(schema.upgrade(engine, target="concurrent"))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=setup) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert errors == []
    assert [r.after for r in results] == [HEAD, HEAD]
    engine = engine_from_url(bookkeeping_url)
    assert schema.current_revision(engine) == HEAD
    assert _diff(engine, metadata) == []
    with engine.connect() as conn:
        versions = conn.execute(sa.text(f"SELECT version_num FROM {schema.VERSION_TABLE}"))
        assert versions.scalars().all() == [HEAD]


def test_mysql_migration_waits_for_the_lock_of_another_setup(mysql_server_url):
    """While one setup holds the migration lock, another blocks on it, then finishes."""
    with scratch_database(mysql_server_url) as url:
        engine = engine_from_url(url)
        errors = multiprocessing.get_context("fork").Queue()
        blocked = sa.text(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
            " WHERE ID != CONNECTION_ID() AND DB = DATABASE() AND INFO LIKE '%FOR UPDATE%'"
        )
        with schema._migration_lock(engine):
            proc = _fork_upgrade(url, errors)
            deadline = time.monotonic() + 60
            with engine.connect() as conn:
                while not conn.execute(blocked).scalar():  # await the other setup's lock wait
                    assert proc.exitcode is None, "the second setup did not wait for the lock"
                    assert time.monotonic() < deadline, "the second setup never waited"
                    time.sleep(0.05)
            assert schema.current_revision(engine) is None
            assert proc.exitcode is None
        proc.join(timeout=120)
        assert proc.exitcode == 0, errors.get(timeout=1)
        assert schema.current_revision(engine) == HEAD
        engine.dispose()


def test_a_failed_upgrade_is_retried_by_the_one_policy(bookkeeping_url, monkeypatch, caplog):
    """A lost connection in the middle of a migration: tried again, logged, then done."""
    engine = engine_from_url(bookkeeping_url)
    real, calls, pauses = command.upgrade, [], []
    monkeypatch.setattr(time, "sleep", pauses.append)  # the policy's pauses, not waited

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise sa.exc.OperationalError("upgrade", {}, Exception("Lost connection"))
        return real(*args, **kwargs)

    monkeypatch.setattr(command, "upgrade", flaky)
    with caplog.at_level("WARNING", logger=schema.log.name):
        result = schema.upgrade(engine, target="t")
    assert result.after == schema.head_revision() and len(calls) == 2
    assert pauses == [0.2]
    assert "Bookkeeping schema upgrade of t at None failed" in caplog.text
    assert "retrying in 0.2s" in caplog.text


def test_an_upgrade_that_keeps_failing_names_the_revision_and_the_error(
    bookkeeping_url, monkeypatch
):
    engine = engine_from_url(bookkeeping_url)
    pauses: list[float] = []
    monkeypatch.setattr(time, "sleep", pauses.append)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(command, "upgrade", broken)
    with pytest.raises(schema.SchemaMigrationError, match="failed at revision None: .*disk full"):
        schema.upgrade(engine, target="t", attempts=3)
    assert pauses == [0.2, 0.4]
