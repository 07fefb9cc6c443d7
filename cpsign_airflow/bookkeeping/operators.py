"""Operators that write the bookkeeping record (MySQL/MariaDB, or SQLite) from DAGs.

Thin wrappers over :class:`~cpsign_airflow.bookkeeping.ledger.TrainingLedger`:
each gets the ledger from :class:`~cpsign_airflow.bookkeeping.hook.BookkeepingHook`
on ``bookkeeping_conn_id`` (default ``cpsign_bookkeeping``) inside ``execute``,
so a DAG file importing this module loads neither SQLAlchemy engines, Alembic
nor MySqlHook. Writes are keyed by the task instance, so a retried task never
doubles a record. Arguments that are not templated are checked when the DAG is
parsed; templated ones before the first write.

The bundled DAGs use :class:`BookkeepingSchemaOperator`,
:class:`RecordDeploymentsOperator` and :class:`RecordKilledRunsOperator`
(``cpsign_setup``); :class:`RecordPendingRunOperator`,
:class:`MarkRunCommittedOperator`, :class:`RecordJobsOperator`,
:class:`RecordArtifactsOperator`, :class:`FinishRunOperator`,
:class:`RecordPublicationOperator` and :func:`mark_runs_failed` (the training
task group). :class:`MarkRunRunningOperator`,
:class:`LatestSuccessfulConfigurationOperator` and
:func:`bookkeeping_failure_callback` are public API for your own DAGs: the
running state between commit and finish, one workflow's configuration to
re-commit, and the failure callback without alerting.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from cpsign_airflow.bookkeeping.errors import BookkeepingInputError
from cpsign_airflow.bookkeeping.hook import BookkeepingHook
from cpsign_airflow.bookkeeping.records import (
    DEFAULT_CONN_ID,
    PUBLICATION_STATUSES,
    PUBLICATION_TARGETS,
    TERMINAL_STATUSES,
    TRIGGER_KINDS,
    TaskKey,
    check_choice,
    check_workflow,
    trigger_kind_from_context,
)

if TYPE_CHECKING:
    from cpsign_airflow.bookkeeping.ledger import TrainingLedger

log = logging.getLogger(__name__)


def _is_template(value: Any) -> bool:
    """Resolved at run time (Jinja text or an XComArg), so not checkable at parse time."""
    return not isinstance(value, str) or "{{" in value


def _native_list(field: str, value: Any) -> list[Any]:
    """Lists arrive as lists (XComArg) or, from plain Jinja, as JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BookkeepingInputError(
                field, "is a string that is not JSON; pass a list, or an XComArg (task.output)"
            ) from None
    if not isinstance(value, (list, tuple)):
        raise BookkeepingInputError(field, f"must be a list, got {type(value).__name__}")
    return list(value)


def job_records(jobs: Any) -> list[Any]:
    """The commit-set sensor's job summaries as job records: they carry more (project,
    duration...); keep what a job record holds."""
    from cpsign_airflow.bookkeeping.ledger import JOB_FIELDS

    return [
        {k: v for k, v in job.items() if k in JOB_FIELDS} if isinstance(job, Mapping) else job
        for job in _native_list("jobs", jobs)
    ]


class BookkeepingBaseOperator(BaseOperator):
    """Opens the ledger on ``bookkeeping_conn_id`` (an Airflow connection of type mysql or sqlite)."""

    ui_color = "#e3ecd9"

    def __init__(self, *, bookkeeping_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bookkeeping_conn_id = bookkeeping_conn_id

    @cached_property
    def hook(self) -> BookkeepingHook:
        return BookkeepingHook(bookkeeping_conn_id=self.bookkeeping_conn_id)

    def ledger(self) -> TrainingLedger:
        """The ledger on the hook's engine; ``with self.ledger() as ledger:`` closes its pool."""
        return self.hook.get_ledger()


class BookkeepingSchemaOperator(BookkeepingBaseOperator):
    """Create or upgrade the bookkeeping schema. Safe on every setup run, even two at once.

    Returns the schema revision.
    """

    def __init__(self, *, revision: str = "head", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.revision = revision

    def execute(self, context: Mapping[str, Any]) -> str | None:
        with self.ledger() as ledger:
            result = ledger.upgrade_schema(self.revision)
        self.log.info(
            "Bookkeeping schema of %s: %s -> %s", ledger.target, result.before, result.after
        )
        return result.after


class RecordPendingRunOperator(BookkeepingBaseOperator):
    """Record a training run before its configuration is committed; returns the run id.

    ``configuration`` is a mapping, or the exact JSON text that will be committed
    as configuration.json (then its sha256 matches the file). ``trigger_kind``
    defaults to the DAG run's type: manual, scheduled (incl. backfill) or asset.
    """

    template_fields: Sequence[str] = (
        "workflow",
        "configuration",
        "trigger_kind",
        "project",
        "config_repo",
    )
    template_fields_renderers = {"configuration": "json"}

    def __init__(
        self,
        *,
        workflow: str,
        configuration: Mapping[str, Any] | str,
        trigger_kind: str | None = None,
        project: str | None = None,
        config_repo: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not _is_template(workflow):
            check_workflow(workflow)
        if trigger_kind is not None and not _is_template(trigger_kind):
            check_choice("trigger_kind", trigger_kind, TRIGGER_KINDS)
        self.workflow = workflow
        self.configuration = configuration
        self.trigger_kind = trigger_kind
        self.project = project
        self.config_repo = config_repo

    def execute(self, context: Mapping[str, Any]) -> int:
        kind = self.trigger_kind or trigger_kind_from_context(context)
        with self.ledger() as ledger:
            run_id = ledger.record_pending_run(
                self.workflow,
                self.configuration,
                trigger_kind=kind,
                task=TaskKey.from_context(context),
                project=self.project,
                config_repo=self.config_repo,
            )
        self.log.info("Recorded training run %s of %s (pending, %s)", run_id, self.workflow, kind)
        return run_id


class MarkRunCommittedOperator(BookkeepingBaseOperator):
    """pending → committed, with the config commit id and commit set id. Returns the run id."""

    template_fields: Sequence[str] = ("run_id", "commit_id", "commit_set_id")

    def __init__(
        self,
        *,
        run_id: int | str,
        commit_id: str,
        commit_set_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.run_id = run_id
        self.commit_id = commit_id
        self.commit_set_id = commit_set_id

    def execute(self, context: Mapping[str, Any]) -> int:
        with self.ledger() as ledger:
            run = ledger.mark_committed(self.run_id, self.commit_id, self.commit_set_id or None)
        self.log.info("Run %s committed as %s", run.id, run.commit_id)
        return run.id


class MarkRunRunningOperator(BookkeepingBaseOperator):
    """committed → running. Returns the run id."""

    template_fields: Sequence[str] = ("run_id",)

    def __init__(self, *, run_id: int | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_id = run_id

    def execute(self, context: Mapping[str, Any]) -> int:
        with self.ledger() as ledger:
            return ledger.mark_running(self.run_id).id


class RecordJobsOperator(BookkeepingBaseOperator):
    """Insert or update a run's pipeline jobs; returns them as dicts.

    Each job: ``pipeline``, ``job_id``, ``state``, and optionally ``reason``,
    ``data_processed``, ``data_skipped``, ``data_failed``, ``data_total``,
    ``started``, ``finished`` (datetime or ISO 8601).
    """

    template_fields: Sequence[str] = ("run_id", "jobs")

    def __init__(
        self, *, run_id: int | str, jobs: Sequence[Mapping[str, Any]] | str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.run_id = run_id
        self.jobs = jobs

    def execute(self, context: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self.ledger() as ledger:
            records = ledger.record_jobs(self.run_id, job_records(self.jobs))
        return [rec.as_dict() for rec in records]


class RecordArtifactsOperator(BookkeepingBaseOperator):
    """Insert or update a run's model artifacts; returns them as dicts.

    Each artifact: ``model_name``, ``location`` (``repo@commit:/path``), and
    optionally ``size_bytes``, ``sha256`` and the publication fields
    ``publication_status``, ``publication_target``, ``publication_url``,
    ``publication_error``.
    """

    template_fields: Sequence[str] = ("run_id", "artifacts")

    def __init__(
        self, *, run_id: int | str, artifacts: Sequence[Mapping[str, Any]] | str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.run_id = run_id
        self.artifacts = artifacts

    def execute(self, context: Mapping[str, Any]) -> list[dict[str, Any]]:
        artifacts = _native_list("artifacts", self.artifacts)
        with self.ledger() as ledger:
            records = ledger.record_artifacts(self.run_id, artifacts)
        return [rec.as_dict() for rec in records]


#: A prediction service's rollout status -> the model's publication status.
_SERVICE_PUBLICATION = {"ready": "published", "failed": "failed"}


class RecordPublicationOperator(BookkeepingBaseOperator):
    """Record a model's publication (model store upload or prediction service): status, URL, version.

    Give ``status`` (and ``url``, ``version``, ``error``) directly, or
    ``deployment``: the return value of
    :class:`~cpsign_airflow.kubernetes.operators.CPSignPredictionServiceOperator`
    (its ``.output``). Then its ``url`` and ``model_version`` are recorded, its
    rollout status ``ready`` as ``published``, ``failed`` as ``failed`` and any
    other as ``pending``, with target ``prediction_service``; arguments given
    take precedence. ``location`` picks one artifact when the run has several
    of that name. Returns the model's artifact rows.
    """

    template_fields: Sequence[str] = (
        "run_id",
        "model_name",
        "url",
        "error",
        "location",
        "version",
        "deployment",
    )

    def __init__(
        self,
        *,
        run_id: int | str,
        model_name: str,
        status: str | None = None,
        target: str | None = None,
        url: str | None = None,
        error: str | None = None,
        location: str | None = None,
        version: str | None = None,
        deployment: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if status is None and deployment is None:
            raise BookkeepingInputError(
                "status",
                "is required unless a deployment gives it (the prediction service's result)",
            )
        if status is not None:
            check_choice("status", status, PUBLICATION_STATUSES)
        if target is not None:
            check_choice("target", target, PUBLICATION_TARGETS)
        self.run_id = run_id
        self.model_name = model_name
        self.status = status
        self.target = target
        self.url = url
        self.error = error
        self.location = location
        self.version = version
        self.deployment = deployment

    def execute(self, context: Mapping[str, Any]) -> list[dict[str, Any]]:
        status, target, url, version = self.status, self.target, self.url, self.version
        if self.deployment is not None:
            deployment = self.deployment
            if not isinstance(deployment, Mapping):
                raise BookkeepingInputError(
                    "deployment",
                    f"must be the prediction service's result (a mapping), "
                    f"got {type(deployment).__name__}",
                )
            status = status or _SERVICE_PUBLICATION.get(deployment.get("status"), "pending")
            target = target or "prediction_service"
            url = url or deployment.get("url")
            version = version or deployment.get("model_version")
        with self.ledger() as ledger:
            records = ledger.record_publication(
                self.run_id,
                self.model_name,
                status=status,
                target=target,
                url=url or None,
                error=self.error or None,
                location=self.location or None,
                version=version or None,
            )
        self.log.info(
            "Model %s of run %s (version %s): %s at %s",
            self.model_name,
            self.run_id,
            version,
            status,
            url,
        )
        return [rec.as_dict() for rec in records]


class FinishRunOperator(BookkeepingBaseOperator):
    """Finish a run as succeeded or failed (with error text). Returns the status."""

    template_fields: Sequence[str] = ("run_id", "error")

    def __init__(
        self, *, run_id: int | str, status: str, error: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        check_choice("status", status, TERMINAL_STATUSES)
        self.run_id = run_id
        self.status = status
        self.error = error

    def execute(self, context: Mapping[str, Any]) -> str:
        with self.ledger() as ledger:
            run = ledger.finish_run(self.run_id, self.status, self.error or None)
        self.log.info("Run %s finished: %s", run.id, run.status)
        return run.status


class RecordDeploymentsOperator(BookkeepingBaseOperator):
    """Record what setup did to each pipeline: ``{pipeline, spec_hash, action}``."""

    template_fields: Sequence[str] = ("workflow", "deployments", "project", "config_repo")

    def __init__(
        self,
        *,
        workflow: str,
        deployments: Sequence[Mapping[str, Any]] | str,
        project: str | None = None,
        config_repo: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not _is_template(workflow):
            check_workflow(workflow)
        self.workflow = workflow
        self.deployments = deployments
        self.project = project
        self.config_repo = config_repo

    def execute(self, context: Mapping[str, Any]) -> list[dict[str, Any]]:
        # PachydermCreatePipelineOperator's results carry more (project, version,
        # source); keep what a deployment record holds.
        deployments = [
            {k: d[k] for k in ("pipeline", "spec_hash", "action") if k in d}
            if isinstance(d, Mapping)
            else d
            for d in _native_list("deployments", self.deployments)
        ]
        with self.ledger() as ledger:
            records = ledger.record_deployments(
                self.workflow,
                deployments,
                task=TaskKey.from_context(context),
                project=self.project,
                config_repo=self.config_repo,
            )
        return [rec.as_dict() for rec in records]


class RecordKilledRunsOperator(BookkeepingBaseOperator):
    """Mark failed the training runs whose jobs a pipeline update killed, saying why.

    ``results`` is :class:`~cpsign_airflow.operators.pachyderm.PachydermCreatePipelineOperator`'s
    return value: each updated pipeline lists the jobs it killed in ``killed_jobs``
    (a job's id is its commit set's id, so it finds the run). The error reads
    "killed by <dag> run <run id>: pipeline <names> was updated while job <id>
    ran (in_flight=<in_flight>)". Returns ``[{job_id, pipelines, failed_runs}]``,
    empty when nothing was killed (then the database is not touched).
    """

    template_fields: Sequence[str] = ("results", "in_flight")

    def __init__(
        self,
        *,
        results: Sequence[Mapping[str, Any]] | str,
        in_flight: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.results = results
        self.in_flight = in_flight

    def execute(self, context: Mapping[str, Any]) -> list[dict[str, Any]]:
        killed: dict[str, list[str]] = {}  # job id (= commit set id) -> pipelines updated
        for result in _native_list("results", self.results or []):
            if not isinstance(result, Mapping):
                raise BookkeepingInputError(
                    "results", f"holds a {type(result).__name__}, not a pipeline's result"
                )
            for job_id in result.get("killed_jobs") or []:
                killed.setdefault(job_id, []).append(result["pipeline"])
        if not killed:
            return []
        ti = context.get("ti") or context.get("task_instance")
        dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag_run"), "dag_id", "")
        run_id = context.get("run_id") or getattr(ti, "run_id", None)
        mode = f" (in_flight={self.in_flight})" if self.in_flight else ""
        recorded = []
        with self.ledger() as ledger:
            for job_id, names in sorted(killed.items()):
                error = (
                    f"killed by {dag_id} run {run_id}: pipeline {', '.join(names)} "
                    f"was updated while job {job_id} ran{mode}"
                )
                runs = ledger.fail_runs_by_commit_set([job_id], error)
                self.log.info(
                    "Job %s killed by the update of %s: runs %s failed", job_id, names, runs
                )
                recorded.append({"job_id": job_id, "pipelines": names, "failed_runs": runs})
        return recorded


class LatestSuccessfulConfigurationOperator(BookkeepingBaseOperator):
    """Return the configuration of a workflow's latest succeeded run (scheduled retraining).

    Fails naming the workflow when it has none, unless ``fail_if_missing=False``
    (then returns None).
    """

    template_fields: Sequence[str] = ("workflow",)

    def __init__(self, *, workflow: str, fail_if_missing: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not _is_template(workflow):
            check_workflow(workflow)
        self.workflow = workflow
        self.fail_if_missing = fail_if_missing

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any] | None:
        from cpsign_airflow.bookkeeping.errors import RunNotFound

        with self.ledger() as ledger:
            config = ledger.latest_successful_configuration(self.workflow)
        if config is None and self.fail_if_missing:
            raise RunNotFound(
                f"Workflow {self.workflow} has no succeeded training run to take a configuration from"
            )
        return config


def mark_runs_failed(
    context: Mapping[str, Any], *, bookkeeping_conn_id: str = DEFAULT_CONN_ID
) -> list[int]:
    """Failure callback body: mark the DAG run's unfinished training runs failed.

    Runs are found by the DAG run (dag_id + run_id; and the map index when a
    task of a mapped group failed), so no XCom is needed. The error text names
    the failed task and its exception. When the exception carries the commit
    set's jobs (:class:`~cpsign_airflow.exceptions.PachydermJobFailed`,
    :class:`~cpsign_airflow.exceptions.PachydermPipelineUnhealthy`), they are
    recorded too, each failed one with its log tail, also for a run of that commit
    set that something else ended first (a setup run that killed its jobs). Never
    raises: a callback's exception would only hide the task's own.
    """
    try:
        ti = context.get("ti") or context.get("task_instance")
        dag_run = context.get("dag_run")
        dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None)
        run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None)
        exc = context.get("exception")
        where = f"Task {ti.task_id}" if ti is not None else f"DAG run {run_id}"
        if exc is not None:
            error = f"{where} failed: {type(exc).__name__}: {exc}"
        else:
            error = f"{where} failed: {context.get('reason') or 'no reason given'}"
        from cpsign_airflow.bookkeeping.ledger import JOB_FIELDS

        map_index = getattr(ti, "map_index", None)
        jobs = [
            {k: v for k, v in job.items() if k in JOB_FIELDS}
            for job in getattr(exc, "jobs", None) or []
            if isinstance(job, Mapping)
        ]
        with BookkeepingHook(bookkeeping_conn_id).get_ledger() as ledger:
            failed = ledger.fail_open_runs(
                dag_id, run_id, error, map_index=map_index if isinstance(map_index, int) else None
            )
            targets = set(failed)
            if jobs:  # also runs of this commit set already ended (killed by setup)
                commit_sets = {job.get("job_id") for job in jobs}
                targets.update(
                    run.id
                    for run in ledger.runs_for_airflow_run(dag_id, run_id)
                    if run.commit_set_id in commit_sets and run.status == "failed"
                )
            for rid in sorted(targets) if jobs else ():
                ledger.record_jobs(rid, jobs)
        if failed:
            log.info("Marked training runs %s of %s/%s failed", failed, dag_id, run_id)
        return failed
    except Exception:
        log.exception("Could not mark the training runs of this DAG run failed in bookkeeping")
        return []


def bookkeeping_failure_callback(
    bookkeeping_conn_id: str = DEFAULT_CONN_ID,
) -> Callable[[Mapping[str, Any]], None]:
    """``on_failure_callback=bookkeeping_failure_callback()`` for tasks or DAGs."""

    def callback(context: Mapping[str, Any]) -> None:
        mark_runs_failed(context, bookkeeping_conn_id=bookkeeping_conn_id)

    return callback
