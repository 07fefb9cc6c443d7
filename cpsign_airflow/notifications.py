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
served (the run itself succeeds; it then gets no ``success`` alert as well: one
mail per outcome). The success and held-back alerts name each model: location,
sha256, metrics per confidence and the verdict with its reason. Every alert links
the models page (``[api] base_url`` + ``/cpsign-models/``, when set) and the
commit set in Pachyderm Console (the connection's ``console_url`` extra, when set).

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
        from cpsign_airflow.config import option

        raw = option("alerting")
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


def _recorded_runs(context: Mapping[str, Any]) -> list[Any] | None:
    """The training runs bookkeeping recorded for this DAG run; None when it cannot be read."""
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    dag_id = _field(dag_run, "dag_id") or getattr(ti, "dag_id", None)
    run_id = _field(dag_run, "run_id", "dag_run_id") or getattr(ti, "run_id", None)
    if not dag_id or not run_id:
        return None
    try:
        from cpsign_airflow.bookkeeping.hook import BookkeepingHook
        from cpsign_airflow.config import option

        with BookkeepingHook(option("bookkeeping_conn_id")).get_ledger() as ledger:
            return ledger.runs_for_airflow_run(dag_id, run_id)
    except Exception as err:  # an alert is never lost for want of a record
        log.warning("Runs of %s/%s not found in bookkeeping: %s", dag_id, run_id, err)
        return None


def _recorded_workflow(context: Mapping[str, Any]) -> str | None:
    """The workflow(s) bookkeeping recorded for this DAG run: a run triggered with the
    form's defaults carries no workflow in its conf, and a deadline callback has no task."""
    names = sorted({run.workflow for run in _recorded_runs(context) or []})
    return ", ".join(names) or None


#: How :class:`~cpsign_airflow.bookkeeping.operators.RecordKilledRunsOperator` begins
#: the error of a run whose jobs a pipeline update killed.
KILLED_BY_PREFIX = "killed by "


def _killed_by(context: Mapping[str, Any], exception: Any) -> str | None:
    """Who killed the failed jobs' commit set, as bookkeeping recorded it (a setup run
    updating a pipeline with ``in_flight=force``); None when no record says so."""
    commit_sets = {job.get("job_id") for job in getattr(exception, "failed_jobs", None) or []}
    found = [
        run.error[len(KILLED_BY_PREFIX) :]
        for run in _recorded_runs(context) or []
        if run.status == "failed"
        and run.commit_set_id in commit_sets
        and (run.error or "").startswith(KILLED_BY_PREFIX)
    ]
    return "; ".join(found) or None


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
    killed_by = context.get("killed_by") or (
        _killed_by(context, exception)
        if event == "failure" and _has_killed_job(exception)
        else None
    )
    if killed_by:
        lines.append(f"Killed by: {killed_by}")  # our own record: DAG, run, pipelines
    for model, reason in (context.get("held_back") or {}).items():
        lines.append(f"Held back by the quality gate: model {model}: {_redacted(reason)}")
    if event in ("success", "held_back"):
        lines.extend(_model_lines(context.get("models"), context.get("verdicts")))
    for job in getattr(exception, "failed_jobs", None) or []:
        lines.append(
            f"Failed pipeline: {job.get('pipeline')} job {job.get('job_id')} "
            f"({job.get('state')}): {_redacted(job.get('reason') or 'no reason given')}"
        )
        lines.extend(_tail_lines(job.get("pipeline"), job.get("log_tail")))
    for item in getattr(exception, "pipelines", None) or []:
        seconds = item.get("unhealthy_seconds")
        lines.append(
            f"Unhealthy pipeline: {item.get('pipeline')} job {item.get('job_id') or '?'} "
            f"({item.get('state')}"
            + (f" for {float(seconds):.0f} s" if seconds is not None else "")
            + f"): {_redacted(item.get('reason') or 'pachd gave no reason')}"
        )
        lines.extend(_tail_lines(item.get("pipeline"), item.get("log_tail")))
    if exception is not None:
        # the whole text (a rejected configuration lists every validation error), but
        # not the log tails again when the failed jobs above quote them
        text = _redacted(str(exception) or type(exception).__name__)
        if getattr(exception, "failed_jobs", None) or getattr(exception, "pipelines", None):
            text = _without_log_tails(text)
        first, *rest = text.splitlines() or [type(exception).__name__]
        lines.append(f"Error: {first}")
        lines.extend(f"  {line}" for line in rest)
    page = models_page_url(context)
    if page:
        lines.append(f"Models page: {page}")
    console = context.get("console_url")
    if console:
        lines.append(f"Pachyderm Console: {console}")
    return subject, "\n".join(lines)


def _tail_lines(pipeline: Any, tail: Any) -> list[str]:
    """A job's (or pipeline's) last log lines, masked: they are the stage's own output."""
    if isinstance(tail, str):
        tail = tail.splitlines()
    if not tail:
        return []
    return [f"  Last log lines of {pipeline}:"] + [
        f"    {_redacted(line)}" for line in list(tail)[-LOG_TAIL_LINES:]
    ]


def _without_log_tails(text: str) -> str:
    """The sensor's error text without its ``log tail:`` blocks (quoted above it already)."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped in ("log tail:", "no log lines (its workers may never have started)"):
            skipping = stripped == "log tail:"
            continue
        if skipping and line.startswith("        "):
            continue
        skipping = False
        kept.append(line)
    return "\n".join(kept)


def _has_killed_job(exception: Any) -> bool:
    return any(
        isinstance(job, Mapping) and job.get("state") == "JOB_KILLED"
        for job in getattr(exception, "failed_jobs", None) or []
    )


def _metric_text(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-" if value is None else str(value)


def _model_lines(models: Any, verdicts: Any) -> list[str]:
    """Each model of the run: name, location, sha256, verdict and reason, metrics per confidence."""
    from cpsign_airflow.cpsign.quality import metric_rows

    verdicts = verdicts if isinstance(verdicts, Mapping) else {}
    lines: list[str] = []
    for model in models or []:
        if not isinstance(model, Mapping):
            continue
        name = model.get("model_name")
        lines.append(f"Model: {name}")
        lines.append(f"  Location: {model.get('location') or 'unknown'}")
        lines.append(f"  sha256: {model.get('sha256') or 'unknown'}")
        verdict = verdicts.get(name) or {}
        if verdict:
            lines.append(
                f"  Verdict: {verdict.get('quality')}: "
                f"{_redacted(verdict.get('reason') or 'no reason given')}"
            )
        metrics = model.get("metrics") if isinstance(model.get("metrics"), Mapping) else None
        rows = metric_rows(metrics)
        if not rows:
            lines.append("  Metrics: none recorded")
            continue
        efficiency = (
            "median interval width"
            if "median_interval_width" in metrics
            else "single-label share"
            if "single_label_share" in metrics
            else "efficiency"
        )
        lines.append(f"  Metrics (confidence: validity, {efficiency}):")
        lines.extend(
            f"    {confidence:g}: {_metric_text(validity)}, {_metric_text(value)}"
            for confidence, validity, value in rows
        )
    return lines


def models_page_url(context: Mapping[str, Any]) -> str | None:
    """The models page (the run's page when the run id is known), from Airflow's
    ``[api] base_url``; None when that is not set."""
    try:
        from airflow.sdk import conf

        base = conf.get("api", "base_url", fallback=None)
    except Exception:  # a link is never worth a lost alert
        return None
    if not base:
        return None
    from cpsign_airflow.config import MODELS_PAGE_PREFIX

    url = f"{base.rstrip('/')}{MODELS_PAGE_PREFIX}/"
    run = context.get("training_run_id")
    if isinstance(run, int) and not isinstance(run, bool):
        return f"{url}runs/{run}"
    return url


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
#: Bookkeeping statuses of a training run that has recorded its outcome.
RECORDED_OUTCOMES = ("succeeded", "failed", "rejected")
#: Seconds the triggerer waits for a deadline alert to be sent. The sending itself
#: runs in :data:`_ALERT_THREADS`, never on the triggerer's event loop; past this,
#: the callback returns (the thread finishes or times out on its own: the SMTP
#: connection's ``timeout`` extra bounds each attempt).
DEADLINE_ALERT_TIMEOUT = 120.0
_ALERT_THREADS: Any = None


def _alert_threads() -> Any:
    """A small pool of its own, so slow alerts never starve the event loop's default
    executor (which the triggers' own ``asyncio.to_thread`` calls use)."""
    global _ALERT_THREADS
    if _ALERT_THREADS is None:
        from concurrent.futures import ThreadPoolExecutor

        _ALERT_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cpsign-alert")
    return _ALERT_THREADS


def _deadline_time(context: Mapping[str, Any]) -> Any:
    """The deadline that passed, as naive UTC (bookkeeping's times); None if not given."""
    from datetime import datetime

    value = _field(context.get("deadline"), "deadline_time")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return _naive_utc(value)


def _outcome_recorded(context: Mapping[str, Any]) -> bool:
    """Every training run of the DAG run recorded its outcome in bookkeeping by the deadline
    (a run whose deadline passed while its last, skipped tasks ran was not late; one that
    recorded its outcome after the deadline was, even if the callback runs only later)."""
    runs = _recorded_runs(context)
    if not runs or not all(run.status in RECORDED_OUTCOMES for run in runs):
        return False
    deadline = _deadline_time(context)
    return deadline is None or all(
        run.finished_at is not None and _naive_utc(run.finished_at) <= deadline for run in runs
    )


def _naive_utc(value: Any) -> Any:
    from datetime import timezone

    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def _form_workflow() -> str | None:
    """The workflow the training form trains by default: what a run triggered with an
    empty conf trains (``[cpsign] form_configuration``, else the LogD example)."""
    try:
        from cpsign_airflow.cpsign.params import default_configuration, form_defaults

        return default_configuration(base=form_defaults())["workflow_name"]
    except Exception as err:  # the alert goes out, naming the DAG instead
        log.warning("The training form's default workflow is unknown: %s", err)
        return None


def _deadline_alert(context: Mapping[str, Any]) -> int:
    """The deadline alert, unless the run has recorded its outcome meanwhile (blocking).

    A run triggered with the form's defaults that is late before it recorded anything
    (its conf is empty, bookkeeping has no row yet) is named by the form's default
    workflow: the only DAG with a deadline is the training DAG.
    """
    if _outcome_recorded(context):
        log.info(
            "DAG run %s has recorded its outcome in bookkeeping; no deadline alert",
            _field(context.get("dag_run"), "run_id", "dag_run_id"),
        )
        return 0
    if workflow_of(context) is None and (default := _form_workflow()):
        context = {**context, "workflow": default}
    return send_alert(context, "deadline")


async def deadline_missed(context: Any = None, **kwargs: Any) -> None:
    """DeadlineAlert callback (runs in the triggerer): alert that a run is overdue.

    Airflow passes ``context={"dag_run": {...}, "deadline": {"deadline_time": ...}}``
    with the DAG run as a dict (its REST representation). A run that already
    finished (failed, or succeeded late), or whose training runs have all recorded
    their outcome in bookkeeping, gets no deadline alert. Everything that may block
    (bookkeeping, the Variable, the notifiers) runs in a thread of its own, and the
    callback waits at most :data:`DEADLINE_ALERT_TIMEOUT` seconds for it.
    """
    import asyncio
    import contextvars
    import functools

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
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, _deadline_alert, context)
    try:
        await asyncio.wait_for(loop.run_in_executor(_alert_threads(), call), DEADLINE_ALERT_TIMEOUT)
    except asyncio.TimeoutError:
        log.error(
            "The deadline alert of DAG run %s was not sent within %.0f s; it goes on in "
            "its thread, the triggerer does not wait for it",
            _field(context.get("dag_run"), "run_id", "dag_run_id"),
            DEADLINE_ALERT_TIMEOUT,
        )
