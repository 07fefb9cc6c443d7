"""The source database as the training DAGs see it: which connection, and the pre-flight check.

Where ingestion connects is an administrator's choice, never the trigger form's: the
source database's coordinates come from an Airflow connection named in ``[cpsign]
source_db_conn_id`` (or one of ``source_db_conn_ids``, the allow-list), and a
configuration's ``preprocessing.database`` must match one of them field by field
(:func:`resolve_source`). cpsign_setup pins the same coordinates in the ingestion
pipeline's environment, which is what the stage connects to.

The pre-flight check then runs the configuration's query with LIMIT 0 in a read-only
transaction that is rolled back (:func:`cpsign_airflow.cpsign.source_db.read_only_connection`,
the same session ingestion uses), so a typo in the SQL fails the DAG run before the
config commit with the database's own message, instead of an hour later in ingestion.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from cpsign_airflow.cpsign.source_db import SourceDatabase

log = logging.getLogger(__name__)


class PreflightError(ValueError, AirflowFailException):
    """The source database or its query is refused (retrying will not help)."""


def zero_row_query(config: Mapping[str, Any]) -> str:
    """The configuration's query wrapped so it returns no rows: ``SELECT * FROM (q) AS q LIMIT 0``.

    The ``{}`` placeholder for the row limit is removed and a trailing ``;``
    dropped, so what is checked is exactly the statement ingestion will run.
    The statement must be one read-only SELECT (checked first, with sqlglot).
    """
    from cpsign_airflow.cpsign.source_db import SourceDatabaseError, check_statement

    preprocessing = config.get("preprocessing") or {}
    query = (preprocessing.get("query") or {}).get("database_query")
    if not query or not isinstance(query, str):
        raise PreflightError("preprocessing.query.database_query: missing")
    dialect = (preprocessing.get("database") or {}).get("dialect", "mysql")
    try:
        check_statement(query, dialect)
    except SourceDatabaseError as err:
        raise PreflightError(str(err)) from None
    statement = query.replace("{}", "").strip().rstrip(";").strip()
    return f"SELECT * FROM ({statement}) AS cpsign_preflight LIMIT 0"


def source_connection(conn_id: str) -> tuple[SourceDatabase, Connection]:
    """The coordinates an administrator set in the Airflow connection ``conn_id``.

    Connection types mysql, postgres and sqlite (a file path in Host, or in Schema as
    ``sqlite:////abs/path.db`` writes it); others are refused, naming the connection.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from cpsign_airflow.cpsign.source_db import CONN_TYPES, SourceDatabase, SourceDatabaseError

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise PreflightError(
            f"the source database connection {conn_id!r} does not exist; an administrator "
            f"creates it (e.g. AIRFLOW_CONN_{conn_id.upper()}=mysql://user:password@host:3306/db)"
        ) from None
    if conn.password:
        from airflow.sdk.log import mask_secret

        mask_secret(conn.password)
    dialect = CONN_TYPES.get(conn.conn_type or "")
    if dialect is None:
        raise PreflightError(
            f"source database connection {conn_id!r}: connection type {conn.conn_type!r} is "
            "not a source database ingestion can read (mysql, postgres or sqlite)"
        )
    try:
        if dialect == "sqlite":
            path = conn.host or conn.schema
            if not path:
                raise SourceDatabaseError("names no database file; put its path in Host")
            source = SourceDatabase("sqlite", db_name=path)
        else:
            source = SourceDatabase(
                dialect,
                db_name=conn.schema or "",
                host=conn.host or None,
                port=conn.port or None,
                user=conn.login or None,
            )
    except SourceDatabaseError as err:
        raise PreflightError(f"source database connection {conn_id!r}: {err}") from None
    return source, conn


def allowed_conn_ids(conn_ids: str | Sequence[str]) -> list[str]:
    """The allow-list as a list: ``[cpsign] source_db_conn_id`` first, then the others."""
    ids = [conn_ids] if isinstance(conn_ids, str) else list(conn_ids)
    return list(dict.fromkeys(i for i in ids if i))


def resolve_source_connection(
    conn_id: str | None, conn_ids: str | Sequence[str], sqlite_dir: str | None = None
) -> SourceDatabase:
    """The coordinates of ``conn_id`` (None: the first allowed), refused unless it is allowed."""
    ids = _configured_ids(conn_ids)
    chosen = conn_id or ids[0]
    if chosen not in ids:
        raise PreflightError(
            f"source_db_conn_id: {chosen!r} is not an allowed source database connection "
            f"({', '.join(ids)}: [cpsign] source_db_conn_id and source_db_conn_ids)"
        )
    source, _conn = source_connection(chosen)
    return _confined(chosen, source, sqlite_dir)


def _configured_ids(conn_ids: str | Sequence[str]) -> list[str]:
    """The allowed source connection ids; :class:`PreflightError` when there are none."""
    ids = allowed_conn_ids(conn_ids)
    if not ids:
        raise PreflightError(
            "no source database connection is configured ([cpsign] source_db_conn_id)"
        )
    return ids


def _confined(conn_id: str, source: SourceDatabase, sqlite_dir: str | None) -> SourceDatabase:
    """``source``, if a SQLite file lies in ``sqlite_dir`` (``[cpsign] source_sqlite_dir``)."""
    from cpsign_airflow.cpsign.source_db import SourceDatabaseError, confine_sqlite

    try:
        confine_sqlite(source, sqlite_dir)
    except SourceDatabaseError as err:
        raise PreflightError(f"source database connection {conn_id!r}: {err}") from None
    return source


def resolve_source(
    config: Mapping[str, Any], conn_ids: str | Sequence[str], sqlite_dir: str | None = None
) -> tuple[str, SourceDatabase, Connection]:
    """The allowed connection a configuration's ``preprocessing.database`` names.

    The first allowed connection whose coordinates match field by field. None matching:
    :class:`PreflightError` naming each differing field (against the first allowed
    connection when the dialect is the same in none). Nothing is connected to.
    """
    from cpsign_airflow.cpsign.source_db import coordinate_problems

    database = (config.get("preprocessing") or {}).get("database")
    ids = _configured_ids(conn_ids)
    report: list[str] | None = None
    for conn_id in ids:
        source, conn = source_connection(conn_id)
        problems = coordinate_problems(
            database, source, f"the source database connection {conn_id!r}"
        )
        if not problems:
            return conn_id, _confined(conn_id, source, sqlite_dir), conn
        if report is None or (len(problems) < len(report)):
            report = problems
    raise PreflightError("\n".join(report or []))


def describe_source(conn: Any) -> str:
    """``source database connection 'id' (mysql host:3306/db)``: never the password."""
    if conn.conn_type == "sqlite":
        where = f"sqlite file {conn.host or conn.schema or '?'}"
    else:
        port = f":{conn.port}" if conn.port else ""
        database = f"/{conn.schema}" if conn.schema else ""
        where = f"{conn.conn_type} {conn.host or 'localhost'}{port}{database}"
    return f"source database connection {conn.conn_id!r} ({where})"


def _scrub(text: str, conn: Any) -> str:
    """Drop the connection's password from a driver's message, should it quote one.

    (Passwords shorter than 4 characters are left alone: replacing them would
    mangle the message and hide little.)
    """
    if conn.password and len(conn.password) >= 4:
        from urllib.parse import quote, quote_plus

        for form in {conn.password, quote(conn.password, safe=""), quote_plus(conn.password)}:
            text = text.replace(form, "***")
    return text


def check_source_query(
    config: Mapping[str, Any], conn_ids: str | Sequence[str], sqlite_dir: str | None = None
) -> list[str]:
    """Run the zero-row query, read-only, on the allowed connection the configuration names.

    Returns the query's columns, and checks that the configured ``smi_columns`` are
    among them. The statement and the coordinates are checked before anything is
    connected to. Errors name the source connection and database (never its password)
    and quote the database's own message.
    """
    from sqlalchemy import text

    from cpsign_airflow.cpsign.source_db import SourceDatabaseError, read_only_connection

    sql = zero_row_query(config)
    _conn_id, source, conn = resolve_source(config, conn_ids, sqlite_dir)
    where = describe_source(conn)
    try:
        with read_only_connection(source, conn.password, connect_timeout=30) as session:
            result = session.execute(text(sql))
            columns = list(result.keys())
            result.fetchall()
    except SourceDatabaseError as err:
        raise PreflightError(f"{where}: {err}") from None
    except Exception as err:
        text_ = str(getattr(err, "orig", None) or err).strip()
        reason = _scrub(text_.splitlines()[0] if text_ else type(err).__name__, conn)
        raise PreflightError(
            f"preprocessing.query.database_query does not run on the {where}: {reason}"
        ) from None
    wanted = ((config.get("preprocessing") or {}).get("query") or {}).get("smi_columns") or []
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise PreflightError(
            f"preprocessing.query.smi_columns: {missing} not among the query's columns {columns}"
        )
    log.info("Pre-flight: the source query runs on the %s and yields columns %s", where, columns)
    return columns
