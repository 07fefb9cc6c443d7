"""TrainingLedger against MySQL/MariaDB and SQLite: lifecycle, idempotence, conflicts, hostile input."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from cpsign_airflow.bookkeeping.engine import RetryPolicy
from cpsign_airflow.bookkeeping.errors import (
    ArtifactNotFound,
    BookkeepingInputError,
    RunNotFound,
    RunStateConflict,
)
from cpsign_airflow.bookkeeping.ledger import TrainingLedger
from cpsign_airflow.bookkeeping.records import TaskKey

CONFIG = {
    "workflow_name": "LogD",
    "database": {"host": "chembl-mysql", "user": "root", "db_name": "chembl_24"},
    "query": {"query_limit": None, "smi_columns": ["canonical_smiles", "acd_logd"]},
    "parallellism": {"splits_per_model": 1},
    "cpsign": {"ptype": 2, "impl": "liblinear", "nr-models": 5, "epsilon": 0.0001},
}
MODEL = "LogD-aggregate@0123456789abcdef0123456789abcdef:/models/LogD_full_split.jar"


def _count(ledger: TrainingLedger, table: str) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()


def key(run: str = "manual__2026-11-27T10:00:00+00:00", task: str = "record_pending_run"):
    return TaskKey(dag_id="cpsign_train_LogD", run_id=run, task_id=task)


def test_full_run_lifecycle(ledger):
    run_id = ledger.record_pending_run("LogD", CONFIG, trigger_kind="manual", task=key())
    run = ledger.get_run(run_id)
    assert (run.status, run.workflow, run.trigger_kind) == ("pending", "LogD", "manual")
    assert run.configuration == CONFIG
    assert run.config_sha256 == hashlib.sha256(run.configuration_json.encode()).hexdigest()
    assert run.started_at.tzinfo is not None and run.committed_at is None

    run = ledger.mark_committed(run_id, "a" * 32, "b" * 32)
    assert (run.status, run.commit_id, run.commit_set_id) == ("committed", "a" * 32, "b" * 32)
    assert run.committed_at >= run.started_at
    assert ledger.mark_running(run_id).status == "running"

    started = datetime(2026, 11, 27, 10, 1, 2, 345678, tzinfo=timezone.utc)
    [job] = ledger.record_jobs(
        run_id,
        [
            {
                "pipeline": "LogD-training",
                "job_id": "c" * 32,
                "state": "JOB_RUNNING",
                "data_total": 5,
                "started": started.isoformat(),
            }
        ],
    )
    assert job.started_at == started  # microseconds survive on MySQL too (DATETIME(6))
    [art] = ledger.record_artifacts(
        run_id, [{"model_name": "LogD_full_split", "location": MODEL, "size_bytes": 1 << 40}]
    )
    assert (art.size_bytes, art.publication_status) == (1 << 40, "unpublished")
    [art] = ledger.record_publication(
        run_id,
        "LogD_full_split",
        status="published",
        target="prediction_service",
        url="https://predict.example.org/api/v2/predict",
    )
    assert art.published_at is not None and art.publication_target == "prediction_service"

    run = ledger.finish_run(run_id, "succeeded")
    assert run.status == "succeeded" and run.finished_at >= run.committed_at
    assert ledger.latest_successful_configuration("LogD") == CONFIG
    assert [r.id for r in ledger.list_runs("LogD", status="succeeded")] == [run_id]
    assert ledger.get_workflow("LogD").config_repo == "config"


def test_pending_run_retried_by_the_same_task_returns_the_same_id(ledger):
    first = ledger.record_pending_run("LogD", CONFIG, task=key())
    again = ledger.record_pending_run("LogD", CONFIG, task=key())
    other_dag_run = ledger.record_pending_run("LogD", CONFIG, task=key(run="scheduled__x"))
    mapped = ledger.record_pending_run(
        "LogD", CONFIG, task=TaskKey("cpsign_train_LogD", key().run_id, "record_pending_run", 3)
    )

    assert first == again
    assert len({first, other_dag_run, mapped}) == 3
    assert _count(ledger, "cpsign_training_runs") == 3
    assert _count(ledger, "cpsign_workflows") == 1


def test_retry_with_another_configuration_is_a_conflict_not_an_overwrite(ledger):
    run_id = ledger.record_pending_run("LogD", CONFIG, task=key())
    with pytest.raises(RunStateConflict, match=f"run {run_id}"):
        ledger.record_pending_run("LogD", {**CONFIG, "cpsign": {}}, task=key())
    assert ledger.get_run(run_id).configuration == CONFIG


def test_status_writes_are_idempotent_and_keep_the_first_error(ledger):
    run_id = ledger.record_pending_run("LogD", CONFIG, task=key())
    ledger.mark_committed(run_id, "a" * 32, "b" * 32)
    ledger.mark_committed(run_id, "a" * 32, "b" * 32)  # retried task
    ledger.mark_committed(run_id, "a" * 32)  # commit set unknown to the caller
    with pytest.raises(RunStateConflict, match="refusing to record commit"):
        ledger.mark_committed(run_id, "f" * 32)

    first = ledger.finish_run(run_id, "failed", "LogD-training: JOB_FAILURE, OutOfMemory")
    second = ledger.finish_run(run_id, "failed", "a later, different error")
    assert second.error == first.error == "LogD-training: JOB_FAILURE, OutOfMemory"
    assert second.finished_at == first.finished_at
    with pytest.raises(RunStateConflict, match="failed; it cannot be finished as succeeded"):
        ledger.finish_run(run_id, "succeeded")
    with pytest.raises(RunStateConflict):
        ledger.mark_running(run_id)
    assert ledger.get_run(run_id).status == "failed"


def test_a_run_cannot_succeed_before_its_commit(ledger):
    run_id = ledger.record_pending_run("LogD", CONFIG)
    with pytest.raises(RunStateConflict, match="pending"):
        ledger.finish_run(run_id, "succeeded")
    with pytest.raises(RunStateConflict, match="pending"):
        ledger.mark_running(run_id)
    failed = ledger.finish_run(run_id, "failed", "commit to config@master refused")
    assert (failed.status, failed.commit_id) == ("failed", None)
    with pytest.raises(RunStateConflict, match="never committed"):
        ledger.mark_committed(run_id, "a" * 32)


def test_jobs_and_artifacts_upsert_on_retry(ledger):
    run_id = ledger.record_pending_run("LogD", CONFIG)
    job = {"pipeline": "LogD-training", "job_id": "c" * 32, "state": "JOB_RUNNING"}
    ledger.record_jobs(run_id, [job])
    ledger.record_jobs(run_id, [job])
    [done] = ledger.record_jobs(
        run_id,
        [{**job, "state": "JOB_SUCCESS", "data_processed": 4, "data_skipped": 1, "data_total": 5}],
    )
    [kept] = ledger.record_jobs(run_id, [{**job, "state": "JOB_SUCCESS"}])  # None keeps values
    assert (done.id, done.state, done.data_processed) == (kept.id, "JOB_SUCCESS", 4)
    assert kept.data_total == 5
    assert _count(ledger, "cpsign_pipeline_jobs") == 1

    art = {"model_name": "LogD_full_split", "location": MODEL, "sha256": "e" * 64}
    ledger.record_artifacts(run_id, [art])
    [again] = ledger.record_artifacts(run_id, [{**art, "size_bytes": 10}])
    assert (again.size_bytes, again.sha256) == (10, "e" * 64)
    assert _count(ledger, "cpsign_model_artifacts") == 1
    with pytest.raises(RunStateConflict, match="sha256"):
        ledger.record_artifacts(run_id, [{**art, "sha256": "f" * 64}])


def test_deployments_keep_the_first_try_action(ledger):
    task = key(task="deploy_pipelines")
    deps = [
        {"pipeline": "LogD-ingestion", "spec_hash": "1" * 64, "action": "created"},
        {"pipeline": "LogD-training", "spec_hash": "2" * 64, "action": "updated"},
    ]
    first = ledger.record_deployments("LogD", deps, task=task, project="chem")
    # The retry sees the pipelines in place already and would report "unchanged".
    retry = ledger.record_deployments(
        "LogD", [{**d, "action": "unchanged"} for d in deps], task=task
    )
    assert [d.action for d in retry] == ["created", "updated"]
    assert [d.id for d in retry] == [d.id for d in first]
    later = ledger.record_deployments("LogD", [{**deps[0], "action": "unchanged"}])
    assert later[0].action == "unchanged"
    assert [d.action for d in ledger.list_deployments("LogD")] == [
        "unchanged",
        "updated",
        "created",
    ]
    assert ledger.get_workflow("LogD").project == "chem"


def test_latest_successful_configuration_skips_failed_and_open_runs(ledger):
    assert ledger.latest_successful_configuration("LogD") is None
    configs = [{"v": i} for i in range(4)]
    ids = [ledger.record_pending_run("LogD", c) for c in configs]
    for rid in ids[:3]:
        ledger.mark_committed(rid, f"{rid:032x}")
    ledger.finish_run(ids[0], "succeeded")
    ledger.finish_run(ids[1], "succeeded")
    ledger.finish_run(ids[2], "failed", "boom")
    ledger.record_pending_run("hERG", {"other": True})

    assert ledger.latest_successful_configuration("LogD") == {"v": 1}
    assert ledger.latest_successful_run("LogD").id == ids[1]
    assert ledger.latest_successful_configuration("hERG") is None


def test_fail_open_runs_of_a_dag_run(ledger):
    a = ledger.record_pending_run("LogD", CONFIG, task=key())
    b = ledger.record_pending_run("LogD", CONFIG, task=key(task="other"))
    done = ledger.record_pending_run("LogD", CONFIG, task=key(task="third"))
    ledger.mark_committed(done, "a" * 32)
    ledger.finish_run(done, "succeeded")
    elsewhere = ledger.record_pending_run("LogD", CONFIG, task=key(run="other-run"))

    assert sorted(ledger.fail_open_runs("cpsign_train_LogD", key().run_id, "task x died")) == [
        a,
        b,
    ]
    assert ledger.get_run(a).error == "task x died"
    assert ledger.get_run(done).status == "succeeded"
    assert ledger.get_run(elsewhere).status == "pending"
    assert ledger.fail_open_runs("cpsign_train_LogD", key().run_id, "again") == []


def test_fail_open_runs_of_one_mapped_expansion_leaves_the_others(ledger):
    """A failed task of a mapped retraining fails its own workflow's run only."""
    logd = ledger.record_pending_run("LogD", CONFIG, task=key(task="tg.record_pending_run"))
    mapped = [
        ledger.record_pending_run(
            w, {**CONFIG, "workflow_name": w}, task=TaskKey(key().dag_id, key().run_id, "tg.r", i)
        )
        for i, w in enumerate(("hERG", "LogP"))
    ]
    assert ledger.fail_open_runs("cpsign_train_LogD", key().run_id, "x", map_index=1) == [mapped[1]]
    assert [ledger.get_run(i).status for i in (logd, mapped[0])] == ["pending", "pending"]
    # an unmapped task (map index -1) fails every open run of the DAG run
    assert sorted(ledger.fail_open_runs("cpsign_train_LogD", key().run_id, "y", map_index=-1)) == [
        logd,
        mapped[0],
    ]


def test_failed_jobs_keep_their_log_tail(ledger):
    run_id = ledger.record_pending_run("LogD", CONFIG, task=key())
    [job] = ledger.record_jobs(
        run_id,
        [
            {
                "pipeline": "LogD-train",
                "job_id": "a" * 32,
                "state": "JOB_FAILURE",
                "reason": "datum 0123 failed",
                "log_tail": ["cpsign train: loading", "ERROR: Säure 😀 cost must be > 0"],
            }
        ],
    )
    assert job.log_tail == "cpsign train: loading\nERROR: Säure 😀 cost must be > 0"
    assert ledger.list_jobs(run_id)[0].log_tail == job.log_tail
    # a later update without a tail keeps it; an empty tail is stored as NULL
    ledger.record_jobs(run_id, [{"pipeline": "LogD-train", "job_id": "a" * 32, "state": "X"}])
    assert ledger.list_jobs(run_id)[0].log_tail == job.log_tail
    [other] = ledger.record_jobs(
        run_id, [{"pipeline": "LogD-validate", "job_id": "a" * 32, "state": "S", "log_tail": []}]
    )
    assert other.log_tail is None


def test_fail_runs_by_commit_set_fails_only_open_runs_of_those_sets(ledger):
    killed, other = "a" * 32, "b" * 32
    committed = ledger.record_pending_run("LogD", CONFIG, task=key())
    ledger.mark_committed(committed, killed, killed)
    running = ledger.record_pending_run("LogD", CONFIG, task=key(task="second"))
    ledger.mark_committed(running, killed, killed)
    ledger.mark_running(running)
    done = ledger.record_pending_run("LogD", CONFIG, task=key(task="third"))
    ledger.mark_committed(done, killed, killed)
    ledger.finish_run(done, "succeeded")
    elsewhere = ledger.record_pending_run("LogD", CONFIG, task=key(task="fourth"))
    ledger.mark_committed(elsewhere, other, other)
    pending = ledger.record_pending_run("LogD", CONFIG, task=key(task="fifth"))

    reason = "killed by cpsign_setup run r1: pipeline LogD-train was updated while job a… ran"
    assert sorted(ledger.fail_runs_by_commit_set([killed], reason)) == [committed, running]
    assert {ledger.get_run(i).status for i in (committed, running)} == {"failed"}
    assert ledger.get_run(running).error == reason
    assert ledger.get_run(running).finished_at is not None
    assert ledger.get_run(done).status == "succeeded"
    assert ledger.get_run(elsewhere).status == "committed"
    assert ledger.get_run(pending).status == "pending"
    assert ledger.fail_runs_by_commit_set([killed], "again") == []  # already failed: kept
    assert ledger.get_run(running).error == reason
    assert ledger.fail_runs_by_commit_set([], "nothing") == []
    with pytest.raises(BookkeepingInputError, match="commit_set_ids"):
        ledger.fail_runs_by_commit_set(killed, "a string is not a list")
    with pytest.raises(BookkeepingInputError, match="error"):
        ledger.fail_runs_by_commit_set([other], "")


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda led: led.record_pending_run("Log D", CONFIG), "workflow"),
        (lambda led: led.record_pending_run("LogD", CONFIG, trigger_kind="cron"), "trigger_kind"),
        (lambda led: led.record_pending_run("LogD", "[1, 2]"), "configuration"),
        (lambda led: led.record_pending_run("LogD", "{not json"), "configuration"),
        (lambda led: led.record_pending_run("LogD", {"x": object()}), "configuration"),
        (lambda led: led.record_pending_run("LogD", {"x": "\ud800"}), "configuration"),
        (lambda led: led.record_pending_run("LogD", CONFIG, project="p" * 200), "project"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(ledger, call, field):
    with pytest.raises(BookkeepingInputError) as info:
        call(ledger)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}:")
    assert _count(ledger, "cpsign_workflows") == 0
    assert _count(ledger, "cpsign_training_runs") == 0


def test_bad_item_in_a_batch_writes_none_of_the_batch(ledger):
    run_id = ledger.record_pending_run("LogD", CONFIG)
    good = {"pipeline": "LogD-training", "job_id": "c" * 32, "state": "JOB_SUCCESS"}
    with pytest.raises(BookkeepingInputError, match=r"^jobs\[1\]\.data_total:"):
        ledger.record_jobs(run_id, [good, {**good, "job_id": "d" * 32, "data_total": -1}])
    with pytest.raises(BookkeepingInputError, match=r"^artifacts\[0\]\.location:"):
        ledger.record_artifacts(run_id, [{"model_name": "m", "location": "/models/m.jar"}])
    with pytest.raises(BookkeepingInputError, match=r"^deployments\[0\]\.action:"):
        ledger.record_deployments("LogD", [{"pipeline": "p", "spec_hash": "1", "action": "x"}])
    with pytest.raises(BookkeepingInputError, match=r"^status:"):
        ledger.finish_run(run_id, "done")
    with pytest.raises(BookkeepingInputError, match=r"^error:"):
        ledger.finish_run(run_id, "failed")
    assert _count(ledger, "cpsign_pipeline_jobs") == 0
    assert _count(ledger, "cpsign_model_artifacts") == 0
    assert _count(ledger, "cpsign_pipeline_deployments") == 0
    assert ledger.get_run(run_id).status == "pending"


def test_missing_run_and_artifact_are_clear(ledger):
    with pytest.raises(RunNotFound, match="run 999"):
        ledger.mark_committed(999, "a" * 32)
    with pytest.raises(RunNotFound, match="run 999"):
        ledger.record_jobs(999, [{"pipeline": "p", "job_id": "j", "state": "s"}])
    run_id = ledger.record_pending_run("LogD", CONFIG)
    with pytest.raises(ArtifactNotFound, match="LogD_full_split"):
        ledger.record_publication(run_id, "LogD_full_split", status="published")


HOSTILE = [
    'it\'s "quoted" and `backticked`',
    "back\\slash \\' \\\" \\n \\0 %s %(name)s ? :param",
    "'; DROP TABLE cpsign_training_runs; --",
    "Robert'); DELETE FROM cpsign_workflows WHERE ('1'='1",
    "Ünïcödé ✓ 日本語 한국어 עברית العربية",
    "emoji 😀🧪💊 and ZWJ 👩‍🔬 and flags 🇸🇪",
    "nul \x00 inside, tab\t, newline\n, CR\r, \x7f",
    "trailing spaces   ",
    "\u2028\u2029 line separators, \ufeff BOM, \U0010ffff last code point",
]


def test_hostile_strings_round_trip_exactly(ledger):
    config = {s: s for s in HOSTILE} | {"nested": {"list": HOSTILE, "n": [1.5e-300, -0.0, 2**62]}}
    run_id = ledger.record_pending_run("LogD", config, task=key(run=HOSTILE[2][:250]))
    ledger.mark_committed(run_id, "a" * 32)
    error = "\n".join(HOSTILE)
    ledger.record_jobs(
        run_id,
        [{"pipeline": "LogD-training", "job_id": "j", "state": "JOB_FAILURE", "reason": error}],
    )
    ledger.record_artifacts(
        run_id,
        [
            {
                "model_name": HOSTILE[4],
                "location": "LogD-aggregate@master:/models/" + HOSTILE[5].replace(" ", "_"),
                "publication_status": "failed",
                "publication_error": error,
            }
        ],
    )
    ledger.finish_run(run_id, "failed", error)

    run = ledger.get_run(run_id)
    assert run.configuration == config
    assert run.error == error
    assert run.airflow_run_id == HOSTILE[2]
    assert ledger.list_jobs(run_id)[0].reason == error
    [art] = ledger.list_artifacts(run_id)
    assert (art.model_name, art.publication_error) == (HOSTILE[4], error)
    assert _count(ledger, "cpsign_training_runs") == 1  # the table is still there, of course


def test_configuration_text_is_kept_byte_for_byte(ledger):
    text = '{\n  "workflow_name": "LogD",  "b": "\\u00e9 é 😀",\n  "a": [1.0, 1e3]\n}\n'
    run_id = ledger.record_pending_run("LogD", text)
    run = ledger.get_run(run_id)
    assert run.configuration_json == text
    assert run.config_sha256 == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_one_megabyte_configuration_round_trips(ledger):
    rows = [{"smiles": "C1=CC=CC=C1" * 3, "logd": i / 7, "note": "é😀'\"\\"} for i in range(11000)]
    text = json.dumps({"workflow_name": "LogD", "rows": rows}, ensure_ascii=False)
    assert len(text.encode()) > 1_000_000
    run_id = ledger.record_pending_run("LogD", text)
    run = ledger.get_run(run_id)
    assert run.configuration_json == text
    assert run.config_sha256 == hashlib.sha256(text.encode()).hexdigest()
    big_error = "x" * 200_000 + "😀"  # beyond MySQL TEXT's 64 KiB: LONGTEXT keeps it whole
    ledger.finish_run(run_id, "failed", big_error)
    assert ledger.get_run(run_id).error == big_error


def test_workflow_names_are_case_sensitive_on_every_backend(ledger):
    a = ledger.record_pending_run("LogD", CONFIG)
    b = ledger.record_pending_run("logd", CONFIG)
    assert ledger.get_run(a).workflow == "LogD" and ledger.get_run(b).workflow == "logd"
    assert _count(ledger, "cpsign_workflows") == 2


def test_two_dag_runs_recording_at_once(bookkeeping_url, ledger, caplog):
    """Two DAG runs record runs of one new workflow concurrently, each task retried once."""
    barrier = threading.Barrier(2, timeout=30)
    gate_used: set[int] = set()
    lock = threading.Lock()
    ledgers = [
        TrainingLedger.from_url(bookkeeping_url, retry=RetryPolicy(attempts=3, backoff=0.01))
        for _ in range(2)
    ]
    for n, led in enumerate(ledgers):

        @sa.event.listens_for(led.engine, "before_cursor_execute")
        def _line_up(conn, cursor, statement, params, context, executemany, n=n):
            # Both writers have looked for the workflow and found none: insert together.
            if statement.startswith("INSERT INTO cpsign_workflows"):
                with lock:
                    first = n not in gate_used
                    gate_used.add(n)
                if first:
                    barrier.wait()

    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def dag_run(n: int) -> None:
        led = ledgers[n]
        try:
            task = key(run=f"manual__{n}")
            rid = led.record_pending_run("LogD", {"run": n}, task=task)
            assert led.record_pending_run("LogD", {"run": n}, task=task) == rid
            led.mark_committed(rid, f"{n:032x}")
            led.record_jobs(rid, [{"pipeline": "LogD-training", "job_id": "j", "state": "S"}])
            led.record_artifacts(rid, [{"model_name": "m", "location": f"r@{n}:/m.jar"}])
            led.finish_run(rid, "succeeded")
            results[n] = [rid]
        except BaseException as exc:
            errors.append(exc)

    caplog.set_level(logging.INFO, logger="cpsign_airflow.bookkeeping.engine")
    threads = [threading.Thread(target=dag_run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert errors == []
    assert gate_used == {0, 1}
    assert "concurrent write" in caplog.text  # the loser of the race re-read, did not fail
    ids = sorted(r for rs in results.values() for r in rs)
    assert len(set(ids)) == 2
    assert _count(ledger, "cpsign_workflows") == 1
    assert _count(ledger, "cpsign_training_runs") == 2
    assert _count(ledger, "cpsign_pipeline_jobs") == 2
    assert [r.status for r in ledger.list_runs("LogD")] == ["succeeded", "succeeded"]
    assert {ledger.get_run(i).configuration["run"] for i in ids} == {0, 1}
    for led in ledgers:
        led.dispose()


def test_rejected_run_is_recorded_once_with_its_reasons(ledger):
    reasons = "configuration.json is invalid:\n  - train.ptype: 4 is not one of [1, 2, 3, 5]"
    first = ledger.record_rejected_run("LogD", CONFIG, reasons, task=key(task="validate"))
    again = ledger.record_rejected_run("LogD", CONFIG, reasons, task=key(task="validate"))
    assert first == again  # a retried validation records one row
    run = ledger.get_run(first)
    assert (run.status, run.error, run.commit_id) == ("rejected", reasons, None)
    assert run.finished_at is not None
    with pytest.raises(BookkeepingInputError, match="error"):
        ledger.record_rejected_run("LogD", CONFIG, "", task=key(task="other"))
    # a rejected run never becomes the configuration retraining reuses
    assert ledger.latest_successful_configuration("LogD") is None


def test_upgrade_from_0005_allows_rejected_runs(bookkeeping_url):
    from cpsign_airflow.bookkeeping import schema
    from cpsign_airflow.bookkeeping.engine import engine_from_url

    engine = engine_from_url(bookkeeping_url)
    schema.upgrade(engine, "0005")
    led = TrainingLedger.from_url(bookkeeping_url)
    with pytest.raises(sa.exc.DBAPIError):  # the old CHECK constraint refuses the new status
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO cpsign_workflows (name, project, config_repo, created_at,"
                    " updated_at) VALUES ('W', 'p', 'c', '2026-01-01', '2026-01-01')"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO cpsign_training_runs (workflow_id, map_index, task_key,"
                    " trigger_kind, configuration, config_sha256, status, started_at,"
                    " updated_at) SELECT id, -1, 'k', 'manual', '{}', 'c', 'rejected',"
                    " '2026-01-01', '2026-01-01' FROM cpsign_workflows"
                )
            )
    assert led.upgrade_schema().after == "0007"
    run_id = led.record_rejected_run("LogD", CONFIG, "bad")
    assert led.get_run(run_id).status == "rejected"
    assert schema.upgrade(engine).after == "0007"  # again: nothing to do
    led.dispose()
    engine.dispose()
