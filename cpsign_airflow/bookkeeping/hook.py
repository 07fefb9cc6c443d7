"""Airflow hook for the cpsign bookkeeping store: MySQL/MariaDB, or SQLite for a laptop.

The store is an ordinary Airflow connection, so there is no connection type of
its own: type ``mysql`` goes through ``MySqlHook`` (its client choice and
extras such as ``ssl`` apply), type ``sqlite`` names a database file (in Host,
as the UI puts it, or in Schema, as ``sqlite:////abs/path.db`` URIs do).
:meth:`BookkeepingHook.get_ledger` gives the
:class:`~cpsign_airflow.bookkeeping.ledger.TrainingLedger` the operators,
tasks and the CLI write through.

SQLAlchemy, the ledger and MySqlHook are imported inside methods: DAG files
import the bookkeeping operators, which import this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from cpsign_airflow.bookkeeping.errors import BookkeepingConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from cpsign_airflow.bookkeeping.engine import RetryPolicy
    from cpsign_airflow.bookkeeping.ledger import TrainingLedger

#: Connection types the bookkeeping store can live behind.
CONN_TYPES = ("mysql", "mariadb", "sqlite")


class BookkeepingHook(BaseHook):
    """The bookkeeping database behind an Airflow connection of type ``mysql`` or ``sqlite``.

    One SQLAlchemy engine per hook, made on first use (:meth:`get_conn`) with
    the store's settings: utf8mb4 and a connect timeout on MySQL, foreign keys
    and a busy timeout on SQLite, pre-ping on both. Messages name the
    connection id, backend, host and database, never the password.

    .. code-block:: python

        with BookkeepingHook("cpsign_bookkeeping").get_ledger() as ledger:
            ledger.finish_run(run_id, "succeeded")

    :param bookkeeping_conn_id: Airflow connection id (default ``cpsign_bookkeeping``).
    :param retry: how often the ledger re-runs a transaction after a lost
        connection (default :class:`~cpsign_airflow.bookkeeping.engine.RetryPolicy`).
    :param read_only: every database session refuses writes (readers such as the
        models page).
    """

    conn_name_attr = "bookkeeping_conn_id"
    default_conn_name = "cpsign_bookkeeping"
    hook_name = "CPSign bookkeeping"

    def __init__(
        self,
        bookkeeping_conn_id: str = default_conn_name,
        *,
        retry: RetryPolicy | None = None,
        read_only: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bookkeeping_conn_id = bookkeeping_conn_id
        self.retry = retry
        self.read_only = read_only
        self._engine: Engine | None = None
        self._target: str | None = None

    # ------------------------------------------------------------------ connection

    def _resolve(self) -> tuple[URL, str]:
        """The store's SQLAlchemy URL (password included: never log it) and its description."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        from cpsign_airflow.bookkeeping.engine import describe_url, sqlite_url_from_connection

        conn_id = self.bookkeeping_conn_id
        try:
            conn = self.get_connection(conn_id)
        except AirflowNotFoundException:
            raise BookkeepingConfigError(
                f"Airflow connection {conn_id!r} is not defined; create it (type mysql or sqlite), "
                f"e.g. AIRFLOW_CONN_{conn_id.upper()}=mysql://user:password@host:3306/database"
            ) from None
        if conn.password:
            from airflow.sdk.log import mask_secret

            mask_secret(conn.password)
        if conn.conn_type in ("mysql", "mariadb"):
            from sqlalchemy.engine import make_url

            from cpsign_airflow.extras import require

            MySqlHook = require(
                "airflow.providers.mysql.hooks.mysql", "mysql", "MySQL/MariaDB bookkeeping"
            ).MySqlHook

            # MySqlHook turns the connection (client choice, extras such as ssl) into
            # the URL. The engine is made here rather than by its get_sqlalchemy_engine(),
            # which logs that URL, password included, at DEBUG level.
            url = make_url(MySqlHook(mysql_conn_id=conn_id, connection=conn).get_uri())
        elif conn.conn_type == "sqlite":
            from sqlalchemy.engine import make_url

            url = make_url(sqlite_url_from_connection(conn))
        else:
            raise BookkeepingConfigError(
                f"Airflow connection {conn_id!r} has type {conn.conn_type!r}; "
                "the bookkeeping store needs type 'mysql' or 'sqlite'"
            )
        return url, describe_url(url, conn_id)

    def get_conn(self) -> Engine:
        """The SQLAlchemy engine of the store, made once per hook."""
        if self._engine is None:
            from cpsign_airflow.bookkeeping.engine import engine_from_url

            url, self._target = self._resolve()
            self._engine = engine_from_url(url, read_only=self.read_only)
        return self._engine

    @property
    def target(self) -> str:
        """Password-free description: ``connection 'id' (mysql host:3306/db)``."""
        if self._target is None:
            self.get_conn()
        return self._target  # type: ignore[return-value]

    def get_ledger(self) -> TrainingLedger:
        """A :class:`TrainingLedger` on this hook's engine.

        Use it as a context manager: leaving it closes the pooled connections
        (the engine stays usable, and the hook makes new ones when next asked).
        """
        from cpsign_airflow.bookkeeping.ledger import TrainingLedger

        engine = self.get_conn()
        return TrainingLedger(engine, target=self.target, retry=self.retry)

    def close(self) -> None:
        """Dispose of the engine; the next call makes a new one."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def test_connection(self) -> tuple[bool, str]:
        """``(ok, message)`` as Airflow hooks give it: connect, and tell the schema's revision.

        (The connection form's Test button uses the hook of the connection's type,
        MySqlHook or SqliteHook; this one also checks the bookkeeping schema.)
        """
        try:
            from cpsign_airflow.bookkeeping.engine import RetryPolicy
            from cpsign_airflow.bookkeeping.schema import head_revision

            ledger = self.get_ledger()
            ledger.retry = RetryPolicy(attempts=1)
            with ledger:
                revision = ledger.schema_revision()
        except Exception as err:
            from cpsign_airflow.bookkeeping.engine import error_summary

            where = self._target or f"connection {self.bookkeeping_conn_id!r}"
            return False, f"Bookkeeping database {where}: {error_summary(err)}"
        newest = head_revision()
        if revision == newest:
            state = f"schema at the newest revision {newest}"
        elif revision is None:
            state = (
                f"no schema yet (newest {newest}): run cpsign_setup, or "
                "python -m cpsign_airflow.bookkeeping upgrade"
            )
        else:
            state = f"schema at revision {revision}, newest is {newest}: upgrade it"
        return True, f"Connected to {self.target}; {state}"
