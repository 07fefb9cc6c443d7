"""The model version a publication serves (e.g. a prediction service's commit id).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

A prediction service is rolled to a new model version when a run succeeds;
recording which version it serves makes "what is deployed" a query, not a
guess from the location. Existing rows get NULL. Skipped if present, like 0002.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("cpsign_model_artifacts")}
    if "published_version" not in present:
        with op.batch_alter_table("cpsign_model_artifacts") as batch:
            batch.add_column(sa.Column("published_version", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cpsign_model_artifacts") as batch:
        batch.drop_column("published_version")
