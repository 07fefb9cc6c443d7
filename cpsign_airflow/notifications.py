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


def _field(obj: Any, *names: str) -> Any:
    """The first of ``names`` set on ``obj``, an object or (in deadline callbacks) a dict."""
    for name in names:
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if value not in (None, ""):
            return value
    return None


def workflow_of(context: Mapping[str, Any]) -> str | None:
    """The workflow a run trains: given in the context (``workflow``), else from the run's
    conf or form, else as bookkeeping recorded it for the DAG run."""
    if context.get("workflow"):
        return context["workflow"]
    conf = _field(context.get("dag_run"), "conf") or {}
    params = context.get("params") or {}
    configuration = conf.get("configuration") if isinstance(conf, Mapping) else None
    for source in (configuration, conf, params):
        if isinstance(source, Mapping) and isinstance(source.get("workflow_name"), str):
            return source["workflow_name"]
    return _recorded_workflow(context)


def _recorded_workflow(context: Mapping[str, Any]) -> str | None:
    """The workflow(s) bookkeeping recorded for this DAG run: a run triggered with the
    form's defaults carries no workflow in its conf, and a deadline callback has no task."""
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    dag_id = _field(dag_run, "dag_id") or getattr(ti, "dag_id", None)
    run_id = _field(dag_run, "run_id", "dag_run_id") or getattr(ti, "run_id", None)
    if not dag_id or not run_id:
        return None
    try:
        from cpsign_airflow.bookkeeping.hook import BookkeepingHook
        from cpsign_airflow.workflow import settings

        with BookkeepingHook(settings.load().bookkeeping_conn_id).get_ledger() as ledger:
            names = sorted({run.workflow for run in ledger.runs_for_airflow_run(dag_id, run_id)})
    except Exception as err:  # an alert is never lost for want of a name
        log.warning("Workflow of %s/%s not found in bookkeeping: %s", dag_id, run_id, err)
        return None
    return ", ".join(names) or None


def _lateness(context: Mapping[str, Any]) -> str | None:
    deadline = _field(context.get("deadline"), "deadline_time")
    if deadline is None:
        return None
    from datetime import datetime, timezone

    if isinstance(deadline, str):
        deadline = datetime.fromisoformat(deadline)
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=timezone.utc)
    seconds = max(0, int((datetime.now(timezone.utc) - deadline).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    late = f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"
    return f"Deadline: {deadline.isoformat(timespec='seconds')}, now {late} late"


def describe(context: Mapping[str, Any], event: str) -> tuple[str, str]:
    """Subject and body naming workflow, failed pipelines, job ids and a console link."""
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    workflow = workflow_of(context)
    exception = context.get("exception")
    dag_id = _field(dag_run, "dag_id") or getattr(ti, "dag_id", None) or "?"
    run_id = _field(dag_run, "run_id", "dag_run_id") or getattr(ti, "run_id", None) or "?"
    what = {
        "failure": "failed",
        "success": "succeeded",
        "deadline": "missed its deadline",
        "held_back": "succeeded, but its model was held back",
    }[event]
    subject = f"[cpsign] {workflow or dag_id} training {what}"
    lines = [f"Workflow: {workflow or 'unknown'}", f"DAG run: {dag_id} / {run_id}"]
    if event == "deadline":
        late = _lateness(context)
        if late:
            lines.append(late)
        state = _field(dag_run, "state")
        if state:
            lines.append(f"Run state: {state}")
    if ti is not None and event == "failure":
        lines.append(f"Failed task: {getattr(ti, 'task_id', '?')}")
    for model, reason in (context.get("held_back") or {}).items():
        lines.append(f"Held back by the quality gate: model {model}: {reason}")
    for job in getattr(exception, "failed_jobs", None) or []:
        lines.append(
            f"Failed pipeline: {job.get('pipeline')} job {job.get('job_id')} "
            f"({job.get('state')}): {_redacted(job.get('reason') or 'no reason given')}"
        )
        tail = job.get("log_tail") or []
        if tail:
            lines.append(f"  Last log lines of {job.get('pipeline')}:")
            lines.extend(f"    {_redacted(line)}" for line in tail[-LOG_TAIL_LINES:])
    if exception is not None and not getattr(exception, "failed_jobs", None):
        # the whole text: a rejected configuration lists every validation error
        text = _redacted(str(exception) or type(exception).__name__)
        first, *rest = text.splitlines()
        lines.append(f"Error: {first}")
        lines.extend(f"  {line}" for line in rest)
    elif exception is not None:  # the failed jobs above say the rest
        text = _redacted(str(exception) or type(exception).__name__)
        lines.append(f"Error: {text.splitlines()[0]}")
    console = context.get("console_url")
    if console:
        lines.append(f"Pachyderm Console: {console}")
    return subject, "\n".join(lines)


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


def _redacted(text: Any) -> str:
    """``text`` from outside (an error, pachd's reason, a log line) with every secret
    Airflow knows of (connection passwords, tokens registered with ``mask_secret``)
    replaced: a mail is not a log, which Airflow masks by itself. Only such texts:
    a short password like "cpsign" would otherwise blank the alert's own words."""
    from airflow.sdk.log import redact

    return str(redact(str(text)))


def send_alert(context: Mapping[str, Any], event: str) -> int:
    """Send ``event`` to every configured notifier; returns how many were sent (logged ones excluded)."""
    if event not in EVENTS:
        raise ValueError(f"event must be one of {EVENTS}, not {event!r}")
    subject, message = describe(context, event)
    entries = alerting_config().get(f"on_{event}", [{"type": "log"}] if event != "success" else [])
    sent = 0
    level = {"failure": logging.ERROR, "success": logging.INFO}.get(event, logging.WARNING)
    log.log(level, "%s\n%s", subject, message)
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


#: DAG-run states after which a missed deadline is no news: Airflow deletes a
#: deadline only when the run succeeds in time, so a failed run's deadline still fires.
FINISHED_STATES = ("success", "failed")


async def deadline_missed(context: Any = None, **kwargs: Any) -> None:
    """DeadlineAlert callback (runs in the triggerer): alert that a run is overdue.

    Airflow passes ``context={"dag_run": {...}, "deadline": {"deadline_time": ...}}``
    with the DAG run as a dict (its REST representation). A run that already
    finished (failed, or succeeded late) gets no deadline alert: its own alert said so.
    """
    import asyncio

    context = dict(context or {})
    context.update(kwargs)
    state = _field(context.get("dag_run"), "state")
    if state in FINISHED_STATES:
        log.info(
            "DAG run %s already %s when its deadline passed; no deadline alert",
            _field(context.get("dag_run"), "run_id", "dag_run_id"),
            state,
        )
        return
    await asyncio.to_thread(send_alert, context, "deadline")
