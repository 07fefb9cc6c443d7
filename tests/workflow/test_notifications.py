"""What alerts say: deadline alerts from Airflow's dict context, full error texts, workflows."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

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
