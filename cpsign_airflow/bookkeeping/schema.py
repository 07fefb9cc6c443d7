"""Create or upgrade the bookkeeping schema with the packaged Alembic migrations.

Safe on every setup: at head it does nothing, and when two setups migrate the
same database at once the loser's failure (table or column already there) is
recognised by re-reading the version and waiting for the winner to finish.
Alembic keeps its own version table, ``cpsign_alembic_version``, so it never
meets another application's ``alembic_version`` in a shared database.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cpsign_airflow.bookkeeping.engine import error_summary, is_transient
from cpsign_airflow.bookkeeping.errors import SchemaMigrationError, SchemaNotReady

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

VERSION_TABLE = "cpsign_alembic_version"
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")


@dataclass(frozen=True)
class UpgradeResult:
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic config for the packaged migrations; no ini file needed."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """Newest revision shipped with this provider."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> list[str]:
    """All shipped revisions, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def current_revision_on(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def current_revision(engine: Engine) -> str | None:
    """Revision the database is at; None for a database without the schema."""
    with engine.connect() as conn:
        return current_revision_on(conn)


def upgrade(
    engine: Engine, revision: str = "head", *, target: str = "", stall_retries: int = 5
) -> UpgradeResult:
    """Upgrade the schema to ``revision`` (default: newest). Idempotent and concurrency-safe.

    MySQL commits each DDL statement on its own, so a concurrent migrator can
    see half of another's work; the one that fails re-reads the version, and
    retries while the other makes progress. It gives up only after the version
    stays put through ``stall_retries`` pauses.
    """
    from alembic import command

    want = head_revision() if revision == "head" else revision
    stalls = 0
    before_all: str | None = None
    first = True
    while True:
        before: str | None = None
        try:
            with engine.begin() as conn:
                before = current_revision_on(conn)
                if first:
                    before_all, first = before, False
                if before != want:
                    log.info("Bookkeeping schema of %s: %s -> %s", target, before, want)
                    command.upgrade(alembic_config(conn), revision)
            after = current_revision(engine)
            return UpgradeResult(before_all, after)
        except Exception as exc:
            now = _revision_or_none(engine)
            if now == want:
                log.info("Bookkeeping schema of %s reached %s by a concurrent run", target, want)
                return UpgradeResult(before_all, now)
            if now != before and not is_transient(exc):
                stalls = 0  # someone else is migrating; follow them
            else:
                stalls += 1
            if stalls > stall_retries:
                raise SchemaMigrationError(
                    f"Upgrading the bookkeeping schema of {target or 'the database'} to {want} "
                    f"failed at revision {now}: {error_summary(exc)}"
                ) from exc
            pause = min(5.0, 0.2 * 2 ** (stalls - 1)) if stalls else 0.05
            log.warning(
                "Bookkeeping schema upgrade of %s at %s failed (%s); retrying in %.2fs",
                target,
                now,
                error_summary(exc),
                pause,
            )
            time.sleep(pause)


def _revision_or_none(engine: Engine) -> str | None:
    try:
        return current_revision(engine)
    except Exception:  # the connection itself may be what failed
        return None


def require_head(connection: Connection, target: str) -> None:
    """Fail clearly when the schema is missing or of another version than this code."""
    from sqlalchemy import inspect

    if not inspect(connection).has_table(VERSION_TABLE):
        raise SchemaNotReady(
            f"Bookkeeping database {target} has no bookkeeping schema; create it with "
            "`python -m cpsign_airflow.bookkeeping upgrade --conn-id <conn>` "
            "or the BookkeepingSchemaOperator"
        )
    current = current_revision_on(connection)
    head = head_revision()
    if current == head:
        return
    if current in known_revisions():
        raise SchemaNotReady(
            f"Bookkeeping schema of {target} is at revision {current}, this provider needs "
            f"{head}; upgrade it with `python -m cpsign_airflow.bookkeeping upgrade` "
            "or the BookkeepingSchemaOperator"
        )
    raise SchemaNotReady(
        f"Bookkeeping schema of {target} is at revision {current!r}, unknown to this "
        f"provider (newest {head}); upgrade cpsign-airflow"
    )
