"""Pre-flight check of a configuration's source-database query, before anything is committed.

A training run's first stage queries the source database (ChEMBL in the
original). A typo in that SQL used to surface an hour later as a failed
ingestion job; here it fails the DAG run before the config commit, with the
database's own error message. The query runs through the source connection's
own Airflow database hook, so any database Airflow has a provider for works.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import Connection

log = logging.getLogger(__name__)


class PreflightError(ValueError, AirflowFailException):
    """The configured query does not run against the source database (retrying will not help)."""


def zero_row_query(config: Mapping[str, Any]) -> str:
    """The configuration's query wrapped so it returns no rows: ``SELECT * FROM (q) AS q LIMIT 0``.

    The ``{}`` placeholder for the row limit is removed and a trailing ``;``
    dropped, so what is checked is exactly the statement ingestion will run.
    """
    query = ((config.get("preprocessing") or {}).get("query") or {}).get("database_query")
    if not query or not isinstance(query, str):
        raise PreflightError("preprocessing.query.database_query: missing")
    statement = query.replace("{}", "").strip().rstrip(";").strip()
    return f"SELECT * FROM ({statement}) AS cpsign_preflight LIMIT 0"


def source_hook(conn_id: str) -> tuple[DbApiHook, Connection]:
    """The source connection's own database hook (``conn.get_hook()``), and the connection.

    Airflow picks the hook by connection type (MySqlHook for mysql, SqliteHook
    for sqlite, PostgresHook for postgres...), so any database with an
    installed Airflow provider works. A type without a database (DbApiHook)
    hook is refused, naming the connection and its type.
    """
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise PreflightError(
            f"Pre-flight needs the Airflow connection {conn_id!r} to the source database; "
            f"create it (e.g. AIRFLOW_CONN_{conn_id.upper()}=mysql://user:password@host:3306/db), "
            "or trigger with preflight disabled"
        ) from None
    if conn.password:
        from airflow.sdk.log import mask_secret

        mask_secret(conn.password)
    where = describe_source(conn)
    try:
        hook = conn.get_hook()
    except Exception as err:  # unknown type, or its provider is not installed
        raise PreflightError(
            f"Pre-flight cannot query the {where}: Airflow has no database hook for connection "
            f"type {conn.conn_type!r} ({_scrub(str(err), conn)}); install the Airflow provider "
            "of that database, or trigger with preflight disabled"
        ) from None
    if not isinstance(hook, DbApiHook):
        raise PreflightError(
            f"Pre-flight cannot query the {where}: connection type {conn.conn_type!r} has "
            f"{type(hook).__name__}, which is not a SQL database hook (DbApiHook); "
            "point the connection at the source database, or trigger with preflight disabled"
        )
    if conn.conn_type == "sqlite" and not (conn.host or conn.schema):
        raise PreflightError(
            f"Pre-flight cannot query the {where}: the sqlite connection names no database "
            "file; put its path in Host"
        )
    if conn.conn_type == "sqlite" and not conn.host:
        # A SQLAlchemy-style URI (sqlite:////abs/path.db, as docker-compose and the
        # demo write it) puts the path in Schema; SqliteHook reads it from Host only.
        from sqlalchemy.engine import URL

        uri = URL.create("sqlite", database=conn.schema).render_as_string()
        hook.get_uri = lambda: uri
    return hook, conn


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


def check_source_query(config: Mapping[str, Any], conn_id: str) -> list[str]:
    """Run the zero-row query through ``conn_id``'s own database hook; return its columns.

    Also checks that the configured ``smi_columns`` are among them. Errors name
    the source connection and database (never its password) and quote the
    database's own message.
    """
    sql = zero_row_query(config)
    hook, conn = source_hook(conn_id)
    where = describe_source(conn)
    try:
        hook.get_records(sql)
        columns = [d[0] for d in hook.last_description or ()]
    except Exception as err:
        text = str(getattr(err, "orig", None) or err).strip()
        reason = _scrub(text.splitlines()[0] if text else type(err).__name__, conn)
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
