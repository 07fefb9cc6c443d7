"""Runs whose configuration was rejected are recorded too.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Every triggered run gets a row: a configuration that fails validation is recorded
with status ``rejected`` and the validation errors in ``error`` (nothing was
committed, so it has no commit). The status CHECK constraint is widened; it is
left alone when it already allows ``rejected``, so a half-applied upgrade can run again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: The constraint's name differs by backend (0001's explicit name went through the
#: naming convention on some): it is found by what it checks, and kept.
NAME = "ck_cpsign_training_runs_status"
BEFORE = "status IN ('pending', 'committed', 'running', 'succeeded', 'failed')"
AFTER = "status IN ('pending', 'committed', 'running', 'succeeded', 'failed', 'rejected')"


def _status_check() -> tuple[str, str] | None:
    """(name, SQL text) of the status CHECK constraint, or None."""
    for check in sa.inspect(op.get_bind()).get_check_constraints("cpsign_training_runs"):
        text = str(check.get("sqltext") or "")
        if "status" in text.replace("`", "").replace('"', "").split(" ", 1)[0] and check.get(
            "name"
        ):
            return check["name"], text
    return None


def _replace(sqltext: str) -> None:
    current = _status_check()
    if current is not None and ("'rejected'" in current[1]) == ("'rejected'" in sqltext):
        return
    name = current[0] if current else NAME
    with op.batch_alter_table("cpsign_training_runs") as batch:
        if current is not None:
            batch.drop_constraint(op.f(name), type_="check")
        batch.create_check_constraint(op.f(name), sa.text(sqltext))


def upgrade() -> None:
    _replace(AFTER)


def downgrade() -> None:
    op.execute(
        sa.text("UPDATE cpsign_training_runs SET status = 'failed' WHERE status = 'rejected'")
    )
    _replace(BEFORE)
