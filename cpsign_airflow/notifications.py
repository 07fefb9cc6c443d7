"""Alerts for CPSign training runs, through Airflow notifiers.

Which notifiers fire is configuration, read when an alert is sent (never at
DAG parse time), from the Airflow Variable ``cpsign_alerting`` or, failing
that, the ``[cpsign] alerting`` option (``AIRFLOW__CPSIGN__ALERTING``)::

    {
      "on_failure":  [{"type": "smtp", "to": "models@lab.example", "smtp_conn_id": "smtp_default"},
                      {"type": "slack", "slack_conn_id": "slack_api_default", "channel": "#models"}],
      "on_success":  [{"type": "log"}],
      "on_deadline": [{"type": "smtp", "to": "oncall@lab.example"}],
      "on_held_back": [{"type": "smtp", "to": "models@lab.example"}]
    }

``held_back`` fires when the quality gate keeps a newly trained model from being
served (the run itself succeeds); the alert gives each model's reason.

Types: ``log`` (the default, always available), ``smtp`` (apache-airflow-providers-smtp),
``slack`` (apache-airflow-providers-slack, when installed), and ``class`` with
``"class": "package.module.Notifier"`` for any BaseNotifier whose constructor
takes ``subject`` and ``message`` keywords plus the entry's other keys. A type
whose provider is missing is logged and the message is logged instead, so an
alert is never silently lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

VARIABLE_NAME = "cpsign_alerting"
EVENTS = ("failure", "success", "deadline", "held_back")
#: How many of a failed job's last log lines an alert quotes.
LOG_TAIL_LINES = 10


def alerting_config() -> dict[str, Any]:
    """The alerting configuration, from the Variable, then the config option; {} if none."""
    raw: Any = None
    try:
        from airflow.sdk import Variable

        raw = Variable.get(VARIABLE_NAME, default=None)
    except Exception as err:  # no API server/DB reachable: fall back to config
        log.debug("Variable %s unavailable: %s", VARIABLE_NAME, err)
    if raw is None:
        from airflow.sdk import conf

        raw = conf.get("cpsign", "alerting", fallback=None)
    if not raw:
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as err:
            log.error(
                "Alerting configuration %s is not JSON (%s); alerts are only logged",
                VARIABLE_NAME,
                err,
            )
            return {}
    return raw if isinstance(raw, dict) else {}


def describe(context: Mapping[str, Any], event: str) -> tuple[str, str]:
    """Subject and body naming workflow, failed pipelines, job ids and a console link."""
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    params = context.get("params") or {}
    workflow = (
        context.get("workflow")
        or params.get("workflow_name")
        or (getattr(dag_run, "conf", None) or {}).get("workflow_name")
    )
    exception = context.get("exception")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", "?")
    run_id = getattr(dag_run, "run_id", None) or getattr(ti, "run_id", "?")
    what = {
        "failure": "failed",
        "success": "succeeded",
        "deadline": "missed its deadline",
        "held_back": "succeeded, but its model was held back",
    }[event]
    subject = f"[cpsign] {workflow or dag_id} training {what}"
    lines = [f"Workflow: {workflow or 'unknown'}", f"DAG run: {dag_id} / {run_id}"]
    if ti is not None and event == "failure":
        lines.append(f"Failed task: {getattr(ti, 'task_id', '?')}")
    for model, reason in (context.get("held_back") or {}).items():
        lines.append(f"Held back by the quality gate: model {model}: {reason}")
    for job in getattr(exception, "failed_jobs", None) or []:
        lines.append(
            f"Failed pipeline: {job.get('pipeline')} job {job.get('job_id')} "
            f"({job.get('state')}): {job.get('reason') or 'no reason given'}"
        )
        tail = job.get("log_tail") or []
        if tail:
            lines.append(f"  Last log lines of {job.get('pipeline')}:")
            lines.extend(f"    {line}" for line in tail[-LOG_TAIL_LINES:])
    if exception is not None:
        lines.append(
            f"Error: {str(exception).splitlines()[0] if str(exception) else type(exception).__name__}"
        )
    console = _console_link(context)
    if console:
        lines.append(f"Pachyderm Console: {console}")
    return subject, "\n".join(lines)


def _console_link(context: Mapping[str, Any]) -> str | None:
    ti = context.get("ti")
    if ti is None:
        return None
    from cpsign_airflow.links.pachyderm import CONSOLE_URL_XCOM_KEY

    # The training tasks live in a task group: look beside the failed task.
    group = ti.task_id.rsplit(".", 1)[0] + "." if "." in ti.task_id else ""
    for task_id in (f"{group}wait_for_training", f"{group}put_config"):
        try:
            url = ti.xcom_pull(task_ids=task_id, key=CONSOLE_URL_XCOM_KEY)
        except Exception:
            url = None
        if url:
            return url[0] if isinstance(url, list) else url
    return None


def _build(entry: Mapping[str, Any], subject: str, message: str) -> BaseNotifier | None:
    kind = entry.get("type", "log")
    options = {k: v for k, v in entry.items() if k not in ("type", "class")}
    if kind == "log":
        return None
    if kind == "smtp":
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        return SmtpNotifier(subject=subject, html_content=f"<pre>{_html(message)}</pre>", **options)
    if kind == "slack":
        from airflow.providers.slack.notifications.slack import SlackNotifier

        return SlackNotifier(text=f"*{subject}*\n{message}", **options)
    if kind == "class":
        from airflow.sdk.module_loading import import_string

        cls = import_string(entry["class"])
        return cls(subject=subject, message=message, **options)
    raise ValueError(f"unknown notifier type {kind!r} in {VARIABLE_NAME}")


def _html(text: str) -> str:
    import html

    return html.escape(text)


def send_alert(context: Mapping[str, Any], event: str) -> int:
    """Send ``event`` to every configured notifier; returns how many were sent (logged ones excluded)."""
    if event not in EVENTS:
        raise ValueError(f"event must be one of {EVENTS}, not {event!r}")
    subject, message = describe(context, event)
    entries = alerting_config().get(f"on_{event}", [{"type": "log"}] if event != "success" else [])
    sent = 0
    log.log(logging.ERROR if event != "success" else logging.INFO, "%s\n%s", subject, message)
    for entry in entries:
        try:
            notifier = _build(entry, subject, message)
            if notifier is not None:
                notifier.notify(context)
                sent += 1
        except ImportError as err:
            log.error(
                "Notifier %r unavailable (%s); the alert above was logged instead",
                entry.get("type"),
                err,
            )
        except Exception:
            log.exception(
                "Notifier %r failed; the alert above was logged instead", entry.get("type")
            )
    return sent


class CPSignRunNotifier(BaseNotifier):
    """Notifier for ``on_failure_callback``/``on_success_callback`` of CPSign DAGs."""

    template_fields = ()

    def __init__(self, event: str = "failure") -> None:
        super().__init__()
        self.event = event

    def notify(self, context: Any) -> None:
        send_alert(context, self.event)


async def deadline_missed(context: Any = None, **kwargs: Any) -> None:
    """DeadlineAlert callback (runs in the triggerer): alert that a run is overdue."""
    import asyncio

    context = dict(context or {})
    context.update(kwargs)
    await asyncio.to_thread(send_alert, context, "deadline")
