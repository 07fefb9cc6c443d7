"""Validation metrics of a model and the quality gate's verdict on it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

The ``validate`` pipeline writes ``/metrics.json`` (error rate, efficiency, ...)
next to each aggregated model; the training run stores it as canonical JSON in
``metrics`` and the quality gate's verdict (``passed`` / ``held_back``) and its
reason in ``quality`` and ``quality_reason``. Existing rows get NULL (no metrics,
never gated). Columns that already exist are skipped, like 0002 and 0003.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("cpsign_model_artifacts")}
    columns = [
        sa.Column("metrics", LongText, nullable=True),
        sa.Column("quality", sa.String(16), nullable=True),
        sa.Column("quality_reason", LongText, nullable=True),
    ]
    missing = [c for c in columns if c.name not in present]
    if missing:
        with op.batch_alter_table("cpsign_model_artifacts") as batch:
            for column in missing:
                batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("cpsign_model_artifacts") as batch:
        for name in ("quality_reason", "quality", "metrics"):
            batch.drop_column(name)
