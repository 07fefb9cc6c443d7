"""Alembic migrations of the bookkeeping schema (run via cpsign_airflow.bookkeeping.schema)."""
