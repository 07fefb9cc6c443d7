"""What the ledger's parts share: the keyed upsert, queries, row → record, locks.

Every function here runs inside the caller's transaction (a ``Connection`` from
:meth:`TrainingLedger._tx <cpsign_airflow.bookkeeping.ledger.TrainingLedger._tx>`)
and never commits. Times are stored as naive UTC (:func:`to_db`), which is
portable across DATETIME (MySQL) and text (SQLite).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, Table, insert, select, update

from cpsign_airflow.bookkeeping.errors import BookkeepingInputError, RunNotFound
from cpsign_airflow.bookkeeping.records import (
    ArtifactRecord,
    DeploymentRecord,
    JobRecord,
    RunRecord,
    WorkflowRecord,
)
from cpsign_airflow.bookkeeping.tables import pipeline_deployments as deps
from cpsign_airflow.bookkeeping.tables import training_runs as runs
from cpsign_airflow.bookkeeping.tables import workflows

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine, Row

T = TypeVar("T")

Values = Mapping[str, Any]


class LedgerPart:
    """Base of the ledger's parts (runs, artifacts, quality, workflows): what they use of
    :class:`~cpsign_airflow.bookkeeping.ledger.TrainingLedger`, which combines them."""

    engine: Engine

    if TYPE_CHECKING:

        def _tx(
            self,
            what: str,
            unit: Callable[[Connection], T],
            *,
            check_schema: bool = True,
            isolation: str | None = None,
        ) -> T: ...

        def _ensure_workflow(
            self, conn: Connection, name: str, project: str | None, config_repo: str | None
        ) -> WorkflowRecord: ...

        def _lock(self, conn: Connection, workflow_id: int) -> None: ...


# --------------------------------------------------------------------------- the keyed upsert


def upsert(
    conn: Connection,
    table: Table,
    key: Values,
    *,
    insert_values: Values | Callable[[], Values],
    update_values: Values | Callable[[Row], Values] | None = None,
    query: Select | None = None,
) -> tuple[Row, bool]:
    """Select ``table``'s row by its idempotency ``key``; insert it if absent, else update it.

    ``key`` maps columns of a unique constraint to values (the row's identity);
    ``insert_values`` are the other columns of a new row (a callable is called only
    when the row is new, e.g. to create its workflow first); ``update_values`` the
    columns to change on an existing row: a callable gets the row and may raise (a
    conflicting retry) or return nothing to change. ``query`` (default
    ``select(table)``) is what is selected and returned, e.g. with a joined name.

    Returns (the row as ``query`` reads it after the write, True if it was inserted).
    Runs in the caller's transaction on SQLite and MySQL/MariaDB alike: no
    dialect-specific upsert. A concurrent writer that inserts the same key between the
    select and the insert makes the insert fail on the unique constraint
    (``IntegrityError``); :func:`~cpsign_airflow.bookkeeping.engine.run_transaction`
    then re-runs the whole transaction, whose select finds that row.
    """
    where = [table.c[column] == value for column, value in key.items()]
    query = (select(table) if query is None else query).where(*where)
    row = conn.execute(query).first()
    if row is None:
        values = insert_values() if callable(insert_values) else insert_values
        conn.execute(insert(table).values({**values, **key}))
        return conn.execute(query).one(), True
    changes = update_values(row) if callable(update_values) else update_values
    if not changes:
        return row, False
    conn.execute(update(table).where(table.c.id == row.id).values(**changes))
    return conn.execute(query).one(), False


def set_values(values: Values) -> dict[str, Any]:
    """The values given (not None): a value left out keeps what an earlier call recorded."""
    return {k: v for k, v in values.items() if v is not None}


def dedupe(items: Iterable[T], key: Callable[[T], Any]) -> list[T]:
    """Keep the last of items with the same key, in first-seen order."""
    out: dict[Any, T] = {}
    for item in items:
        out[key(item)] = item
    return list(out.values())


# --------------------------------------------------------------------------- times, limits


def to_db(value: datetime | None) -> datetime | None:
    """Stored as naive UTC: portable across DATETIME (MySQL) and text (SQLite)."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def from_db(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def check_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise BookkeepingInputError("limit", f"must be an integer from 1 to 10000, got {limit!r}")
    return limit


# --------------------------------------------------------------------------- queries, locks


def run_query() -> Select:
    return select(runs, workflows.c.name.label("workflow_name")).join(
        workflows, workflows.c.id == runs.c.workflow_id
    )


def deployment_query() -> Select:
    return select(deps, workflows.c.name.label("workflow_name")).join(
        workflows, workflows.c.id == deps.c.workflow_id
    )


def get_run(conn: Connection, rid: int) -> RunRecord:
    row = conn.execute(run_query().where(runs.c.id == rid)).first()
    if row is None:
        raise RunNotFound(f"No training run {rid} in the bookkeeping store")
    return run_record(row)


def require_run(conn: Connection, rid: int) -> None:
    if conn.execute(select(runs.c.id).where(runs.c.id == rid)).first() is None:
        raise RunNotFound(f"No training run {rid} in the bookkeeping store")


def lock_workflow(conn: Connection, workflow_id: int) -> None:
    """Hold the workflow's lock until the transaction ends; the decisions of one workflow wait.

    MySQL/MariaDB: the workflow's row ``FOR UPDATE``. SQLite has no row locks: a write
    to the row (nothing changes) makes the driver begin the transaction and takes the
    database's write lock, which every other writer waits for (busy timeout).
    """
    if conn.dialect.name == "sqlite":
        conn.execute(
            update(workflows)
            .where(workflows.c.id == workflow_id)
            .values(updated_at=workflows.c.updated_at)
        )
    else:
        conn.execute(
            select(workflows.c.id).where(workflows.c.id == workflow_id).with_for_update()
        ).first()


# --------------------------------------------------------------------------- row → record


def workflow_record(row: Row) -> WorkflowRecord:
    return WorkflowRecord(
        id=row.id,
        name=row.name,
        project=row.project,
        config_repo=row.config_repo,
        created_at=from_db(row.created_at),  # type: ignore[arg-type]
        updated_at=from_db(row.updated_at),  # type: ignore[arg-type]
    )


def run_record(row: Row) -> RunRecord:
    return RunRecord(
        id=row.id,
        workflow=row.workflow_name,
        status=row.status,
        trigger_kind=row.trigger_kind,
        configuration_json=row.configuration,
        config_sha256=row.config_sha256,
        dag_id=row.dag_id,
        airflow_run_id=row.airflow_run_id,
        task_id=row.task_id,
        commit_id=row.commit_id,
        commit_set_id=row.commit_set_id,
        error=row.error,
        started_at=from_db(row.started_at),  # type: ignore[arg-type]
        committed_at=from_db(row.committed_at),
        finished_at=from_db(row.finished_at),
    )


def job_record(row: Row) -> JobRecord:
    return JobRecord(
        id=row.id,
        run_id=row.run_id,
        pipeline=row.pipeline,
        job_id=row.job_id,
        state=row.state,
        reason=row.reason,
        log_tail=row.log_tail,
        data_processed=row.data_processed,
        data_skipped=row.data_skipped,
        data_failed=row.data_failed,
        data_total=row.data_total,
        started_at=from_db(row.started_at),
        finished_at=from_db(row.finished_at),
        updated_at=from_db(row.updated_at),  # type: ignore[arg-type]
    )


def artifact_record(row: Row) -> ArtifactRecord:
    return ArtifactRecord(
        id=row.id,
        run_id=row.run_id,
        model_name=row.model_name,
        location=row.location,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        publication_status=row.publication_status,
        publication_target=row.publication_target,
        publication_url=row.publication_url,
        publication_error=row.publication_error,
        published_at=from_db(row.published_at),
        published_version=row.published_version,
        recorded_at=from_db(row.recorded_at),  # type: ignore[arg-type]
        metrics=json.loads(row.metrics) if row.metrics else None,
        quality=row.quality,
        quality_reason=row.quality_reason,
        content_sha256=row.content_sha256,
        verdict_run_id=row.verdict_run_id,
    )


def deployment_record(row: Row) -> DeploymentRecord:
    return DeploymentRecord(
        id=row.id,
        workflow=row.workflow_name,
        pipeline=row.pipeline,
        spec_hash=row.spec_hash,
        action=row.action,
        dag_id=row.dag_id,
        airflow_run_id=row.airflow_run_id,
        recorded_at=from_db(row.recorded_at),  # type: ignore[arg-type]
    )
