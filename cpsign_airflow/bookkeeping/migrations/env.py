"""Alembic environment: runs on the connection that ``schema.upgrade`` passes in."""

from __future__ import annotations

from alembic import context

from cpsign_airflow.bookkeeping.schema import VERSION_TABLE
from cpsign_airflow.bookkeeping.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Run bookkeeping migrations through cpsign_airflow.bookkeeping.schema.upgrade "
        "(or `python -m cpsign_airflow.bookkeeping upgrade`), which passes the connection in"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER much; batch mode recreates tables there when needed.
    render_as_batch=True,
)

with context.begin_transaction():
    context.run_migrations()
