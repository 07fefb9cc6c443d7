"""Publication of model artifacts: status, target kind, target URL, error, time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Publication covers the upload to a model store and a deployed prediction
service. Existing artifacts become ``unpublished``. Columns that already exist are
skipped, so a run cut off half way is completed by the next one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("cpsign_model_artifacts")}
    columns = [
        sa.Column(
            "publication_status", sa.String(16), nullable=False, server_default="unpublished"
        ),
        sa.Column("publication_target", sa.String(32), nullable=True),
        sa.Column("publication_url", LongText, nullable=True),
        sa.Column("publication_error", LongText, nullable=True),
        sa.Column("published_at", Timestamp, nullable=True),
    ]
    missing = [c for c in columns if c.name not in present]
    if missing:
        with op.batch_alter_table("cpsign_model_artifacts") as batch:
            for column in missing:
                batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("cpsign_model_artifacts") as batch:
        batch.drop_column("published_at")
        batch.drop_column("publication_error")
        batch.drop_column("publication_url")
        batch.drop_column("publication_target")
        batch.drop_column("publication_status")
