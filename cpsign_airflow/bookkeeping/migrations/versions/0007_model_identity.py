"""A model's identity beside its sha256, and which run's verdict it carries.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

``cpsign_model_artifacts.content_sha256`` hashes the model jar without its build
metadata (the manifest's ``Bundle-Version``, ``cpsign.json``'s ``modelVersion``
and ``buildTimestamp``, zip entry times): two trainings of the same data with the
same seed have different sha256 but the same content hash. ``verdict_run_id``
names the earlier run whose quality verdict a model with an identity already
recorded carries (NULL: judged on its own metrics). Existing rows get NULL.
Columns that already exist are skipped, like 0002-0005.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("cpsign_model_artifacts")}
    columns = [
        sa.Column("content_sha256", sa.String(64), nullable=True),
        sa.Column("verdict_run_id", sa.Integer, nullable=True),
    ]
    missing = [c for c in columns if c.name not in present]
    if missing:
        with op.batch_alter_table("cpsign_model_artifacts") as batch:
            for column in missing:
                batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("cpsign_model_artifacts") as batch:
        for name in ("verdict_run_id", "content_sha256"):
            batch.drop_column(name)
