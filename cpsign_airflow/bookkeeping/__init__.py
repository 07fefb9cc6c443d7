"""Bookkeeping of CPSign training workflows in MySQL/MariaDB (or SQLite for a laptop).

Records which configuration produced which model, when a run finished and why
it failed: workflows, pipeline deployments, training runs, their Pachyderm jobs
and model artifacts. Separate from Airflow's metadata database, which tasks in
Airflow 3 must not touch. Names are loaded lazily so that importing this
package (from a DAG file, via the operators) costs nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "TrainingLedger": "cpsign_airflow.bookkeeping.ledger",
    "TaskKey": "cpsign_airflow.bookkeeping.records",
    "RunRecord": "cpsign_airflow.bookkeeping.records",
    "JobRecord": "cpsign_airflow.bookkeeping.records",
    "ArtifactRecord": "cpsign_airflow.bookkeeping.records",
    "DeploymentRecord": "cpsign_airflow.bookkeeping.records",
    "WorkflowRecord": "cpsign_airflow.bookkeeping.records",
    "DEFAULT_CONN_ID": "cpsign_airflow.bookkeeping.records",
    "RetryPolicy": "cpsign_airflow.bookkeeping.engine",
    "upgrade": "cpsign_airflow.bookkeeping.schema",
    "head_revision": "cpsign_airflow.bookkeeping.schema",
    "BookkeepingError": "cpsign_airflow.bookkeeping.errors",
    "BookkeepingInputError": "cpsign_airflow.bookkeeping.errors",
    "BookkeepingConfigError": "cpsign_airflow.bookkeeping.errors",
    "BookkeepingUnavailable": "cpsign_airflow.bookkeeping.errors",
    "SchemaNotReady": "cpsign_airflow.bookkeeping.errors",
    "SchemaMigrationError": "cpsign_airflow.bookkeeping.errors",
    "RunNotFound": "cpsign_airflow.bookkeeping.errors",
    "ArtifactNotFound": "cpsign_airflow.bookkeeping.errors",
    "RunStateConflict": "cpsign_airflow.bookkeeping.errors",
}

__all__ = [
    "ArtifactNotFound",
    "ArtifactRecord",
    "BookkeepingConfigError",
    "BookkeepingError",
    "BookkeepingInputError",
    "BookkeepingUnavailable",
    "DEFAULT_CONN_ID",
    "DeploymentRecord",
    "JobRecord",
    "RetryPolicy",
    "RunNotFound",
    "RunRecord",
    "RunStateConflict",
    "SchemaMigrationError",
    "SchemaNotReady",
    "TaskKey",
    "TrainingLedger",
    "WorkflowRecord",
    "head_revision",
    "upgrade",
]

if TYPE_CHECKING:
    from cpsign_airflow.bookkeeping.engine import RetryPolicy
    from cpsign_airflow.bookkeeping.errors import (
        ArtifactNotFound,
        BookkeepingConfigError,
        BookkeepingError,
        BookkeepingInputError,
        BookkeepingUnavailable,
        RunNotFound,
        RunStateConflict,
        SchemaMigrationError,
        SchemaNotReady,
    )
    from cpsign_airflow.bookkeeping.ledger import TrainingLedger
    from cpsign_airflow.bookkeeping.records import (
        DEFAULT_CONN_ID,
        ArtifactRecord,
        DeploymentRecord,
        JobRecord,
        RunRecord,
        TaskKey,
        WorkflowRecord,
    )
    from cpsign_airflow.bookkeeping.schema import head_revision, upgrade


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)
