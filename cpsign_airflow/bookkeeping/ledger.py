"""TrainingLedger: the Python API over the bookkeeping store.

Every method is one transaction, re-run whole after a lost connection (see
:func:`~cpsign_airflow.bookkeeping.engine.run_transaction`), so each is written
to be idempotent: inserts look for their key first and unique constraints
catch a concurrent writer; status changes are conditional updates. Input is
checked before the first statement, and all SQL is SQLAlchemy Core with bound
parameters.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from cpsign_airflow.bookkeeping import records as r
from cpsign_airflow.bookkeeping.engine import (
    RetryPolicy,
    describe_url,
    engine_from_url,
    run_transaction,
)
from cpsign_airflow.bookkeeping.errors import (
    ArtifactNotFound,
    BookkeepingInputError,
    RunNotFound,
    RunStateConflict,
)
from cpsign_airflow.bookkeeping.records import (
    ArtifactRecord,
    DeploymentRecord,
    JobRecord,
    RunRecord,
    TaskKey,
    WorkflowRecord,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine, Row

    from cpsign_airflow.bookkeeping.schema import UpgradeResult

log = logging.getLogger(__name__)
T = TypeVar("T")

OPEN_STATUSES = ("pending", "committed", "running")
_FINISH_FROM = {
    "succeeded": ("committed", "running"),
    "failed": OPEN_STATUSES,
    "rejected": ("pending",),
}


def _to_db(value: datetime | None) -> datetime | None:
    """Stored as naive UTC: portable across DATETIME (MySQL) and text (SQLite)."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _from_db(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


class TrainingLedger:
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

    # ----------------------------------------------------------------- workflows

    def ensure_workflow(
        self, name: str, *, project: str | None = None, config_repo: str | None = None
    ) -> WorkflowRecord:
        """Create the workflow if new; update its project or config repo if given and changed."""
        name = r.check_workflow(name)
        project = r.check_str("project", project, max_len=r.NAME_MAX, optional=True)
        config_repo = r.check_str("config_repo", config_repo, max_len=r.NAME_MAX, optional=True)
        return self._tx(
            f"recording workflow {name}",
            lambda conn: self._ensure_workflow(conn, name, project, config_repo),
        )

    def get_workflow(self, name: str) -> WorkflowRecord | None:
        from sqlalchemy import select

        from cpsign_airflow.bookkeeping.tables import workflows

        name = r.check_workflow(name)

        def unit(conn: Connection) -> WorkflowRecord | None:
            row = conn.execute(select(workflows).where(workflows.c.name == name)).first()
            return _workflow_record(row) if row else None

        return self._tx(f"reading workflow {name}", unit)

    def list_workflows(self) -> list[WorkflowRecord]:
        from sqlalchemy import select

        from cpsign_airflow.bookkeeping.tables import workflows

        return self._tx(
            "listing workflows",
            lambda conn: [
                _workflow_record(row)
                for row in conn.execute(select(workflows).order_by(workflows.c.name))
            ],
        )

    def _ensure_workflow(
        self, conn: Connection, name: str, project: str | None, config_repo: str | None
    ) -> WorkflowRecord:
        from sqlalchemy import insert, select, update

        from cpsign_airflow.bookkeeping.tables import workflows

        query = select(workflows).where(workflows.c.name == name)
        row = conn.execute(query).first()
        now = _to_db(r.utcnow())
        if row is None:
            conn.execute(
                insert(workflows).values(
                    name=name,
                    project=project or r.DEFAULT_PROJECT,
                    config_repo=config_repo or r.DEFAULT_CONFIG_REPO,
                    created_at=now,
                    updated_at=now,
                )
            )
            return _workflow_record(conn.execute(query).one())
        changes = {}
        if project and project != row.project:
            changes["project"] = project
        if config_repo and config_repo != row.config_repo:
            changes["config_repo"] = config_repo
        if changes:
            conn.execute(
                update(workflows).where(workflows.c.id == row.id).values(**changes, updated_at=now)
            )
            row = conn.execute(query).one()
        return _workflow_record(row)

    # ----------------------------------------------------------------- runs

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
        key = task.digest()

        def unit(conn: Connection) -> int:
            from sqlalchemy import insert

            from cpsign_airflow.bookkeeping.tables import training_runs as runs

            existing = conn.execute(_run_query().where(runs.c.task_key == key)).first()
            if existing is not None:
                rec = _run_record(existing)
                if rec.workflow != workflow or rec.config_sha256 != sha:
                    raise RunStateConflict(
                        f"Task {task.dag_id}/{task.run_id}/{task.task_id} already recorded run "
                        f"{rec.id} of workflow {rec.workflow} with configuration "
                        f"sha256 {rec.config_sha256}; this retry has workflow {workflow}, "
                        f"sha256 {sha}"
                    )
                log.info("Run %s already recorded by this task instance; reusing it", rec.id)
                return rec.id
            wf = self._ensure_workflow(conn, workflow, project, config_repo)
            now = _to_db(r.utcnow())
            result = conn.execute(
                insert(runs).values(
                    workflow_id=wf.id,
                    dag_id=task.dag_id,
                    airflow_run_id=task.run_id,
                    task_id=task.task_id,
                    map_index=task.map_index,
                    task_key=key,
                    trigger_kind=trigger_kind,
                    configuration=text,
                    config_sha256=sha,
                    status="pending",
                    started_at=now,
                    updated_at=now,
                )
            )
            return int(result.inserted_primary_key[0])

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
            from sqlalchemy import update

            from cpsign_airflow.bookkeeping.tables import training_runs as runs

            now = _to_db(r.utcnow())
            changed = conn.execute(
                update(runs)
                .where(runs.c.id == rid, runs.c.status == "pending")
                .values(
                    status="committed",
                    commit_id=commit_id,
                    commit_set_id=commit_set_id,
                    committed_at=now,
                    updated_at=now,
                )
            ).rowcount
            rec = _get_run(conn, rid)
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
            from sqlalchemy import update

            from cpsign_airflow.bookkeeping.tables import training_runs as runs

            changed = conn.execute(
                update(runs)
                .where(runs.c.id == rid, runs.c.status == "committed")
                .values(status="running", updated_at=_to_db(r.utcnow()))
            ).rowcount
            rec = _get_run(conn, rid)
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
            from sqlalchemy import update

            from cpsign_airflow.bookkeeping.tables import training_runs as runs

            now = _to_db(r.utcnow())
            changed = conn.execute(
                update(runs)
                .where(runs.c.id == rid, runs.c.status.in_(_FINISH_FROM[status]))
                .values(status=status, error=error, finished_at=now, updated_at=now)
            ).rowcount
            rec = _get_run(conn, rid)
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
            from sqlalchemy import select

            from cpsign_airflow.bookkeeping.tables import training_runs as runs

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
            for i, value in enumerate(_check_list("commit_set_ids", commit_set_ids))
        ]
        error = r.check_text("error", error, optional=False)  # type: ignore[assignment]
        if not error:
            raise BookkeepingInputError("error", "must say why the runs failed")
        if not ids:
            return []

        def unit(conn: Connection) -> list[int]:
            from sqlalchemy import select

            from cpsign_airflow.bookkeeping.tables import training_runs as runs

            found = conn.execute(
                select(runs.c.id).where(
                    runs.c.commit_set_id.in_(ids), runs.c.status.in_(OPEN_STATUSES)
                )
            ).scalars()
            return _fail_open(conn, list(found), error)

        return self._tx(f"failing the open runs of commit sets {', '.join(ids)}", unit)

    def get_run(self, run_id: int | str) -> RunRecord:
        rid = r.check_run_id(run_id)
        return self._tx(f"reading run {rid}", lambda conn: _get_run(conn, rid))

    def list_runs(
        self, workflow: str | None = None, *, status: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        """Runs, newest first, optionally of one workflow and/or status."""
        from cpsign_airflow.bookkeeping.tables import training_runs as runs
        from cpsign_airflow.bookkeeping.tables import workflows

        if workflow is not None:
            workflow = r.check_workflow(workflow)
        if status is not None:
            r.check_choice("status", status, r.RUN_STATUSES)
        limit = _check_limit(limit)
        query = _run_query().order_by(runs.c.id.desc()).limit(limit)
        if workflow is not None:
            query = query.where(workflows.c.name == workflow)
        if status is not None:
            query = query.where(runs.c.status == status)
        return self._tx(
            "listing runs", lambda conn: [_run_record(row) for row in conn.execute(query)]
        )

    def runs_for_airflow_run(self, dag_id: str, airflow_run_id: str) -> list[RunRecord]:
        """Runs recorded by one DAG run, oldest first."""
        from cpsign_airflow.bookkeeping.tables import training_runs as runs

        query = (
            _run_query()
            .where(runs.c.dag_id == dag_id, runs.c.airflow_run_id == airflow_run_id)
            .order_by(runs.c.id)
        )
        return self._tx(
            "listing runs of a DAG run",
            lambda conn: [_run_record(row) for row in conn.execute(query)],
        )

    def latest_successful_run(self, workflow: str) -> RunRecord | None:
        """The most recently finished succeeded run of ``workflow``."""
        from cpsign_airflow.bookkeeping.tables import training_runs as runs
        from cpsign_airflow.bookkeeping.tables import workflows

        workflow = r.check_workflow(workflow)
        query = (
            _run_query()
            .where(workflows.c.name == workflow, runs.c.status == "succeeded")
            .order_by(runs.c.finished_at.desc(), runs.c.id.desc())
            .limit(1)
        )

        def unit(conn: Connection) -> RunRecord | None:
            row = conn.execute(query).first()
            return _run_record(row) if row else None

        return self._tx(f"reading the latest successful run of {workflow}", unit)

    def latest_successful_configuration(self, workflow: str) -> dict[str, Any] | None:
        """Configuration of the latest succeeded run: what scheduled retraining reuses."""
        run = self.latest_successful_run(workflow)
        return run.configuration if run else None

    # ----------------------------------------------------------------- jobs

    def record_jobs(self, run_id: int | str, jobs: Iterable[Mapping[str, Any]]) -> list[JobRecord]:
        """Insert or update a run's pipeline jobs, keyed by (run, pipeline, job id).

        A value left out (None) keeps what an earlier call recorded.
        """
        rid = r.check_run_id(run_id)
        checked = _dedupe(
            (_check_job(i, job) for i, job in enumerate(_check_list("jobs", jobs))),
            key=lambda j: (j["pipeline"], j["job_id"]),
        )

        def unit(conn: Connection) -> list[JobRecord]:
            from sqlalchemy import insert, select, update

            from cpsign_airflow.bookkeeping.tables import pipeline_jobs as jobs_t

            _require_run(conn, rid)
            now = _to_db(r.utcnow())
            out = []
            for job in checked:
                where = (
                    jobs_t.c.run_id == rid,
                    jobs_t.c.pipeline == job["pipeline"],
                    jobs_t.c.job_id == job["job_id"],
                )
                row = conn.execute(select(jobs_t.c.id).where(*where)).first()
                values = {k: v for k, v in job.items() if v is not None}
                values["updated_at"] = now
                if row is None:
                    conn.execute(insert(jobs_t).values(run_id=rid, **values))
                else:
                    conn.execute(update(jobs_t).where(jobs_t.c.id == row.id).values(**values))
                out.append(_job_record(conn.execute(select(jobs_t).where(*where)).one()))
            return out

        return self._tx(f"recording {len(checked)} jobs of run {rid}", unit)

    def list_jobs(self, run_id: int | str) -> list[JobRecord]:
        from sqlalchemy import select

        from cpsign_airflow.bookkeeping.tables import pipeline_jobs as jobs_t

        rid = r.check_run_id(run_id)
        query = select(jobs_t).where(jobs_t.c.run_id == rid).order_by(jobs_t.c.id)
        return self._tx(
            f"listing jobs of run {rid}",
            lambda conn: [_job_record(row) for row in conn.execute(query)],
        )

    # ----------------------------------------------------------------- artifacts

    def record_artifacts(
        self, run_id: int | str, artifacts: Iterable[Mapping[str, Any]]
    ) -> list[ArtifactRecord]:
        """Insert or update a run's model artifacts, keyed by (run, model name, location).

        Each may carry publication fields and ``metrics`` (the validate
        pipeline's ``metrics.json`` as a mapping or JSON text; stored as
        canonical JSON, returned parsed); a value left out keeps what was
        recorded. A different sha256 for the same artifact is a conflict.
        """
        rid = r.check_run_id(run_id)
        checked = _dedupe(
            (_check_artifact(i, a) for i, a in enumerate(_check_list("artifacts", artifacts))),
            key=lambda a: a["artifact_key"],
        )

        def unit(conn: Connection) -> list[ArtifactRecord]:
            from sqlalchemy import insert, select, update

            from cpsign_airflow.bookkeeping.tables import model_artifacts as arts

            _require_run(conn, rid)
            now = _to_db(r.utcnow())
            out = []
            for art in checked:
                where = (arts.c.run_id == rid, arts.c.artifact_key == art["artifact_key"])
                row = conn.execute(select(arts).where(*where)).first()
                values = {k: v for k, v in art.items() if v is not None}
                if row is None:
                    conn.execute(insert(arts).values(run_id=rid, recorded_at=now, **values))
                else:
                    if row.sha256 and art["sha256"] and row.sha256 != art["sha256"]:
                        raise RunStateConflict(
                            f"Artifact {art['model_name']} at {art['location']} of run {rid} is "
                            f"recorded with sha256 {row.sha256}, not {art['sha256']}"
                        )
                    conn.execute(update(arts).where(arts.c.id == row.id).values(**values))
                out.append(_artifact_record(conn.execute(select(arts).where(*where)).one()))
            return out

        return self._tx(f"recording {len(checked)} artifacts of run {rid}", unit)

    def record_publication(
        self,
        run_id: int | str,
        model_name: str,
        *,
        status: str,
        target: str | None = None,
        url: str | None = None,
        error: str | None = None,
        location: str | None = None,
        version: str | None = None,
    ) -> list[ArtifactRecord]:
        """Record where a model was published (model store or prediction service), or why not.

        ``version`` is the model version the target serves (a commit id).
        """
        rid = r.check_run_id(run_id)
        model_name = r.check_str("model_name", model_name, max_len=r.MODEL_NAME_MAX)  # type: ignore[assignment]
        r.check_choice("status", status, r.PUBLICATION_STATUSES)
        pub = _check_publication(
            "publication",
            {"status": status, "target": target, "url": url, "error": error, "version": version},
        )
        key = (
            _artifact_key(model_name, r.check_location("location", location)) if location else None
        )

        def unit(conn: Connection) -> list[ArtifactRecord]:
            from sqlalchemy import select, update

            from cpsign_airflow.bookkeeping.tables import model_artifacts as arts

            where = [arts.c.run_id == rid, arts.c.model_name == model_name]
            if key:
                where.append(arts.c.artifact_key == key)
            ids = list(conn.execute(select(arts.c.id).where(*where)).scalars())
            if not ids:
                _require_run(conn, rid)
                raise ArtifactNotFound(
                    f"Run {rid} has no model artifact {model_name!r}"
                    + (f" at {location}" if location else "")
                )
            values = {k: v for k, v in pub.items() if v is not None}
            conn.execute(update(arts).where(arts.c.id.in_(ids)).values(**values))
            query = select(arts).where(arts.c.id.in_(ids)).order_by(arts.c.id)
            return [_artifact_record(row) for row in conn.execute(query)]

        return self._tx(f"recording publication of {model_name} of run {rid}", unit)

    def list_artifacts(self, run_id: int | str) -> list[ArtifactRecord]:
        from sqlalchemy import select

        from cpsign_airflow.bookkeeping.tables import model_artifacts as arts

        rid = r.check_run_id(run_id)
        query = select(arts).where(arts.c.run_id == rid).order_by(arts.c.id)
        return self._tx(
            f"listing artifacts of run {rid}",
            lambda conn: [_artifact_record(row) for row in conn.execute(query)],
        )

    def artifacts_of_runs(self, run_ids: Iterable[int | str]) -> dict[int, list[ArtifactRecord]]:
        """Artifacts of many runs in one query, by run id (runs without any are absent)."""
        from sqlalchemy import select

        from cpsign_airflow.bookkeeping.tables import model_artifacts as arts

        rids = sorted({r.check_run_id(rid) for rid in run_ids})
        if not rids:
            return {}
        query = select(arts).where(arts.c.run_id.in_(rids)).order_by(arts.c.run_id, arts.c.id)

        def unit(conn: Connection) -> dict[int, list[ArtifactRecord]]:
            out: dict[int, list[ArtifactRecord]] = {}
            for row in conn.execute(query):
                out.setdefault(row.run_id, []).append(_artifact_record(row))
            return out

        return self._tx(f"listing artifacts of {len(rids)} run(s)", unit)

    def record_quality(
        self, run_id: int | str, model_name: str, quality: str, reason: str | None = None
    ) -> list[ArtifactRecord]:
        """Record the quality gate's verdict (``passed`` / ``held_back``) on a run's model.

        Applies to every artifact of the run with that model name. Repeating it
        is harmless; a later verdict replaces an earlier one (a retried gate
        recomputes it from the same metrics).
        """
        rid = r.check_run_id(run_id)
        model_name = r.check_str("model_name", model_name, max_len=r.MODEL_NAME_MAX)  # type: ignore[assignment]
        quality = r.check_choice("quality", quality, r.QUALITY_VERDICTS)
        reason = r.check_text("quality_reason", reason)

        def unit(conn: Connection) -> list[ArtifactRecord]:
            from sqlalchemy import select, update

            from cpsign_airflow.bookkeeping.tables import model_artifacts as arts

            where = (arts.c.run_id == rid, arts.c.model_name == model_name)
            ids = list(conn.execute(select(arts.c.id).where(*where)).scalars())
            if not ids:
                _require_run(conn, rid)
                raise ArtifactNotFound(f"Run {rid} has no model artifact {model_name!r}")
            conn.execute(
                update(arts)
                .where(arts.c.id.in_(ids))
                .values(quality=quality, quality_reason=reason)
            )
            query = select(arts).where(arts.c.id.in_(ids)).order_by(arts.c.id)
            return [_artifact_record(row) for row in conn.execute(query)]

        return self._tx(f"recording quality {quality} of {model_name} of run {rid}", unit)

    def decide_quality(
        self,
        run_id: int | str,
        model_name: str,
        decide: Callable[
            [ArtifactRecord, ArtifactRecord | None, dict[str, Any] | None], tuple[str, str]
        ],
    ) -> ArtifactRecord:
        """Decide the quality verdict on a run's model once, one decision of a workflow at a time.

        One transaction that first takes the workflow's lock (its row ``FOR UPDATE`` on
        MySQL/MariaDB, read committed, so every read sees the decisions committed before
        the lock was granted; on SQLite a write to that row, which takes the database's
        write lock), so concurrent runs decide one after the other, and each sees what
        the others decided:

        * a verdict already recorded on this run's model (a retried task) is returned as is;
        * ``earlier``: the workflow's newest (by run) model with a verdict and the same
          identity (same model name, and the same content hash or the same sha256),
          followed to the run whose verdict it carries; else None;
        * ``baseline``: the metrics of the last accepted (published or passed) model in
          commit order, among runs that had finished before this run was committed, so
          runs in flight together are never each other's baseline, whichever finishes first.

        ``decide(artifact, earlier, baseline)`` (pure) returns ``(quality, reason)``; with an
        ``earlier`` model the verdict is recorded as carried from its run (``verdict_run_id``).
        Returns the recorded artifact.
        """
        rid = r.check_run_id(run_id)
        model_name = r.check_str("model_name", model_name, max_len=r.MODEL_NAME_MAX)  # type: ignore[assignment]

        def unit(conn: Connection) -> ArtifactRecord:
            from sqlalchemy import select, update

            from cpsign_airflow.bookkeeping.tables import model_artifacts as arts
            from cpsign_airflow.bookkeeping.tables import training_runs as runs

            run = conn.execute(
                select(runs.c.workflow_id, runs.c.committed_at).where(runs.c.id == rid)
            ).first()
            if run is None:
                raise RunNotFound(f"No training run {rid} in the bookkeeping store")
            _lock_workflow(conn, run.workflow_id)
            where = (arts.c.run_id == rid, arts.c.model_name == model_name)
            row = conn.execute(select(arts).where(*where).order_by(arts.c.id).limit(1)).first()
            if row is None:
                raise ArtifactNotFound(f"Run {rid} has no model artifact {model_name!r}")
            own = _artifact_record(row)
            if own.quality is not None:
                return own
            earlier = _same_model(conn, run.workflow_id, own)
            baseline = _baseline(conn, run.workflow_id, own, _from_db(run.committed_at))
            quality, reason = decide(own, earlier, baseline)
            conn.execute(
                update(arts)
                .where(*where)
                .values(
                    quality=r.check_choice("quality", quality, r.QUALITY_VERDICTS),
                    quality_reason=r.check_text("quality_reason", reason),
                    verdict_run_id=earlier.run_id if earlier is not None else None,
                )
            )
            return _artifact_record(conn.execute(select(arts).where(arts.c.id == own.id)).one())

        mysql = self.engine.dialect.name in ("mysql", "mariadb")
        return self._tx(
            f"deciding the quality of {model_name} of run {rid}",
            unit,
            isolation="READ COMMITTED" if mysql else None,
        )

    def last_published_metrics(
        self,
        workflow: str,
        *,
        before_run_id: int | str | None = None,
        model_name: str | None = None,
    ) -> dict[str, Any] | None:
        """Metrics of the workflow's newest accepted model: the quality gate's baseline.

        Accepted means published (``publication_status`` is ``published``: it
        is or was served) *or* passed by the quality gate (``quality`` is
        ``passed``), so a workflow that never deploys a prediction service
        still has a baseline, and a held-back model never becomes one. Only
        artifacts with recorded metrics count; the newest run wins (then the
        newest artifact). ``before_run_id`` limits the search to earlier runs,
        so a run never compares its model with itself. None if there is none.
        """
        from sqlalchemy import or_, select

        from cpsign_airflow.bookkeeping.tables import model_artifacts as arts
        from cpsign_airflow.bookkeeping.tables import training_runs as runs
        from cpsign_airflow.bookkeeping.tables import workflows

        workflow = r.check_workflow(workflow)
        query = (
            select(arts.c.metrics)
            .join(runs, runs.c.id == arts.c.run_id)
            .join(workflows, workflows.c.id == runs.c.workflow_id)
            .where(
                workflows.c.name == workflow,
                arts.c.metrics.is_not(None),
                or_(arts.c.publication_status == "published", arts.c.quality == "passed"),
            )
            .order_by(runs.c.id.desc(), arts.c.id.desc())
            .limit(1)
        )
        if before_run_id is not None:
            query = query.where(runs.c.id < r.check_run_id(before_run_id, "before_run_id"))
        if model_name is not None:  # a workflow with several models: each its own baseline
            name = r.check_str("model_name", model_name, max_len=r.MODEL_NAME_MAX)
            query = query.where(arts.c.model_name == name)

        def unit(conn: Connection) -> dict[str, Any] | None:
            text = conn.execute(query).scalar()
            return json.loads(text) if text else None

        return self._tx(f"reading the last accepted metrics of {workflow}", unit)

    def previous_model(
        self, workflow: str, model_name: str, *, before_run_id: int | str
    ) -> ArtifactRecord | None:
        """The model ``model_name`` of the workflow's newest succeeded run before ``before_run_id``.

        What a retraining compares its model with: the same sha256 means pachd
        skipped every datum (no new rows), so the model is unchanged.
        """
        from sqlalchemy import select

        from cpsign_airflow.bookkeeping.tables import model_artifacts as arts
        from cpsign_airflow.bookkeeping.tables import training_runs as runs
        from cpsign_airflow.bookkeeping.tables import workflows

        workflow = r.check_workflow(workflow)
        model_name = r.check_str("model_name", model_name, max_len=r.MODEL_NAME_MAX)  # type: ignore[assignment]
        query = (
            select(arts)
            .join(runs, runs.c.id == arts.c.run_id)
            .join(workflows, workflows.c.id == runs.c.workflow_id)
            .where(
                workflows.c.name == workflow,
                arts.c.model_name == model_name,
                runs.c.status == "succeeded",
                runs.c.id < r.check_run_id(before_run_id, "before_run_id"),
            )
            .order_by(runs.c.id.desc(), arts.c.id.desc())
            .limit(1)
        )

        def unit(conn: Connection) -> ArtifactRecord | None:
            row = conn.execute(query).first()
            return _artifact_record(row) if row else None

        return self._tx(f"reading the previous model {model_name} of {workflow}", unit)

    # ----------------------------------------------------------------- deployments

    def record_deployments(
        self,
        workflow: str,
        deployments: Iterable[Mapping[str, Any]],
        *,
        task: TaskKey | None = None,
        project: str | None = None,
        config_repo: str | None = None,
    ) -> list[DeploymentRecord]:
        """Record what a setup task did to each pipeline (created/updated/unchanged).

        Keyed by (task, pipeline): a retried task keeps the first try's rows,
        whose action is the true one (a retry would see ``unchanged``).
        """
        workflow = r.check_workflow(workflow)
        project = r.check_str("project", project, max_len=r.NAME_MAX, optional=True)
        config_repo = r.check_str("config_repo", config_repo, max_len=r.NAME_MAX, optional=True)
        checked = _dedupe(
            (
                _check_deployment(i, d)
                for i, d in enumerate(_check_list("deployments", deployments))
            ),
            key=lambda d: d["pipeline"],
        )
        task = task or TaskKey.one_off()
        key = task.digest()

        def unit(conn: Connection) -> list[DeploymentRecord]:
            from sqlalchemy import insert

            from cpsign_airflow.bookkeeping.tables import pipeline_deployments as deps

            wf = self._ensure_workflow(conn, workflow, project, config_repo)
            now = _to_db(r.utcnow())
            out = []
            for dep in checked:
                query = _deployment_query().where(
                    deps.c.task_key == key, deps.c.pipeline == dep["pipeline"]
                )
                row = conn.execute(query).first()
                if row is None:
                    conn.execute(
                        insert(deps).values(
                            workflow_id=wf.id,
                            dag_id=task.dag_id,
                            airflow_run_id=task.run_id,
                            task_id=task.task_id,
                            task_key=key,
                            recorded_at=now,
                            **dep,
                        )
                    )
                    row = conn.execute(query).one()
                out.append(_deployment_record(row))
            return out

        return self._tx(f"recording {len(checked)} deployments of {workflow}", unit)

    def list_deployments(self, workflow: str, *, limit: int = 100) -> list[DeploymentRecord]:
        """Deployments of a workflow, newest first."""
        from cpsign_airflow.bookkeeping.tables import pipeline_deployments as deps
        from cpsign_airflow.bookkeeping.tables import workflows

        workflow = r.check_workflow(workflow)
        query = (
            _deployment_query()
            .where(workflows.c.name == workflow)
            .order_by(deps.c.id.desc())
            .limit(_check_limit(limit))
        )
        return self._tx(
            f"listing deployments of {workflow}",
            lambda conn: [_deployment_record(row) for row in conn.execute(query)],
        )


# --------------------------------------------------------------------------- helpers


def _check_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise BookkeepingInputError("limit", f"must be an integer from 1 to 10000, got {limit!r}")
    return limit


def _check_list(field: str, items: Any) -> list[Any]:
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise BookkeepingInputError(field, f"must be a list, got {type(items).__name__}")
    return list(items)


def _check_mapping(field: str, item: Any) -> Mapping[str, Any]:
    if not isinstance(item, Mapping):
        raise BookkeepingInputError(field, f"must be a mapping, got {type(item).__name__}")
    return item


JOB_FIELDS = frozenset(
    {
        "pipeline",
        "job_id",
        "state",
        "reason",
        "log_tail",
        "data_processed",
        "data_skipped",
        "data_failed",
        "data_total",
        "started",
        "finished",
    }
)


def _lines(value: Any) -> Any:
    """A log tail given as a list of lines is stored as one text; None or empty as NULL."""
    if isinstance(value, (list, tuple)):
        return "\n".join(str(line) for line in value) or None
    return value


def _check_job(index: int, job: Any) -> dict[str, Any]:
    f = f"jobs[{index}]"
    job = _check_mapping(f, job)
    unknown = set(job) - JOB_FIELDS
    if unknown:
        raise BookkeepingInputError(f, f"unknown fields {sorted(unknown)}")
    return {
        "pipeline": r.check_str(f"{f}.pipeline", job.get("pipeline"), max_len=r.PIPELINE_MAX),
        "job_id": r.check_str(f"{f}.job_id", job.get("job_id"), max_len=r.ID_MAX),
        "state": r.check_str(f"{f}.state", job.get("state"), max_len=r.STATE_MAX),
        "reason": r.check_text(f"{f}.reason", job.get("reason")),
        "log_tail": r.check_text(f"{f}.log_tail", _lines(job.get("log_tail"))),
        **{
            k: r.check_count(f"{f}.{k}", job.get(k))
            for k in ("data_processed", "data_skipped", "data_failed", "data_total")
        },
        "started_at": _to_db(r.check_time(f"{f}.started", job.get("started"))),
        "finished_at": _to_db(r.check_time(f"{f}.finished", job.get("finished"))),
    }


_ARTIFACT_FIELDS = {
    "model_name",
    "location",
    "size_bytes",
    "sha256",
    "content_sha256",
    "publication_status",
    "publication_target",
    "publication_url",
    "publication_error",
    "published_at",
    "published_version",
    "metrics",
}


def _artifact_key(model_name: str, location: str) -> str:
    return hashlib.sha256(f"{model_name}\x00{location}".encode()).hexdigest()


def _check_artifact(index: int, art: Any) -> dict[str, Any]:
    f = f"artifacts[{index}]"
    art = _check_mapping(f, art)
    unknown = set(art) - _ARTIFACT_FIELDS
    if unknown:
        raise BookkeepingInputError(f, f"unknown fields {sorted(unknown)}")
    name = r.check_str(f"{f}.model_name", art.get("model_name"), max_len=r.MODEL_NAME_MAX)
    location = r.check_location(f"{f}.location", art.get("location"))
    pub = _check_publication(
        f,
        {
            "status": art.get("publication_status"),
            "target": art.get("publication_target"),
            "url": art.get("publication_url"),
            "error": art.get("publication_error"),
            "published_at": art.get("published_at"),
            "version": art.get("published_version"),
        },
    )
    return {
        "model_name": name,
        "location": location,
        "artifact_key": _artifact_key(name, location),  # type: ignore[arg-type]
        "size_bytes": r.check_count(f"{f}.size_bytes", art.get("size_bytes")),
        "sha256": r.check_sha256(f"{f}.sha256", art.get("sha256")),
        "content_sha256": r.check_sha256(f"{f}.content_sha256", art.get("content_sha256")),
        "metrics": r.canonical_metrics(art.get("metrics"), f"{f}.metrics"),
        **pub,
    }


def _check_publication(field: str, pub: Mapping[str, Any]) -> dict[str, Any]:
    status = pub.get("status")
    if status is not None:
        r.check_choice(f"{field}.publication_status", status, r.PUBLICATION_STATUSES)
    target = pub.get("target")
    if target is not None:
        r.check_choice(f"{field}.publication_target", target, r.PUBLICATION_TARGETS)
    url = r.check_text(f"{field}.publication_url", pub.get("url"))
    error = r.check_text(f"{field}.publication_error", pub.get("error"))
    published_at = r.check_time(f"{field}.published_at", pub.get("published_at"))
    if status == "published" and published_at is None:
        published_at = r.utcnow()
    version = r.check_str(
        f"{field}.published_version", pub.get("version"), max_len=64, optional=True
    )
    return {
        "publication_status": status,
        "publication_target": target,
        "publication_url": url,
        "publication_error": error,
        "published_at": _to_db(published_at),
        "published_version": version,
    }


def _check_deployment(index: int, dep: Any) -> dict[str, Any]:
    f = f"deployments[{index}]"
    dep = _check_mapping(f, dep)
    unknown = set(dep) - {"pipeline", "spec_hash", "action"}
    if unknown:
        raise BookkeepingInputError(f, f"unknown fields {sorted(unknown)}")
    return {
        "pipeline": r.check_str(f"{f}.pipeline", dep.get("pipeline"), max_len=r.PIPELINE_MAX),
        "spec_hash": r.check_str(f"{f}.spec_hash", dep.get("spec_hash"), max_len=r.ID_MAX),
        "action": r.check_choice(f"{f}.action", dep.get("action"), r.DEPLOYMENT_ACTIONS),
    }


def _dedupe(items: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], Any]) -> list:
    """Keep the last of items with the same key, in first-seen order."""
    out: dict[Any, dict[str, Any]] = {}
    for item in items:
        out[key(item)] = item
    return list(out.values())


def _run_query():
    from sqlalchemy import select

    from cpsign_airflow.bookkeeping.tables import training_runs as runs
    from cpsign_airflow.bookkeeping.tables import workflows

    return select(runs, workflows.c.name.label("workflow_name")).join(
        workflows, workflows.c.id == runs.c.workflow_id
    )


def _deployment_query():
    from sqlalchemy import select

    from cpsign_airflow.bookkeeping.tables import pipeline_deployments as deps
    from cpsign_airflow.bookkeeping.tables import workflows

    return select(deps, workflows.c.name.label("workflow_name")).join(
        workflows, workflows.c.id == deps.c.workflow_id
    )


def _fail_open(conn: Connection, run_ids: list[Any], error: str) -> list[int]:
    """Mark those of ``run_ids`` still open failed with ``error``; the ids it changed.

    Each row is updated on the condition that it is still open, so a run that
    finished meanwhile keeps its outcome.
    """
    from sqlalchemy import update

    from cpsign_airflow.bookkeeping.tables import training_runs as runs

    now = _to_db(r.utcnow())
    failed = []
    for rid in run_ids:
        if conn.execute(
            update(runs)
            .where(runs.c.id == rid, runs.c.status.in_(OPEN_STATUSES))
            .values(status="failed", error=error, finished_at=now, updated_at=now)
        ).rowcount:
            failed.append(int(rid))
    return failed


def _get_run(conn: Connection, rid: int) -> RunRecord:
    from cpsign_airflow.bookkeeping.tables import training_runs as runs

    row = conn.execute(_run_query().where(runs.c.id == rid)).first()
    if row is None:
        raise RunNotFound(f"No training run {rid} in the bookkeeping store")
    return _run_record(row)


def _lock_workflow(conn: Connection, workflow_id: int) -> None:
    """Hold the workflow's lock until the transaction ends; the decisions of one workflow wait.

    MySQL/MariaDB: the workflow's row ``FOR UPDATE``. SQLite has no row locks: a write
    to the row (nothing changes) makes the driver begin the transaction and takes the
    database's write lock, which every other writer waits for (busy timeout).
    """
    from sqlalchemy import select, update

    from cpsign_airflow.bookkeeping.tables import workflows

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


def _same_model(conn: Connection, workflow_id: int, own: ArtifactRecord) -> ArtifactRecord | None:
    """The workflow's newest (by run) judged model with ``own``'s identity, or the model
    whose verdict that one carries; None if the identity is new."""
    from sqlalchemy import or_, select

    from cpsign_airflow.bookkeeping.tables import model_artifacts as arts
    from cpsign_airflow.bookkeeping.tables import training_runs as runs

    same = [arts.c.content_sha256 == own.content_sha256] if own.content_sha256 else []
    same += [arts.c.sha256 == own.sha256] if own.sha256 else []
    if not same:
        return None
    row = conn.execute(
        select(arts)
        .join(runs, runs.c.id == arts.c.run_id)
        .where(
            runs.c.workflow_id == workflow_id,
            arts.c.model_name == own.model_name,
            arts.c.run_id != own.run_id,
            arts.c.quality.is_not(None),
            or_(*same),
        )
        .order_by(runs.c.id.desc(), arts.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    if row.verdict_run_id is not None:  # carried: the verdict was decided on that run's model
        origin = conn.execute(
            select(arts)
            .where(arts.c.run_id == row.verdict_run_id, arts.c.model_name == own.model_name)
            .order_by(arts.c.id)
            .limit(1)
        ).first()
        row = origin if origin is not None else row
    return _artifact_record(row)


def _baseline(
    conn: Connection, workflow_id: int, own: ArtifactRecord, committed_at: datetime | None
) -> dict[str, Any] | None:
    """Metrics of the last accepted model in commit order among runs finished before
    ``own``'s run was committed (not committed: among earlier runs); None if none."""
    from sqlalchemy import or_, select

    from cpsign_airflow.bookkeeping.tables import model_artifacts as arts
    from cpsign_airflow.bookkeeping.tables import training_runs as runs

    query = (
        select(arts.c.metrics)
        .join(runs, runs.c.id == arts.c.run_id)
        .where(
            runs.c.workflow_id == workflow_id,
            runs.c.id != own.run_id,
            arts.c.model_name == own.model_name,
            arts.c.metrics.is_not(None),
            or_(arts.c.publication_status == "published", arts.c.quality == "passed"),
        )
        .order_by(runs.c.committed_at.desc(), runs.c.id.desc(), arts.c.id.desc())
        .limit(1)
    )
    if committed_at is not None:
        query = query.where(runs.c.finished_at < _to_db(committed_at))
    else:
        query = query.where(runs.c.id < own.run_id)
    text = conn.execute(query).scalar()
    return json.loads(text) if text else None


def _require_run(conn: Connection, rid: int) -> None:
    from sqlalchemy import select

    from cpsign_airflow.bookkeeping.tables import training_runs as runs

    if conn.execute(select(runs.c.id).where(runs.c.id == rid)).first() is None:
        raise RunNotFound(f"No training run {rid} in the bookkeeping store")


def _workflow_record(row: Row) -> WorkflowRecord:
    return WorkflowRecord(
        id=row.id,
        name=row.name,
        project=row.project,
        config_repo=row.config_repo,
        created_at=_from_db(row.created_at),  # type: ignore[arg-type]
        updated_at=_from_db(row.updated_at),  # type: ignore[arg-type]
    )


def _run_record(row: Row) -> RunRecord:
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
        started_at=_from_db(row.started_at),  # type: ignore[arg-type]
        committed_at=_from_db(row.committed_at),
        finished_at=_from_db(row.finished_at),
    )


def _job_record(row: Row) -> JobRecord:
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
        started_at=_from_db(row.started_at),
        finished_at=_from_db(row.finished_at),
        updated_at=_from_db(row.updated_at),  # type: ignore[arg-type]
    )


def _artifact_record(row: Row) -> ArtifactRecord:
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
        published_at=_from_db(row.published_at),
        published_version=row.published_version,
        recorded_at=_from_db(row.recorded_at),  # type: ignore[arg-type]
        metrics=json.loads(row.metrics) if row.metrics else None,
        quality=row.quality,
        quality_reason=row.quality_reason,
        content_sha256=row.content_sha256,
        verdict_run_id=row.verdict_run_id,
    )


def _deployment_record(row: Row) -> DeploymentRecord:
    return DeploymentRecord(
        id=row.id,
        workflow=row.workflow_name,
        pipeline=row.pipeline,
        spec_hash=row.spec_hash,
        action=row.action,
        dag_id=row.dag_id,
        airflow_run_id=row.airflow_run_id,
        recorded_at=_from_db(row.recorded_at),  # type: ignore[arg-type]
    )
