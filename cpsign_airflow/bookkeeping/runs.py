"""Training runs and their outcomes: pending → committed → running → succeeded / failed,
or rejected; part of :class:`~cpsign_airflow.bookkeeping.ledger.TrainingLedger`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from cpsign_airflow.bookkeeping import records as r
from cpsign_airflow.bookkeeping.errors import BookkeepingInputError, RunStateConflict
from cpsign_airflow.bookkeeping.records import RunRecord, TaskKey
from cpsign_airflow.bookkeeping.store import (
    LedgerPart,
    check_limit,
    get_run,
    run_query,
    run_record,
    to_db,
    upsert,
)
from cpsign_airflow.bookkeeping.tables import training_runs as runs
from cpsign_airflow.bookkeeping.tables import workflows
from cpsign_airflow.bookkeeping.validation import check_list

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

log = logging.getLogger("cpsign_airflow.bookkeeping.ledger")

OPEN_STATUSES = ("pending", "committed", "running")
_FINISH_FROM = {
    "succeeded": ("committed", "running"),
    "failed": OPEN_STATUSES,
    "rejected": ("pending",),
}


class RunsPart(LedgerPart):
    def record_pending_run(
        self,
        workflow: str,
        configuration: Mapping[str, Any] | str,
        *,
        trigger_kind: str = "manual",
        task: TaskKey | None = None,
        project: str | None = None,
        config_repo: str | None = None,
    ) -> int:
        """Record a run before its configuration is committed; return its id.

        Keyed by ``task`` (the Airflow task instance): a retry returns the id
        the first try recorded. Without ``task`` each call is a new run.
        """
        unit = self._pending_unit(workflow, configuration, trigger_kind, task, project, config_repo)
        return self._tx(f"recording a pending run of {workflow}", unit)

    def _pending_unit(
        self,
        workflow: str,
        configuration: Mapping[str, Any] | str,
        trigger_kind: str,
        task: TaskKey | None,
        project: str | None,
        config_repo: str | None,
    ) -> Callable[[Connection], int]:
        """Checks the inputs (before any write) and returns the unit that records the run."""
        workflow = r.check_workflow(workflow)
        trigger_kind = r.check_choice("trigger_kind", trigger_kind, r.TRIGGER_KINDS)
        text, sha = r.canonical_configuration(configuration)
        project = r.check_str("project", project, max_len=r.NAME_MAX, optional=True)
        config_repo = r.check_str("config_repo", config_repo, max_len=r.NAME_MAX, optional=True)
        if task is not None and not isinstance(task, TaskKey):
            raise BookkeepingInputError("task", f"must be a TaskKey, got {type(task).__name__}")
        task = task or TaskKey.one_off()

        def same_run(row: Row) -> dict[str, Any]:
            """A retry of the task that recorded ``row``: the same run, or a conflict."""
            rec = run_record(row)
            if rec.workflow != workflow or rec.config_sha256 != sha:
                raise RunStateConflict(
                    f"Task {task.dag_id}/{task.run_id}/{task.task_id} already recorded run "
                    f"{rec.id} of workflow {rec.workflow} with configuration "
                    f"sha256 {rec.config_sha256}; this retry has workflow {workflow}, "
                    f"sha256 {sha}"
                )
            return {}  # nothing to change

        def unit(conn: Connection) -> int:
            def new_run() -> dict[str, Any]:
                wf = self._ensure_workflow(conn, workflow, project, config_repo)
                now = to_db(r.utcnow())
                return {
                    "workflow_id": wf.id,
                    "dag_id": task.dag_id,
                    "airflow_run_id": task.run_id,
                    "task_id": task.task_id,
                    "map_index": task.map_index,
                    "trigger_kind": trigger_kind,
                    "configuration": text,
                    "config_sha256": sha,
                    "status": "pending",
                    "started_at": now,
                    "updated_at": now,
                }

            row, inserted = upsert(
                conn,
                runs,
                {"task_key": task.digest()},
                insert_values=new_run,
                update_values=same_run,
                query=run_query(),
            )
            if not inserted:
                log.info("Run %s already recorded by this task instance; reusing it", row.id)
            return int(row.id)

        return unit

    def record_rejected_run(
        self,
        workflow: str,
        configuration: Mapping[str, Any] | str,
        error: str,
        *,
        trigger_kind: str = "manual",
        task: TaskKey | None = None,
    ) -> int:
        """Record a run whose configuration was refused, as ``rejected`` with the reasons.

        Keyed by ``task`` like :meth:`record_pending_run`, so a retried
        validation records one row. One transaction: a lost connection leaves
        no run, never a ``pending`` one.
        """
        pending = self._pending_unit(workflow, configuration, trigger_kind, task, None, None)
        reject = self._finish_unit("rejected", error)

        def unit(conn: Connection) -> int:
            run_id = pending(conn)
            reject(conn, run_id)
            return run_id

        return self._tx(f"recording a rejected run of {workflow}", unit)

    def mark_committed(
        self, run_id: int | str, commit_id: str, commit_set_id: str | None = None
    ) -> RunRecord:
        """pending → committed, with the config commit. Repeating it with the same commit is a no-op."""
        rid = r.check_run_id(run_id)
        commit_id = r.check_str("commit_id", commit_id, max_len=r.ID_MAX)  # type: ignore[assignment]
        commit_set_id = r.check_str("commit_set_id", commit_set_id, max_len=r.ID_MAX, optional=True)

        def unit(conn: Connection) -> RunRecord:
            now = to_db(r.utcnow())
            changed, rec = _transition(
                conn,
                rid,
                ("pending",),
                status="committed",
                commit_id=commit_id,
                commit_set_id=commit_set_id,
                committed_at=now,
                updated_at=now,
            )
            if changed:
                return rec
            if rec.commit_id == commit_id and commit_set_id in (None, rec.commit_set_id):
                return rec
            raise RunStateConflict(
                f"Run {rid} is {rec.status}"
                + (f" with commit {rec.commit_id}" if rec.commit_id else " and was never committed")
                + f"; refusing to record commit {commit_id}"
            )

        return self._tx(f"marking run {rid} committed", unit)

    def mark_running(self, run_id: int | str) -> RunRecord:
        """committed → running (its pipeline jobs started). Idempotent."""
        rid = r.check_run_id(run_id)

        def unit(conn: Connection) -> RunRecord:
            changed, rec = _transition(
                conn, rid, ("committed",), status="running", updated_at=to_db(r.utcnow())
            )
            if changed or rec.status in ("running", "succeeded"):
                return rec
            raise RunStateConflict(f"Run {rid} is {rec.status}; it cannot start running")

        return self._tx(f"marking run {rid} running", unit)

    def finish_run(self, run_id: int | str, status: str, error: str | None = None) -> RunRecord:
        """Finish a run as ``succeeded``, ``failed`` or ``rejected`` (with its error text).

        ``rejected`` is for a run whose configuration failed validation: only
        from ``pending``, since nothing was committed.

        Repeating the same outcome is a no-op that keeps the first error text;
        the opposite outcome raises :class:`RunStateConflict` rather than overwrite.
        """
        rid = r.check_run_id(run_id)
        unit = self._finish_unit(status, error)
        return self._tx(f"finishing run {rid} as {status}", lambda conn: unit(conn, rid))

    def _finish_unit(
        self, status: str, error: str | None
    ) -> Callable[[Connection, int], RunRecord]:
        """Checks the outcome (before any write) and returns the unit that records it."""
        status = r.check_choice("status", status, r.TERMINAL_STATUSES)
        error = r.check_text("error", error)
        if status in ("failed", "rejected") and not error:
            raise BookkeepingInputError("error", f"is required when status is {status!r}")
        if status == "succeeded" and error:
            raise BookkeepingInputError("error", "must be empty when status is 'succeeded'")

        def unit(conn: Connection, rid: int) -> RunRecord:
            now = to_db(r.utcnow())
            changed, rec = _transition(
                conn,
                rid,
                _FINISH_FROM[status],
                status=status,
                error=error,
                finished_at=now,
                updated_at=now,
            )
            if changed or rec.status == status:
                return rec
            raise RunStateConflict(f"Run {rid} is {rec.status}; it cannot be finished as {status}")

        return unit

    def fail_open_runs(
        self, dag_id: str, airflow_run_id: str, error: str, *, map_index: int | None = None
    ) -> list[int]:
        """Mark every unfinished run recorded by one DAG run failed; for failure callbacks.

        With ``map_index`` (>= 0: a task of a mapped task group failed) only the
        run of that expansion: the other workflows of a retraining go on.
        """
        dag_id = r.check_str("dag_id", dag_id, max_len=r.AIRFLOW_ID_MAX)  # type: ignore[assignment]
        airflow_run_id = r.check_str("airflow_run_id", airflow_run_id, max_len=r.AIRFLOW_ID_MAX)  # type: ignore[assignment]
        error = r.check_text("error", error, optional=False)  # type: ignore[assignment]

        def unit(conn: Connection) -> list[int]:
            query = select(runs.c.id).where(
                runs.c.dag_id == dag_id,
                runs.c.airflow_run_id == airflow_run_id,
                runs.c.status.in_(OPEN_STATUSES),
            )
            if map_index is not None and map_index >= 0:
                query = query.where(runs.c.map_index == map_index)
            ids = conn.execute(query).scalars()
            return _fail_open(conn, list(ids), error)

        return self._tx(f"failing the open runs of {dag_id}/{airflow_run_id}", unit)

    def fail_runs_by_commit_set(self, commit_set_ids: Iterable[str], error: str) -> list[int]:
        """Mark every unfinished run whose commit set is one of ``commit_set_ids`` failed.

        For runs whose pipeline jobs were killed from outside, e.g. by a pipeline
        update (a job's id is its commit set's id). Returns the ids of the runs
        it failed; runs already finished keep their outcome.
        """
        ids = [
            r.check_str(f"commit_set_ids[{i}]", value, max_len=r.ID_MAX)
            for i, value in enumerate(check_list("commit_set_ids", commit_set_ids))
        ]
        error = r.check_text("error", error, optional=False)  # type: ignore[assignment]
        if not error:
            raise BookkeepingInputError("error", "must say why the runs failed")
        if not ids:
            return []

        def unit(conn: Connection) -> list[int]:
            found = conn.execute(
                select(runs.c.id).where(
                    runs.c.commit_set_id.in_(ids), runs.c.status.in_(OPEN_STATUSES)
                )
            ).scalars()
            return _fail_open(conn, list(found), error)

        return self._tx(f"failing the open runs of commit sets {', '.join(ids)}", unit)  # type: ignore[arg-type]

    def get_run(self, run_id: int | str) -> RunRecord:
        rid = r.check_run_id(run_id)
        return self._tx(f"reading run {rid}", lambda conn: get_run(conn, rid))

    def list_runs(
        self, workflow: str | None = None, *, status: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        """Runs, newest first, optionally of one workflow and/or status."""
        if workflow is not None:
            workflow = r.check_workflow(workflow)
        if status is not None:
            r.check_choice("status", status, r.RUN_STATUSES)
        limit = check_limit(limit)
        query = run_query().order_by(runs.c.id.desc()).limit(limit)
        if workflow is not None:
            query = query.where(workflows.c.name == workflow)
        if status is not None:
            query = query.where(runs.c.status == status)
        return self._tx(
            "listing runs", lambda conn: [run_record(row) for row in conn.execute(query)]
        )

    def runs_for_airflow_run(self, dag_id: str, airflow_run_id: str) -> list[RunRecord]:
        """Runs recorded by one DAG run, oldest first."""
        query = (
            run_query()
            .where(runs.c.dag_id == dag_id, runs.c.airflow_run_id == airflow_run_id)
            .order_by(runs.c.id)
        )
        return self._tx(
            "listing runs of a DAG run",
            lambda conn: [run_record(row) for row in conn.execute(query)],
        )

    def latest_successful_run(self, workflow: str) -> RunRecord | None:
        """The most recently finished succeeded run of ``workflow``."""
        workflow = r.check_workflow(workflow)
        query = (
            run_query()
            .where(workflows.c.name == workflow, runs.c.status == "succeeded")
            .order_by(runs.c.finished_at.desc(), runs.c.id.desc())
            .limit(1)
        )

        def unit(conn: Connection) -> RunRecord | None:
            row = conn.execute(query).first()
            return run_record(row) if row else None

        return self._tx(f"reading the latest successful run of {workflow}", unit)

    def latest_successful_configuration(self, workflow: str) -> dict[str, Any] | None:
        """Configuration of the latest succeeded run: what scheduled retraining reuses."""
        run = self.latest_successful_run(workflow)
        return run.configuration if run else None


def _transition(
    conn: Connection, rid: int, from_statuses: tuple[str, ...], **values: Any
) -> tuple[bool, RunRecord]:
    """Set ``values`` on run ``rid`` if its status is one of ``from_statuses`` (a
    conditional update: a repeated or concurrent transition changes nothing).
    Returns (whether it changed, the run as it is now)."""
    changed = conn.execute(
        update(runs).where(runs.c.id == rid, runs.c.status.in_(from_statuses)).values(**values)
    ).rowcount
    return bool(changed), get_run(conn, rid)


def _fail_open(conn: Connection, run_ids: list[Any], error: str) -> list[int]:
    """Mark those of ``run_ids`` still open failed with ``error``; the ids it changed.

    Each row is updated on the condition that it is still open, so a run that
    finished meanwhile keeps its outcome.
    """
    now = to_db(r.utcnow())
    failed = []
    for rid in run_ids:
        if conn.execute(
            update(runs)
            .where(runs.c.id == rid, runs.c.status.in_(OPEN_STATUSES))
            .values(status="failed", error=error, finished_at=now, updated_at=now)
        ).rowcount:
            failed.append(int(rid))
    return failed
