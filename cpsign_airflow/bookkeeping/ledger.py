"""TrainingLedger: the Python API over the bookkeeping store.

Every method is one transaction, re-run whole after a lost connection (see
:func:`~cpsign_airflow.bookkeeping.engine.run_transaction`), so each is written
to be idempotent: inserts look for their key first (:func:`~cpsign_airflow.
bookkeeping.store.upsert`) and unique constraints catch a concurrent writer;
status changes are conditional updates. Input is checked before the first
statement (batches as the typed records of :mod:`~cpsign_airflow.bookkeeping.
validation`), and all SQL is SQLAlchemy Core with bound parameters.

The methods live in one module per area, combined here:

* :mod:`~cpsign_airflow.bookkeeping.workflows`: workflows and pipeline deployments;
* :mod:`~cpsign_airflow.bookkeeping.runs`: training runs and their outcomes;
* :mod:`~cpsign_airflow.bookkeeping.artifacts`: a run's jobs, models and publications;
* :mod:`~cpsign_airflow.bookkeeping.quality`: the quality gate's verdicts and baselines;
* :mod:`~cpsign_airflow.bookkeeping.store`: the keyed upsert, queries, row → record, locks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from cpsign_airflow.bookkeeping.artifacts import ArtifactsPart
from cpsign_airflow.bookkeeping.engine import (
    RetryPolicy,
    describe_url,
    engine_from_url,
    run_transaction,
)
from cpsign_airflow.bookkeeping.quality import QualityPart
from cpsign_airflow.bookkeeping.runs import OPEN_STATUSES, RunsPart
from cpsign_airflow.bookkeeping.store import lock_workflow as _lock_workflow
from cpsign_airflow.bookkeeping.validation import JOB_FIELDS
from cpsign_airflow.bookkeeping.workflows import WorkflowsPart

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine

    from cpsign_airflow.bookkeeping.schema import UpgradeResult

__all__ = ["JOB_FIELDS", "OPEN_STATUSES", "TrainingLedger"]

T = TypeVar("T")


class TrainingLedger(WorkflowsPart, RunsPart, ArtifactsPart, QualityPart):
    """Record of workflows, pipeline deployments, training runs, their jobs and models.

    In Airflow get it from :meth:`BookkeepingHook.get_ledger
    <cpsign_airflow.bookkeeping.hook.BookkeepingHook.get_ledger>` (a connection
    of type mysql or sqlite); elsewhere use :meth:`from_url`. The schema must be
    at the newest revision (:meth:`upgrade_schema`); the first call checks.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        target: str | None = None,
        retry: RetryPolicy | None = None,
    ):
        self.engine = engine
        self.target = target or describe_url(engine.url)
        self.retry = retry or RetryPolicy()
        self._schema_checked = False

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_url(cls, url: URL | str, *, retry: RetryPolicy | None = None) -> TrainingLedger:
        """Ledger on a SQLAlchemy URL (tests, demo, CLI)."""
        return cls(engine_from_url(url), target=describe_url(url), retry=retry)

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()

    def __enter__(self) -> TrainingLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    # ----------------------------------------------------------------- schema

    def upgrade_schema(self, revision: str = "head") -> UpgradeResult:
        """Create or upgrade the schema; safe to call on every setup."""
        from cpsign_airflow.bookkeeping.schema import upgrade

        result = upgrade(self.engine, revision, target=self.target)
        self._schema_checked = False
        return result

    def schema_revision(self) -> str | None:
        from cpsign_airflow.bookkeeping.schema import current_revision_on

        return self._tx("reading the schema revision", current_revision_on, check_schema=False)

    # ----------------------------------------------------------------- transactions, locks

    def _tx(
        self,
        what: str,
        unit: Callable[[Connection], T],
        *,
        check_schema: bool = True,
        isolation: str | None = None,
    ) -> T:
        def checked(conn: Connection) -> T:
            if check_schema and not self._schema_checked:
                from cpsign_airflow.bookkeeping.schema import require_head

                require_head(conn, self.target)
            return unit(conn)

        engine = self.engine
        if isolation is not None:
            engine = engine.execution_options(isolation_level=isolation)  # type: ignore[assignment]
        result = run_transaction(engine, checked, target=self.target, what=what, retry=self.retry)
        if check_schema:
            self._schema_checked = True
        return result

    def _lock(self, conn: Connection, workflow_id: int) -> None:
        """The workflow's lock (:func:`~cpsign_airflow.bookkeeping.store.lock_workflow`),
        looked up here when taken, so a test can hold a decision at this point."""
        _lock_workflow(conn, workflow_id)
