"""Bookkeeping operators over an Airflow connection (BookkeepingHook: MySqlHook for mysql, a file
for sqlite)."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from cpsign_airflow.bookkeeping.errors import (
    BookkeepingInputError,
    RunNotFound,
    RunStateConflict,
)
from cpsign_airflow.bookkeeping.hook import BookkeepingHook
from cpsign_airflow.bookkeeping.operators import (
    BookkeepingSchemaOperator,
    FinishRunOperator,
    LatestSuccessfulConfigurationOperator,
    MarkRunCommittedOperator,
    MarkRunRunningOperator,
    RecordArtifactsOperator,
    RecordDeploymentsOperator,
    RecordJobsOperator,
    RecordKilledRunsOperator,
    RecordPendingRunOperator,
    RecordPublicationOperator,
    bookkeeping_failure_callback,
    mark_runs_failed,
)

DAG_ID = "cpsign_train_LogD"
RUN_ID = "manual__2026-11-27T10:00:00+00:00"
MODEL = "LogD-aggregate@0123456789abcdef0123456789abcdef:/models/LogD.jar"


def context(task_id: str, run_type: str = "manual", run_id: str = RUN_ID, **extra):
    ti = SimpleNamespace(dag_id=DAG_ID, run_id=run_id, task_id=task_id, map_index=-1)
    dag_run = SimpleNamespace(dag_id=DAG_ID, run_id=run_id, run_type=run_type)
    return {"ti": ti, "dag_run": dag_run, **extra}


@pytest.fixture
def conn_id(bookkeeping_conn_id, monkeypatch):
    """The test connection; for mysql, count that the URL came from MySqlHook."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    calls = []
    original = MySqlHook.get_uri

    def spy(self):
        calls.append(self.mysql_conn_id)
        return original(self)

    monkeypatch.setattr(MySqlHook, "get_uri", spy)
    BookkeepingSchemaOperator(task_id="schema", bookkeeping_conn_id=bookkeeping_conn_id).execute(
        context("schema")
    )
    return SimpleNamespace(id=bookkeeping_conn_id, hook_calls=calls)


def test_operators_record_a_whole_run(conn_id, bookkeeping_backend):
    kw = {"bookkeeping_conn_id": conn_id.id}
    config = {"workflow_name": "LogD", "cpsign": {"ptype": 2}, "note": "é😀 '\""}
    pending = RecordPendingRunOperator(
        task_id="record_pending_run", workflow="LogD", configuration=config, **kw
    )
    run_id = pending.execute(context("record_pending_run", run_type="asset_triggered"))
    # A retried task instance finds its own row.
    assert pending.execute(context("record_pending_run", run_type="asset_triggered")) == run_id

    MarkRunCommittedOperator(
        task_id="mark_committed",
        run_id=str(run_id),
        commit_id="a" * 32,
        commit_set_id="a" * 32,
        **kw,
    ).execute(context("mark_committed"))
    MarkRunRunningOperator(task_id="running", run_id=run_id, **kw).execute(context("running"))
    jobs = RecordJobsOperator(
        task_id="record_jobs",
        run_id=run_id,
        jobs='[{"pipeline": "LogD-training", "job_id": "j1", "state": "JOB_SUCCESS", '
        '"data_total": 5, "finished": "2026-11-27T11:00:00+00:00"}]',
        **kw,
    ).execute(context("record_jobs"))
    assert jobs[0]["finished_at"] == "2026-11-27T11:00:00+00:00"
    arts = RecordArtifactsOperator(
        task_id="record_artifacts",
        run_id=run_id,
        artifacts=[{"model_name": "LogD", "location": MODEL, "size_bytes": 42}],
        **kw,
    ).execute(context("record_artifacts"))
    assert arts[0]["publication_status"] == "unpublished"
    RecordPublicationOperator(
        task_id="publish",
        run_id=run_id,
        model_name="LogD",
        status="published",
        target="model_store",
        url="https://modelweb.example.org/api/v1/models/17",
        **kw,
    ).execute(context("publish"))
    assert (
        FinishRunOperator(task_id="finish", run_id=run_id, status="succeeded", **kw).execute(
            context("finish")
        )
        == "succeeded"
    )
    deployments = RecordDeploymentsOperator(
        task_id="deploy",
        workflow="LogD",
        deployments=[{"pipeline": "LogD-ingestion", "spec_hash": "1" * 64, "action": "created"}],
        **kw,
    ).execute(context("deploy"))
    assert deployments[0]["action"] == "created"
    latest = LatestSuccessfulConfigurationOperator(task_id="latest", workflow="LogD", **kw).execute(
        context("latest")
    )
    assert latest == config

    with BookkeepingHook(conn_id.id).get_ledger() as ledger:
        run = ledger.get_run(run_id)
        [art] = ledger.list_artifacts(run_id)
    assert (run.status, run.trigger_kind, run.dag_id, run.airflow_run_id, run.task_id) == (
        "succeeded",
        "asset",
        DAG_ID,
        RUN_ID,
        "record_pending_run",
    )
    assert art.publication_url == "https://modelweb.example.org/api/v1/models/17"
    if bookkeeping_backend == "mysql":
        assert conn_id.hook_calls and set(conn_id.hook_calls) == {conn_id.id}
    else:
        assert conn_id.hook_calls == []


def test_trigger_kind_follows_the_dag_run_type(conn_id):
    kinds = {}
    for run_type in ("manual", "scheduled", "backfill", "asset_triggered"):
        op = RecordPendingRunOperator(
            task_id="p", workflow="LogD", configuration={"a": 1}, bookkeeping_conn_id=conn_id.id
        )
        rid = op.execute(context("p", run_type=run_type, run_id=f"{run_type}__1"))
        with BookkeepingHook(conn_id.id).get_ledger() as ledger:
            kinds[run_type] = ledger.get_run(rid).trigger_kind
    assert kinds == {
        "manual": "manual",
        "scheduled": "scheduled",
        "backfill": "scheduled",
        "asset_triggered": "asset",
    }


def test_failure_callback_marks_the_dag_runs_open_runs_failed(conn_id):
    rid = RecordPendingRunOperator(
        task_id="record_pending_run",
        workflow="LogD",
        configuration={"a": 1},
        bookkeeping_conn_id=conn_id.id,
    ).execute(context("record_pending_run"))
    error = RuntimeError("LogD-training job abc failed: JOB_FAILURE (OutOfMemory)")

    callback = bookkeeping_failure_callback(conn_id.id)
    callback(context("wait_for_training", exception=error))

    with BookkeepingHook(conn_id.id).get_ledger() as ledger:
        run = ledger.get_run(rid)
    assert run.status == "failed"
    assert run.error == (
        "Task wait_for_training failed: RuntimeError: "
        "LogD-training job abc failed: JOB_FAILURE (OutOfMemory)"
    )
    # Retried callback: nothing left open, first error kept.
    assert mark_runs_failed(context("x", exception=error), bookkeeping_conn_id=conn_id.id) == []


def test_failure_callback_never_raises(monkeypatch, caplog):
    assert mark_runs_failed(context("t"), bookkeeping_conn_id="cpsign_no_such_conn") == []
    assert "Could not mark" in caplog.text


def test_finishing_against_the_record_raises_conflict(conn_id):
    kw = {"bookkeeping_conn_id": conn_id.id}
    rid = RecordPendingRunOperator(
        task_id="p", workflow="LogD", configuration={"a": 1}, **kw
    ).execute(context("p"))
    with pytest.raises(RunStateConflict):
        FinishRunOperator(task_id="f", run_id=rid, status="succeeded", **kw).execute(context("f"))


@pytest.mark.parametrize(
    "make, field",
    [
        (
            lambda: RecordPendingRunOperator(task_id="t", workflow="Log D", configuration={}),
            "workflow",
        ),
        (
            lambda: RecordPendingRunOperator(
                task_id="t", workflow="LogD", configuration={}, trigger_kind="cron"
            ),
            "trigger_kind",
        ),
        (lambda: FinishRunOperator(task_id="t", run_id=1, status="done"), "status"),
        (
            lambda: RecordPublicationOperator(
                task_id="t", run_id=1, model_name="m", status="published", target="s3"
            ),
            "target",
        ),
        (lambda: LatestSuccessfulConfigurationOperator(task_id="t", workflow="a/b"), "workflow"),
    ],
)
def test_bad_arguments_fail_at_dag_parse_time(make, field):
    with pytest.raises(BookkeepingInputError) as info:
        make()
    assert info.value.field == field


def test_templated_arguments_are_checked_before_writing(conn_id):
    op = RecordJobsOperator(
        task_id="j",
        run_id="{{ ti.xcom_pull('p') }}",
        jobs="not json",
        bookkeeping_conn_id=conn_id.id,
    )
    op.run_id = "7"  # as rendered
    with pytest.raises(BookkeepingInputError, match="^jobs:"):
        op.execute(context("j"))


def _run_with_model(conn_id, **kw) -> int:
    """A committed run with one recorded model, as the training task group leaves it."""
    kw = {"bookkeeping_conn_id": conn_id.id, **kw}
    rid = RecordPendingRunOperator(
        task_id="p", workflow="LogD", configuration={"a": 1}, **kw
    ).execute(context("p"))
    MarkRunCommittedOperator(
        task_id="c", run_id=rid, commit_id="c" * 32, commit_set_id="c" * 32, **kw
    ).execute(context("c"))
    RecordArtifactsOperator(
        task_id="a", run_id=rid, artifacts=[{"model_name": "LogD", "location": MODEL}], **kw
    ).execute(context("a"))
    return rid


@pytest.mark.parametrize(
    "service_status, recorded",
    [("ready", "published"), ("failed", "failed"), ("rolling", "pending")],
)
def test_publication_from_the_prediction_services_result(conn_id, service_status, recorded):
    """The training task group passes CPSignPredictionServiceOperator's result as it is."""
    rid = _run_with_model(conn_id)
    deployment = {
        "url": "http://logd.cpsign-models.svc:8080",
        "model_version": "c" * 32,
        "status": service_status,
        "action": "created",
    }
    [row] = RecordPublicationOperator(
        task_id="record_publication",
        run_id=rid,
        model_name="LogD",
        location=MODEL,
        deployment=deployment,
        bookkeeping_conn_id=conn_id.id,
    ).execute(context("record_publication"))
    assert (
        row["publication_status"],
        row["publication_target"],
        row["publication_url"],
        row["published_version"],
    ) == (recorded, "prediction_service", deployment["url"], "c" * 32)


def test_publication_needs_a_status_or_a_deployment():
    with pytest.raises(BookkeepingInputError) as info:
        RecordPublicationOperator(task_id="t", run_id=1, model_name="LogD")
    assert info.value.field == "status"
    op = RecordPublicationOperator(task_id="t", run_id=1, model_name="LogD", deployment="x")
    with pytest.raises(BookkeepingInputError, match="^deployment:"):
        op.execute(context("t"))  # refused before the database is opened


def test_killed_runs_are_failed_naming_the_setup_run_and_pipeline(conn_id):
    kw = {"bookkeeping_conn_id": conn_id.id}
    killed = _run_with_model(conn_id)
    other = RecordPendingRunOperator(
        task_id="p", workflow="LogD", configuration={"b": 2}, **kw
    ).execute(context("p", run_id="manual__other"))
    MarkRunCommittedOperator(
        task_id="c", run_id=other, commit_id="d" * 32, commit_set_id="d" * 32, **kw
    ).execute(context("c", run_id="manual__other"))
    results = [
        {"pipeline": "LogD-ingestion", "action": "updated", "killed_jobs": ["c" * 32]},
        {"pipeline": "LogD-train", "action": "updated", "killed_jobs": ["c" * 32]},
        {"pipeline": "LogD-validate", "action": "unchanged"},
    ]
    ctx = {**context("record_killed_runs", run_id="manual__setup"), "run_id": "manual__setup"}
    op = RecordKilledRunsOperator(
        task_id="record_killed_runs", results=results, in_flight="force", **kw
    )
    assert op.execute(ctx) == [
        {"job_id": "c" * 32, "pipelines": ["LogD-ingestion", "LogD-train"], "failed_runs": [killed]}
    ]
    with BookkeepingHook(conn_id.id).get_ledger() as ledger:
        run, untouched = ledger.get_run(killed), ledger.get_run(other)
    assert (run.status, run.error) == (
        "failed",
        f"killed by {DAG_ID} run manual__setup: pipeline LogD-ingestion, LogD-train was "
        f"updated while job {'c' * 32} ran (in_flight=force)",
    )
    assert untouched.status == "committed"
    assert op.execute(ctx)[0]["failed_runs"] == []  # a retry: already failed, kept


def test_killed_runs_without_kills_touch_no_database():
    op = RecordKilledRunsOperator(
        task_id="k",
        results=[{"pipeline": "LogD-train", "action": "updated", "killed_jobs": []}],
        bookkeeping_conn_id="cpsign_no_such_conn",
    )
    assert op.execute(context("k")) == []


def test_latest_configuration_of_a_workflow_without_success(conn_id):
    kw = {"bookkeeping_conn_id": conn_id.id}
    with pytest.raises(RunNotFound, match="LogQ has no succeeded training run"):
        LatestSuccessfulConfigurationOperator(task_id="l", workflow="LogQ", **kw).execute(
            context("l")
        )
    assert (
        LatestSuccessfulConfigurationOperator(
            task_id="l", workflow="LogQ", fail_if_missing=False, **kw
        ).execute(context("l"))
        is None
    )


def test_importing_the_operators_loads_no_engine_alembic_or_mysql_hook():
    """DAG files import the operators: parsing them must stay cheap."""
    code = (
        "import sys, cpsign_airflow.bookkeeping.operators, cpsign_airflow.bookkeeping.hook\n"
        "heavy = ['alembic', 'MySQLdb', 'airflow.providers.mysql.hooks.mysql',"
        " 'cpsign_airflow.bookkeeping.ledger', 'cpsign_airflow.bookkeeping.tables',"
        " 'cpsign_airflow.bookkeeping.engine']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _committed_run(conn_id, commit: str) -> int:
    rid = RecordPendingRunOperator(
        task_id="record_pending_run",
        workflow="LogD",
        configuration={"a": 1},
        bookkeeping_conn_id=conn_id.id,
    ).execute(context("record_pending_run"))
    with BookkeepingHook(conn_id.id).get_ledger() as ledger:
        ledger.mark_committed(rid, commit, commit)
    return rid


def test_a_run_killed_by_setup_still_gets_its_job_rows(conn_id):
    """Setup failed the run first (killed by ...); the wait's failure records the jobs."""
    from cpsign_airflow.exceptions import PachydermJobFailed

    commit = "c" * 32
    rid = _committed_run(conn_id, commit)
    with BookkeepingHook(conn_id.id).get_ledger() as ledger:
        ledger.fail_runs_by_commit_set([commit], "killed by cpsign_setup run s: ...")
    jobs = [
        {"pipeline": "LogD-ingestion", "job_id": commit, "state": "JOB_KILLED", "reason": "r"},
        {"pipeline": "LogD-train", "job_id": commit, "state": "JOB_UNRUNNABLE", "reason": "u"},
    ]
    error = PachydermJobFailed("Commit set failed", failed_jobs=jobs, jobs=jobs)
    assert mark_runs_failed(context("w", exception=error), bookkeeping_conn_id=conn_id.id) == []
    with BookkeepingHook(conn_id.id).get_ledger() as ledger:
        run, recorded = ledger.get_run(rid), ledger.list_jobs(rid)
    assert run.error.startswith("killed by cpsign_setup run s")  # setup's word stands
    assert {(j.pipeline, j.state) for j in recorded} == {
        ("LogD-ingestion", "JOB_KILLED"),
        ("LogD-train", "JOB_UNRUNNABLE"),
    }


def test_a_run_failed_by_the_crashing_grace_gets_its_job_rows(conn_id):
    from cpsign_airflow.exceptions import PachydermPipelineUnhealthy

    commit = "d" * 32
    rid = _committed_run(conn_id, commit)
    jobs = [
        {"pipeline": "LogD-ingestion", "job_id": commit, "state": "JOB_SUCCESS"},
        {
            "pipeline": "LogD-precompute",
            "job_id": commit,
            "state": "JOB_STARTING",
            "reason": "pipeline PIPELINE_CRASHING: Back-off pulling image",
            "log_tail": ["worker: cannot start"],
        },
    ]
    error = PachydermPipelineUnhealthy("cannot finish", pipelines=[], jobs=jobs)
    assert mark_runs_failed(context("w", exception=error), bookkeeping_conn_id=conn_id.id) == [rid]
    with BookkeepingHook(conn_id.id).get_ledger() as ledger:
        recorded = {j.pipeline: j for j in ledger.list_jobs(rid)}
    assert set(recorded) == {"LogD-ingestion", "LogD-precompute"}
    crashing = recorded["LogD-precompute"]
    assert crashing.state == "JOB_STARTING" and "PIPELINE_CRASHING" in crashing.reason
    assert crashing.log_tail == "worker: cannot start"
