"""Engines for the bookkeeping store, and the retry rule for its transactions.

Engines are made from a SQLAlchemy URL here; an Airflow connection (type
``mysql`` through ``MySqlHook``, or ``sqlite``) becomes one in
:class:`~cpsign_airflow.bookkeeping.hook.BookkeepingHook`. A plain SQLAlchemy
URL is also accepted, for tests and the CLI. Everything heavy is imported
inside functions, because DAG files import the operators that import this module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from cpsign_airflow.bookkeeping.errors import BookkeepingConfigError, BookkeepingUnavailable

# How often a transaction is re-run after a lost connection, and the pause between: the
# provider's one retry policy (attempts 5, backoff 0.5 s, max_backoff 5 s by default).
from cpsign_airflow.retries import RetryPolicy as RetryPolicy

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds a MySQL connect may take before it counts as a failed attempt.
MYSQL_CONNECT_TIMEOUT = 10
#: Seconds SQLite waits for another writer's lock before giving up.
SQLITE_BUSY_TIMEOUT = 30

# MySQL/MariaDB error codes worth another try: server gone or restarting, connection
# killed or refused, too many connections, and lock contention (deadlock, lock wait).
_TRANSIENT_MYSQL_CODES = frozenset(
    {1040, 1053, 1205, 1213, 1927, 2002, 2003, 2005, 2006, 2013, 2014, 2045, 2055, 4031}
)
_TRANSIENT_MESSAGES = ("database is locked", "database table is locked")


def describe_url(url: URL | str, conn_id: str | None = None) -> str:
    """Name a database for messages: connection id, backend, host and database, never a password."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        where = f"sqlite file {u.database or ':memory:'}"
    else:
        host = u.host or "localhost"
        where = f"{u.get_backend_name()} {host}{f':{u.port}' if u.port else ''}/{u.database or ''}"
    return f"connection {conn_id!r} ({where})" if conn_id else where


def _engine_kwargs(url: URL) -> dict[str, Any]:
    """Engine options per backend: engine construction is the one place that differs."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.get_backend_name() in ("mysql", "mariadb"):
        # utf8mb4 on the connection too, or 4-byte characters (emoji) are mangled.
        kwargs["connect_args"] = {"charset": "utf8mb4", "connect_timeout": MYSQL_CONNECT_TIMEOUT}
        kwargs["pool_recycle"] = 3600
    elif url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT}
    return kwargs


def _install_sqlite_pragmas(engine: Engine) -> None:
    """Enforce foreign keys on SQLite, as InnoDB does."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _fk_on(dbapi_conn: Any, _record: Any) -> None:  # pragma: no cover - trivial
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _install_read_only(engine: Engine) -> None:
    """Every connection refuses writes: the database says no, not our code's discipline."""
    from sqlalchemy import event

    statement = (
        "PRAGMA query_only=ON"
        if engine.dialect.name == "sqlite"
        else "SET SESSION TRANSACTION READ ONLY"
    )

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_conn: Any, _record: Any) -> None:  # pragma: no cover - trivial
        cursor = dbapi_conn.cursor()
        cursor.execute(statement)
        cursor.close()


def engine_from_url(url: URL | str, *, read_only: bool = False) -> Engine:
    """Engine for a SQLAlchemy URL (``mysql://user@host/db``, ``sqlite:////path.db``).

    ``read_only``: each connection is made read-only in the database session
    (SQLite ``query_only``, MySQL ``TRANSACTION READ ONLY``), for readers such as
    the models page that must never change the store.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if read_only and u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:"):
        # opened read-only by SQLite itself: a wrong path is an error, not a new empty file
        u = u.set(database=f"file:{u.database}", query={**u.query, "mode": "ro", "uri": "true"})
    engine = create_engine(u, **_engine_kwargs(u))
    if u.get_backend_name() == "sqlite":
        _install_sqlite_pragmas(engine)
    if read_only:
        _install_read_only(engine)
    return engine


def sqlite_url_from_connection(conn: Any) -> str:
    """``sqlite`` connection → URL. The path is in Schema (``sqlite:////abs.db`` URIs) or Host (UI)."""
    from sqlalchemy.engine import URL

    path = conn.schema or conn.host
    if not path:
        raise BookkeepingConfigError(
            f"sqlite connection {conn.conn_id!r} names no database file; put its path in Host"
        )
    return URL.create("sqlite", database=path).render_as_string()


def is_transient(exc: BaseException) -> bool:
    """True for a dropped or refused connection, or lock contention: worth running again."""
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    code = getattr(orig, "errno", None)
    if code is None and orig is not None and orig.args and isinstance(orig.args[0], int):
        code = orig.args[0]
    if code in _TRANSIENT_MYSQL_CODES:
        return True
    text = str(orig).lower()
    return any(m in text for m in _TRANSIENT_MESSAGES)


def error_summary(exc: BaseException) -> str:
    """The driver's message without SQL text or parameters."""
    orig = getattr(exc, "orig", None) or exc
    return f"{type(orig).__name__}: {orig}"


def run_transaction(
    engine: Engine,
    unit: Callable[[Connection], T],
    *,
    target: str,
    what: str,
    retry: RetryPolicy,
    conflict_retries: int = 3,
) -> T:
    """Run ``unit`` in one transaction; re-run it whole after a lost connection or a lost race.

    ``unit`` must be idempotent (select before insert, conditional updates), so
    re-running after a commit whose acknowledgement was lost changes nothing.
    A unique-key violation means a concurrent writer inserted the same key
    first: the re-run selects that row. After ``retry.attempts`` transient
    failures, :class:`BookkeepingUnavailable` names the target (never a password).
    """
    from sqlalchemy.exc import DBAPIError, IntegrityError

    conflicts = 0

    def once() -> T:
        nonlocal conflicts
        while True:  # a lost race is re-read at once and counts as no attempt
            try:
                with engine.begin() as conn:
                    return unit(conn)
            except IntegrityError:
                conflicts += 1
                if conflicts > conflict_retries:
                    raise
                log.info("Bookkeeping: concurrent write while %s; re-reading", what)

    def reason(exc: BaseException) -> str | None:
        transient = (
            isinstance(exc, DBAPIError)
            and not isinstance(exc, IntegrityError)
            and is_transient(exc)
        )
        return error_summary(exc) if transient else None

    def on_retry(attempt: int, summary: str, pause: float) -> None:
        log.warning(
            "Bookkeeping database %s: %s while %s (attempt %d of %d); retrying in %.1fs",
            target,
            summary,
            what,
            attempt,
            retry.attempts,
            pause,
        )

    def give_up(exc: BaseException, attempts: int) -> BookkeepingUnavailable:
        return BookkeepingUnavailable(
            f"Bookkeeping database {target} unavailable while {what}: "
            f"{attempts} attempts failed, last with {error_summary(exc)}"
        )

    return retry.call(once, reason, on_retry, give_up)
