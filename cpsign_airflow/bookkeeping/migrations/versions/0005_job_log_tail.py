"""The tail of a failed job's log, next to pachd's reason.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

pachd's reason for a failed job is ``datum <id> failed``; the line that says why
(CPSign's own error) is in the datum's log. ``cpsign_pipeline_jobs.log_tail``
keeps the last lines of that log for failed jobs, so the record explains itself.
Existing rows get NULL. A column that already exists is skipped, like 0002-0004.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("cpsign_pipeline_jobs")}
    if "log_tail" not in present:
        with op.batch_alter_table("cpsign_pipeline_jobs") as batch:
            batch.add_column(sa.Column("log_tail", LongText, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cpsign_pipeline_jobs") as batch:
        batch.drop_column("log_tail")
