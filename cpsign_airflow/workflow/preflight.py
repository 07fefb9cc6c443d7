"""Pre-flight check of a configuration's source-database query, before anything is committed.

A training run's first stage queries the source database (ChEMBL in the
original). A typo in that SQL used to surface an hour later as a failed
ingestion job; here it fails the DAG run before the config commit, with the
database's own error message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

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


def check_source_query(config: Mapping[str, Any], conn_id: str) -> list[str]:
    """Run the zero-row query on ``conn_id``; return the columns it would produce.

    Also checks that the configured ``smi_columns`` are among them.
    """
    from sqlalchemy import text

    from cpsign_airflow.bookkeeping.engine import engine_from_conn_id

    sql = zero_row_query(config)
    try:
        engine, target = engine_from_conn_id(conn_id)
    except Exception as err:
        raise PreflightError(
            f"Pre-flight needs the Airflow connection {conn_id!r} to the source database "
            f"({err}); create it, or trigger with preflight disabled"
        ) from None
    try:
        with engine.connect() as conn:
            columns = list(conn.execute(text(sql)).keys())
    except Exception as err:
        reason = str(getattr(err, "orig", err)).splitlines()[0]
        raise PreflightError(
            f"preprocessing.query.database_query does not run on {target}: {reason}"
        ) from None
    finally:
        engine.dispose()
    wanted = ((config.get("preprocessing") or {}).get("query") or {}).get("smi_columns") or []
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise PreflightError(
            f"preprocessing.query.smi_columns: {missing} not among the query's columns {columns}"
        )
    log.info("Pre-flight: the source query runs on %s and yields columns %s", target, columns)
    return columns
