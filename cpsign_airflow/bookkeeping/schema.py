"""Create or upgrade the bookkeeping schema with the packaged Alembic migrations.

Safe on every setup: at head it does nothing. Two setups migrating the same
database at once take turns: MySQL commits every DDL statement by itself, so a
transaction cannot serialise them; instead a second connection holds a row
lock (``SELECT ... FOR UPDATE`` on ``cpsign_schema_lock``) for the whole
migration. SQLite needs no such lock (it renders a plain SELECT there, and the
file lock orders writers). Revisions also skip what already exists, so a
migration cut off half way is finished by the next run. Alembic keeps its own
version table, ``cpsign_alembic_version``, apart from any other application's.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cpsign_airflow.bookkeeping.engine import error_summary
from cpsign_airflow.bookkeeping.errors import SchemaMigrationError, SchemaNotReady

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

VERSION_TABLE = "cpsign_alembic_version"
LOCK_TABLE = "cpsign_schema_lock"
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")

# Alembic's ``context``/``op`` are module-level proxies: one migration per process at a time.
_PROCESS_LOCK = threading.Lock()


@dataclass(frozen=True)
class UpgradeResult:
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic config for the packaged migrations; no ini file needed."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head_revision() -> str:
    """Newest revision shipped with this provider (read once: the files ship with it)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


@functools.cache
def known_revisions() -> tuple[str, ...]:
    """All shipped revisions, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return tuple(rev.revision for rev in reversed(list(script.walk_revisions())))


def current_revision_on(connection: Connection) -> str | None:
    """The version table's revision; None without the table or a row.

    Read with a plain SELECT rather than Alembic's MigrationContext, which logs two
    INFO lines each time: every ledger transaction's schema check (and every models
    page request) would.
    """
    from sqlalchemy import column, inspect, select, table

    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(
        select(column("version_num")).select_from(table(VERSION_TABLE))
    ).scalars()
    revisions = sorted(set(rows))
    if len(revisions) > 1:  # the revisions form one line; several heads is not this schema
        raise SchemaNotReady(f"the bookkeeping version table holds several heads {revisions}")
    return revisions[0] if revisions else None


def current_revision(engine: Engine) -> str | None:
    """Revision the database is at; None for a database without the schema."""
    with engine.connect() as conn:
        return current_revision_on(conn)


def upgrade(
    engine: Engine, revision: str = "head", *, target: str = "", attempts: int = 6
) -> UpgradeResult:
    """Upgrade the schema to ``revision`` (default: newest). Idempotent and concurrency-safe.

    Waits for another migrator's lock; re-tries after a lost connection or a
    lock-wait timeout, up to ``attempts`` times.
    """
    from alembic import command

    from cpsign_airflow.retries import RetryPolicy

    want = head_revision() if revision == "head" else revision
    before_all: str | None = None
    first = True

    def once() -> UpgradeResult:
        nonlocal before_all, first
        try:
            with _PROCESS_LOCK, _migration_lock(engine), _foreign_keys_off(engine) as conn:
                with conn.begin():
                    before = current_revision_on(conn)
                    if first:
                        before_all, first = before, False
                    if before != want:
                        log.info("Bookkeeping schema of %s: %s -> %s", target, before, want)
                        command.upgrade(alembic_config(conn), revision)
            return UpgradeResult(before_all, current_revision(engine))
        except Exception:
            now = _revision_or_none(engine)
            if now == want:  # another migrator got there first
                return UpgradeResult(before_all, now)
            raise

    def on_retry(attempt: int, summary: str, pause: float) -> None:
        log.warning(
            "Bookkeeping schema upgrade of %s at %s failed (%s); retrying in %.1fs",
            target,
            _revision_or_none(engine),
            summary,
            pause,
        )

    def give_up(exc: BaseException, attempts: int) -> SchemaMigrationError:
        return SchemaMigrationError(
            f"Upgrading the bookkeeping schema of {target or 'the database'} to {want} "
            f"failed at revision {_revision_or_none(engine)}: {error_summary(exc)}"
        )

    # every failure is worth another try here: a lost connection, a lock-wait timeout
    policy = RetryPolicy(attempts=attempts, backoff=0.2, max_backoff=5.0)
    return policy.call(once, error_summary, on_retry, give_up)


@contextlib.contextmanager
def _foreign_keys_off(engine: Engine) -> Iterator[Connection]:
    """A connection for the migration; on SQLite with foreign keys off while it runs.

    SQLite changes a constraint by copying the table and dropping the old one,
    which its foreign-key check refuses while other tables reference the rows.
    The pragma only works outside a transaction, hence here; afterwards
    ``foreign_key_check`` must find nothing, and the keys are on again.
    """
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            yield conn
            return
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.commit()
        try:
            yield conn
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration left broken foreign keys: {broken[:5]}")
        finally:
            conn.rollback()
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


def _lock_table():
    import sqlalchemy as sa

    from cpsign_airflow.bookkeeping.tables import MYSQL_TABLE_ARGS

    return sa.Table(
        LOCK_TABLE,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("note", sa.String(255), nullable=True),
        **MYSQL_TABLE_ARGS,
    )


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Hold a row lock on a second connection while the migration runs on the first."""
    import sqlalchemy as sa
    from sqlalchemy.exc import DBAPIError, IntegrityError

    table = _lock_table()
    try:
        table.create(engine, checkfirst=True)
    except DBAPIError:
        if not sa.inspect(engine).has_table(LOCK_TABLE):  # else a concurrent setup made it
            raise
    with engine.begin() as conn:
        exists = conn.execute(sa.select(table.c.id).where(table.c.id == 1)).first()
    if not exists:
        with contextlib.suppress(IntegrityError):
            with engine.begin() as conn:
                note = f"schema migration lock ({socket.gethostname()}:{os.getpid()})"
                conn.execute(sa.insert(table).values(id=1, note=note[:255]))
    with engine.connect() as lock_conn, lock_conn.begin():
        lock_conn.execute(sa.select(table.c.id).where(table.c.id == 1).with_for_update()).first()
        yield


def _revision_or_none(engine: Engine) -> str | None:
    try:
        return current_revision(engine)
    except Exception:  # the connection itself may be what failed
        return None


def require_head(connection: Connection, target: str) -> None:
    """Fail clearly when the schema is missing or of another version than this code."""
    current = current_revision_on(connection)
    if current is None:
        raise SchemaNotReady(
            f"Bookkeeping database {target} has no bookkeeping schema; create it with "
            "`python -m cpsign_airflow.bookkeeping upgrade --conn-id <conn>` "
            "or the BookkeepingSchemaOperator"
        )
    head = head_revision()
    if current == head:
        return
    if current in known_revisions():
        raise SchemaNotReady(
            f"Bookkeeping schema of {target} is at revision {current}, this provider needs "
            f"{head}; upgrade it with `python -m cpsign_airflow.bookkeeping upgrade` "
            "or the BookkeepingSchemaOperator"
        )
    raise SchemaNotReady(
        f"Bookkeeping schema of {target} is at revision {current!r}, unknown to this "
        f"provider (newest {head}); upgrade cpsign-airflow"
    )
