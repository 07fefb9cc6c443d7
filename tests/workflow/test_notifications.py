"""What alerts say: deadline alerts from Airflow's dict context, full error texts, workflows."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from cpsign_airflow.notifications import deadline_missed, describe, send_alert


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Every alert event goes to a RecordingNotifier; returns a reader of what was sent."""
    path = tmp_path / "alerts.jsonl"
    entry = [{"type": "class", "class": "recording_notifier.RecordingNotifier", "path": str(path)}]
    monkeypatch.setenv(
        "AIRFLOW__CPSIGN__ALERTING",
        json.dumps({f"on_{e}": entry for e in ("failure", "success", "deadline", "held_back")}),
    )
    return lambda: (
        [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    )


def deadline_context(state: str, minutes_late: float) -> dict:
    """What Airflow 3.3's Deadline.handle_miss hands the callback: the DAG run as a dict."""
    deadline = datetime.now(timezone.utc) - timedelta(minutes=minutes_late)
    return {
        "dag_run": {
            "dag_run_id": "manual__2026-12-01T10:00:00+00:00",
            "dag_id": "cpsign_training",
            "state": state,
            "conf": {"configuration": {"workflow_name": "FreeSolv"}},
            "queued_at": "2026-12-01T10:00:00Z",
        },
        "deadline": {"id": "0195", "deadline_time": deadline},
    }


def test_deadline_alert_names_workflow_run_and_how_late(recorded):
    asyncio.run(deadline_missed(context=deadline_context("running", 75)))
    [alert] = recorded()
    assert alert["subject"] == "[cpsign] FreeSolv training missed its deadline"
    body = alert["message"]
    assert "Workflow: FreeSolv" in body
    assert "DAG run: cpsign_training / manual__2026-12-01T10:00:00+00:00" in body
    assert "1 h 15 min late" in body and "Run state: running" in body


def test_deadline_alert_finds_the_workflow_in_bookkeeping(
    recorded, bookkeeping_conn_id, monkeypatch
):
    """A run triggered with the form's defaults has an empty conf: bookkeeping knows."""
    from cpsign_airflow.bookkeeping.hook import BookkeepingHook
    from cpsign_airflow.bookkeeping.records import TaskKey

    monkeypatch.setenv("AIRFLOW__CPSIGN__BOOKKEEPING_CONN_ID", bookkeeping_conn_id)
    run_id = deadline_context("running", 0)["dag_run"]["dag_run_id"]
    with BookkeepingHook(bookkeeping_conn_id).get_ledger() as ledger:
        ledger.upgrade_schema()
        ledger.record_pending_run(
            "hERG", {"workflow_name": "hERG"}, task=TaskKey("cpsign_training", run_id, "t")
        )
    context = deadline_context("running", 0.5)  # made now: the lateness is 30 s and change
    context["dag_run"]["conf"] = {}
    asyncio.run(deadline_missed(context=context))
    [alert] = recorded()
    assert alert["subject"] == "[cpsign] hERG training missed its deadline"
    late = re.search(r"now 0 min (\d+) s late", alert["message"])
    assert late and 30 <= int(late.group(1)) < 90, alert["message"]


def test_a_run_late_before_it_recorded_anything_is_named_by_the_forms_workflow(
    recorded, bookkeeping_conn_id, tmp_path, monkeypatch
):
    """Empty conf, no bookkeeping row yet (the run is stuck before its first record)."""
    form = tmp_path / "form.json"
    form.write_text(json.dumps({"workflow_name": "FreeSolv"}))
    monkeypatch.setenv("AIRFLOW__CPSIGN__FORM_CONFIGURATION", str(form))
    monkeypatch.setenv("AIRFLOW__CPSIGN__BOOKKEEPING_CONN_ID", bookkeeping_conn_id)
    context = deadline_context("running", 1)
    context["dag_run"]["conf"] = {}
    asyncio.run(deadline_missed(context=context))
    [alert] = recorded()
    assert alert["subject"] == "[cpsign] FreeSolv training missed its deadline"
    assert "Workflow: FreeSolv" in alert["message"]


@pytest.mark.parametrize("state", ["failed", "success"])
def test_no_deadline_alert_for_a_run_that_already_finished(recorded, state):
    asyncio.run(deadline_missed(context=deadline_context(state, 5)))
    assert recorded() == []


def test_the_whole_error_text_is_sent_with_every_validation_error(recorded):
    from cpsign_airflow.cpsign.configuration import ConfigurationError, validate_configuration

    with pytest.raises(ConfigurationError) as info:
        validate_configuration({"workflow_name": "bad name!", "train": {"ptype": 9}})
    reasons = str(info.value).splitlines()[1:]
    assert len(reasons) >= 2  # several errors, one per line
    send_alert({"workflow": "x", "exception": info.value}, "failure")
    [alert] = recorded()
    for reason in reasons:
        assert reason.strip() in alert["message"]


class _TI:
    dag_id, run_id, task_id, map_index = "cpsign_retraining", "scheduled__1", "training_run.x", 1

    def xcom_pull(self, task_ids: str, key: str, map_indexes: int):
        assert map_indexes == 1
        return {
            ("training_run.validate", "workflow"): "hERG",
            ("training_run.wait_for_training", "pachyderm_console_url"): None,
            ("training_run.put_config", "pachyderm_console_url"): "https://console/x",
        }.get((task_ids, key))


def test_a_mapped_retraining_alert_names_its_workflow():
    """The workflow module knows its task ids; notifications only read the context."""
    from cpsign_airflow.workflow.training import run_facts

    context = {"ti": _TI(), "exception": RuntimeError("boom")}
    assert run_facts(context) == {"workflow": "hERG", "console_url": "https://console/x"}
    subject, body = describe({**context, **run_facts(context)}, "failure")
    assert subject == "[cpsign] hERG training failed"
    assert "Workflow: hERG" in body and "Error: boom" in body
    assert "Pachyderm Console: https://console/x" in body


def test_a_secret_in_the_error_never_reaches_the_mail(recorded):
    from airflow.sdk.log import mask_secret

    mask_secret("s3cr3t-db-password")
    error = RuntimeError("cannot connect as labuser:s3cr3t-db-password@db:3306")
    send_alert({"workflow": "LogD", "exception": error}, "failure")
    [alert] = recorded()
    assert "s3cr3t-db-password" not in alert["message"] + alert["subject"]
    assert "cannot connect as labuser:" in alert["message"]


def test_a_short_password_does_not_blank_the_alerts_own_words(recorded):
    """docker-compose's default bookkeeping password is "cpsign": only outside texts
    (errors, reasons, log lines) are masked, not the alert's subject and labels."""
    from airflow.sdk.log import mask_secret

    mask_secret("cpsign")
    send_alert({"workflow": "LogD", "exception": RuntimeError("login cpsign refused")}, "failure")
    [alert] = recorded()
    assert alert["subject"] == "[cpsign] LogD training failed"
    assert "login *** refused" in alert["message"]


def test_a_failed_job_error_with_no_text_still_alerts(recorded):
    from cpsign_airflow.exceptions import PachydermJobFailed

    error = PachydermJobFailed("", failed_jobs=[{"pipeline": "LogD-train", "job_id": "j"}])
    send_alert({"workflow": "LogD", "exception": error}, "failure")
    [alert] = recorded()
    assert "Failed pipeline: LogD-train job j" in alert["message"]
    assert "Error: PachydermJobFailed" in alert["message"]


# ------------------------------------------------------------ what each mail carries

SHA = "ab" * 32
COMMIT = "0123456789abcdef0123456789abcdef"
MODELS = [
    {
        "model_name": "LogD_full_split",
        "location": f"LogD-aggregate@{COMMIT}:/model/LogD_full_split.jar",
        "sha256": SHA,
        "size_bytes": 1234,
        "metrics": {
            "confidences": [0.8, 0.9],
            "error_rate": {"0.8": 0.17, "0.9": 0.085},
            "efficiency": {"0.8": 1.25, "0.9": 1.75},
            "median_interval_width": {"0.8": 1.25, "0.9": 1.75},
        },
    }
]
CONSOLE_URL = f"https://console.lab/lineage/default/commit-sets/{COMMIT}"


def outcome_context(quality: str, reason: str) -> dict:
    return {
        "workflow": "LogD",
        "dag_run": {"dag_id": "cpsign_training", "run_id": "manual__1"},
        "models": MODELS,
        "verdicts": {"LogD_full_split": {"quality": quality, "reason": reason}},
        "console_url": CONSOLE_URL,
        "training_run_id": 42,
    }


def assert_model_fields(body: str, quality: str, reason: str) -> None:
    assert "Model: LogD_full_split" in body
    assert f"Location: LogD-aggregate@{COMMIT}:/model/LogD_full_split.jar" in body
    assert f"sha256: {SHA}" in body
    assert f"Verdict: {quality}: {reason}" in body
    assert "Metrics (confidence: validity, median interval width):" in body
    assert "0.8: 0.830, 1.250" in body and "0.9: 0.915, 1.750" in body
    assert "Models page: https://airflow.lab/base/cpsign-models/runs/42" in body
    assert f"Pachyderm Console: {CONSOLE_URL}" in body


@pytest.fixture
def base_url(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.lab/base/")


def test_the_success_mail_names_the_model_its_metrics_verdict_and_links(recorded, base_url):
    reason = "validity within 0.05 at 0.8, 0.9; efficiency within 10% of run 41"
    send_alert(outcome_context("passed", reason), "success")
    [alert] = recorded()
    assert alert["subject"] == "[cpsign] LogD training succeeded"
    assert_model_fields(alert["message"], "passed", reason)


def test_the_held_back_mail_names_the_model_its_metrics_verdict_and_links(recorded, base_url):
    reason = "validity: error rate 0.17 at 0.8 exceeds 0.2 + 0.05"
    context = {**outcome_context("held_back", reason), "held_back": {"LogD_full_split": reason}}
    send_alert(context, "held_back")
    [alert] = recorded()
    assert alert["subject"] == "[cpsign] LogD training succeeded, but its model was held back"
    assert f"Held back by the quality gate: model LogD_full_split: {reason}" in alert["message"]
    assert_model_fields(alert["message"], "held_back", reason)


def test_no_models_page_link_without_a_base_url(monkeypatch):
    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    _, body = describe(outcome_context("passed", "ok"), "success")
    assert "Models page" not in body and "Model: LogD_full_split" in body


class _OutcomeTI:
    """record_outcome's task instance in its success callback: XComs of its group."""

    dag_id, run_id, task_id, map_index = "cpsign_training", "manual__1", "training_run.x", -1

    def __init__(self, quality: str, carried_from: int | None = None) -> None:
        verdict = {"quality": quality, "reason": f"{quality} because"}
        if carried_from is not None:
            verdict["carried_from"] = carried_from
        self.xcoms = {
            ("training_run.validate", "workflow"): "LogD",
            ("training_run.wait_for_training", "pachyderm_console_url"): CONSOLE_URL,
            ("training_run.record_pending_run", "return_value"): 42,
            ("training_run.record_outcome", "models"): MODELS,
            ("training_run.record_outcome", "verdicts"): {"LogD_full_split": verdict},
        }

    def xcom_pull(self, task_ids: str, key: str):
        return self.xcoms.get((task_ids, key))


def test_a_held_back_run_gets_one_mail_not_a_success_mail_too(recorded, base_url):
    from cpsign_airflow.workflow.training import training_success_callback

    training_success_callback({"ti": _OutcomeTI("held_back")})
    assert recorded() == []  # record_outcome sent the held-back mail
    training_success_callback({"ti": _OutcomeTI("passed")})
    [alert] = recorded()
    assert alert["subject"] == "[cpsign] LogD training succeeded"
    assert_model_fields(alert["message"], "passed", "passed because")


def test_a_carried_held_back_verdict_gets_its_success_mail_not_a_held_back_one(recorded, base_url):
    """The same model again (a no-change retraining): record_outcome sent no held-back
    alert, so the run's one mail is the success mail, naming the carried verdict."""
    from cpsign_airflow.workflow.training import training_success_callback

    training_success_callback({"ti": _OutcomeTI("held_back", carried_from=7)})
    [alert] = recorded()
    assert alert["subject"] == "[cpsign] LogD training succeeded"
    assert "held_back" in alert["message"] and "held_back because" in alert["message"]


def sensor_error(commit: str, jobs: list[dict]):
    """The sensor's error for failed jobs, as it builds it (with its log tails)."""
    from cpsign_airflow.exceptions import PachydermJobFailed

    lines = []
    for job in jobs:
        text = f"pipeline {job['pipeline']!r} job {job['job_id']} ended {job['state']}"
        text += f": {job['reason']}" if job.get("reason") else ""
        if job.get("log_tail"):
            text += "\n      log tail:\n        " + "\n        ".join(job["log_tail"])
        lines.append(text)
    return PachydermJobFailed(
        f"Commit set {commit} failed:\n  - " + "\n  - ".join(lines), failed_jobs=jobs, jobs=jobs
    )


def test_the_failure_mails_error_is_whole_not_cut_after_failed(recorded):
    job = {
        "pipeline": "LogD-train",
        "job_id": COMMIT,
        "state": "JOB_FAILURE",
        "reason": "datum 5f failed",
        "log_tail": ["stand-in train: ERROR simulated failure"],
    }
    send_alert({"workflow": "LogD", "exception": sensor_error(COMMIT, [job])}, "failure")
    [alert] = recorded()
    body = alert["message"]
    assert f"Error: Commit set {COMMIT} failed:\n" in body
    assert f"- pipeline 'LogD-train' job {COMMIT} ended JOB_FAILURE: datum 5f failed" in body
    # the log tail is quoted once, under the failed pipeline
    assert body.count("stand-in train: ERROR simulated failure") == 1


def test_the_killed_mail_names_the_setup_run_that_killed_it(
    recorded, bookkeeping_conn_id, monkeypatch
):
    from cpsign_airflow.bookkeeping.hook import BookkeepingHook
    from cpsign_airflow.bookkeeping.records import TaskKey

    monkeypatch.setenv("AIRFLOW__CPSIGN__BOOKKEEPING_CONN_ID", bookkeeping_conn_id)
    killer = (
        "cpsign_setup run manual__setup: pipeline LogD-ingestion was updated while job "
        f"{COMMIT} ran (in_flight=force)"
    )
    with BookkeepingHook(bookkeeping_conn_id).get_ledger() as ledger:
        ledger.upgrade_schema()
        rid = ledger.record_pending_run(
            "LogD", {"workflow_name": "LogD"}, task=TaskKey("cpsign_training", "manual__1", "t")
        )
        ledger.mark_committed(rid, COMMIT, COMMIT)
        assert ledger.fail_runs_by_commit_set([COMMIT], f"killed by {killer}") == [rid]
    jobs = [
        {
            "pipeline": "LogD-ingestion",
            "job_id": COMMIT,
            "state": "JOB_KILLED",
            "reason": "all jobs killed because pipeline was updated for user unknown_username",
        }
    ]
    ti = SimpleNamespace(dag_id="cpsign_training", run_id="manual__1", task_id="t", map_index=-1)
    send_alert({"ti": ti, "exception": sensor_error(COMMIT, jobs)}, "failure")
    [alert] = recorded()
    body = alert["message"]
    assert alert["subject"] == "[cpsign] LogD training failed"
    assert f"Killed by: {killer}" in body
    assert f"Failed pipeline: LogD-ingestion job {COMMIT} (JOB_KILLED)" in body
    assert f"- pipeline 'LogD-ingestion' job {COMMIT} ended JOB_KILLED: all jobs killed" in body


def test_the_crashing_mail_names_the_pipeline_its_job_and_pachds_reason(recorded, base_url):
    from cpsign_airflow.exceptions import PachydermPipelineUnhealthy

    reason = 'Back-off pulling image "lab/stage-unpullable:1"'
    error = PachydermPipelineUnhealthy(
        f"Commit set {COMMIT} cannot finish (its unfinished jobs were left alone):\n"
        f"  - pipeline 'LogD-precompute' has been PIPELINE_CRASHING for 601s (grace 600s): "
        f"{reason}\n      no log lines (its workers may never have started)",
        pipelines=[
            {
                "pipeline": "LogD-precompute",
                "project": "default",
                "state": "PIPELINE_CRASHING",
                "reason": reason,
                "unhealthy_seconds": 601.2,
                "log_tail": ["worker: cannot start"],
                "job_id": COMMIT,
            }
        ],
    )
    context = {"workflow": "LogD", "exception": error, "console_url": CONSOLE_URL}
    send_alert({**context, "training_run_id": 7}, "failure")
    [alert] = recorded()
    body = alert["message"]
    assert (
        f"Unhealthy pipeline: LogD-precompute job {COMMIT} (PIPELINE_CRASHING for 601 s): "
        f"{reason}" in body
    )
    assert "    worker: cannot start" in body
    assert "- pipeline 'LogD-precompute' has been PIPELINE_CRASHING for 601s" in body
    assert "Models page: https://airflow.lab/base/cpsign-models/runs/7" in body
    assert f"Pachyderm Console: {CONSOLE_URL}" in body


def test_a_secret_in_a_jobs_reason_or_log_tail_never_reaches_the_mail(recorded):
    from airflow.sdk.log import mask_secret

    from cpsign_airflow.exceptions import PachydermPipelineUnhealthy

    for secret in ("r3ason-s3cret", "l0g-s3cret", "pipe-r3ason-s3cret", "pipe-l0g-s3cret"):
        mask_secret(secret)
    job = {
        "pipeline": "LogD-ingestion",
        "job_id": COMMIT,
        "state": "JOB_FAILURE",
        "reason": "connect failed for labuser:r3ason-s3cret",
        "log_tail": ["ingest: DSN mysql://labuser:l0g-s3cret@db/chembl"],
    }
    unhealthy = PachydermPipelineUnhealthy(
        "Commit set x cannot finish",
        pipelines=[
            {
                "pipeline": "LogD-train",
                "state": "PIPELINE_CRASHING",
                "reason": "secret pipe-r3ason-s3cret not found",
                "log_tail": ["token pipe-l0g-s3cret"],
                "job_id": COMMIT,
            }
        ],
    )
    # the exception's own text is masked elsewhere: here only the jobs' fields carry secrets
    failed = sensor_error(COMMIT, [{k: v for k, v in job.items() if k != "log_tail"}])
    failed.failed_jobs = [job]
    send_alert({"workflow": "LogD", "exception": failed}, "failure")
    send_alert({"workflow": "LogD", "exception": unhealthy}, "failure")
    first, second = recorded()
    assert "connect failed for labuser:***" in first["message"]
    assert "ingest: DSN mysql://labuser:***@db/chembl" in first["message"]
    assert "secret *** not found" in second["message"] and "token ***" in second["message"]
    for alert in (first, second):
        assert "s3cret" not in alert["message"] + alert["subject"]


def test_the_smtp_mail_is_html_escaped(monkeypatch):
    """A real SMTP exchange (aiosmtpd): markup in an error reaches the mail as text."""
    import email
    import socket

    from aiosmtpd.controller import Controller

    class Sink:
        def __init__(self) -> None:
            self.messages: list[bytes] = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope.content)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SMTP_SINK",
            json.dumps(
                {
                    "conn_type": "smtp",
                    "host": "127.0.0.1",
                    "port": port,
                    "extra": {
                        "disable_tls": True,
                        "disable_ssl": True,
                        "from_email": "airflow@lab.example",
                        "timeout": 10,
                        "retry_limit": 0,
                    },
                }
            ),
        )
        monkeypatch.setenv(
            "AIRFLOW__CPSIGN__ALERTING",
            json.dumps(
                {
                    "on_failure": [
                        {"type": "smtp", "to": "models@lab.example", "smtp_conn_id": "smtp_sink"}
                    ]
                }
            ),
        )
        error = RuntimeError('<script>alert("x")</script> & <b>bold</b>')
        assert send_alert({"workflow": "LogD", "exception": error}, "failure") == 1
    finally:
        controller.stop()
    [raw] = sink.messages
    message = email.message_from_bytes(raw)
    [html_part] = [p for p in message.walk() if p.get_content_type() == "text/html"]
    body = html_part.get_payload(decode=True).decode()
    assert "<script>" not in body and "<b>bold</b>" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in body


def test_no_deadline_alert_for_a_run_that_recorded_its_outcome(
    recorded, bookkeeping_conn_id, monkeypatch
):
    """The deadline may pass while the run's last (skipped) tasks run: bookkeeping says
    the run succeeded before it, though the DAG run is still running. A run whose outcome
    came after its deadline was late, and is alerted."""
    from cpsign_airflow.bookkeeping.hook import BookkeepingHook
    from cpsign_airflow.bookkeeping.records import TaskKey

    monkeypatch.setenv("AIRFLOW__CPSIGN__BOOKKEEPING_CONN_ID", bookkeeping_conn_id)
    context = deadline_context("running", 5)
    run_id = context["dag_run"]["dag_run_id"]
    with BookkeepingHook(bookkeeping_conn_id).get_ledger() as ledger:
        ledger.upgrade_schema()
        rid = ledger.record_pending_run(
            "FreeSolv", {"workflow_name": "FreeSolv"}, task=TaskKey("cpsign_training", run_id, "t")
        )
        ledger.mark_committed(rid, COMMIT, COMMIT)
    asyncio.run(deadline_missed(context=deadline_context("running", 5)))
    assert len(recorded()) == 1  # still training: late
    with BookkeepingHook(bookkeeping_conn_id).get_ledger() as ledger:
        ledger.finish_run(rid, "succeeded")
    # the outcome was recorded after that deadline: the run was late, whenever the
    # callback runs
    asyncio.run(deadline_missed(context=deadline_context("running", 5)))
    assert len(recorded()) == 2
    # a deadline that passed after the outcome was recorded (the skipped tasks ran on)
    asyncio.run(deadline_missed(context=deadline_context("running", -0.5)))
    assert len(recorded()) == 2  # no alert


def test_the_deadline_alert_never_blocks_the_event_loop_and_is_bounded(monkeypatch):
    """Sending (bookkeeping, Variable, SMTP) runs in a thread; the loop keeps ticking,
    and the callback returns after DEADLINE_ALERT_TIMEOUT however long sending takes."""
    import threading
    import time

    from cpsign_airflow import notifications

    loop_threads, release = [], threading.Event()

    def slow_alert(context):
        loop_threads.append(threading.current_thread().name)
        release.wait(5)  # an SMTP server that does not answer
        return 1

    monkeypatch.setattr(notifications, "_deadline_alert", slow_alert)
    monkeypatch.setattr(notifications, "DEADLINE_ALERT_TIMEOUT", 0.5)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        await deadline_missed(context=deadline_context("running", 5))
        elapsed = time.monotonic() - started
        task.cancel()
        return ticks, elapsed

    try:
        ticks, elapsed = asyncio.run(main())
    finally:
        release.set()
    assert 0.4 < elapsed < 2.0
    assert ticks >= 10  # the loop ran all along
    assert loop_threads and loop_threads[0].startswith("cpsign-alert")


def test_downstream_reasons_name_the_upstream_pipeline_not_the_input():
    from cpsign_airflow.hooks.pachyderm_outcome import UPSTREAM_FAILED_PREFIX as P
    from cpsign_airflow.hooks.pachyderm_outcome import name_upstream_pipelines

    spec_input = {
        "cross": [
            {"pfs": {"name": "precomputed", "repo": "LogD-precompute", "glob": "/"}},
            {"union": [{"pfs": {"repo": "LogD-ingestion", "glob": "/"}}]},
        ]
    }
    assert (
        name_upstream_pipelines(P + "precomputed, LogD-ingestion", spec_input)
        == P + "LogD-precompute, LogD-ingestion"
    )
    assert name_upstream_pipelines("datum 5f failed", spec_input) == "datum 5f failed"
    assert name_upstream_pipelines(P + "unknown", None) == P + "unknown"
