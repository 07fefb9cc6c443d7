"""What an alert about a training run quotes, and the callbacks of the DAGs that run training.

:func:`run_facts` reads the facts from the XComs of the run's own task group
(:mod:`~cpsign_airflow.workflow.training`); :func:`training_failure_callback` marks
the DAG run's open training runs failed and alerts; :func:`training_success_callback`
sends the ``on_success`` alert.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

#: Tasks of the group whose results an alert quotes (ids within the group).
VALIDATE_TASK = "validate"
CONSOLE_URL_TASKS = ("wait_for_training", "put_config")
PENDING_TASK = "record_pending_run"
OUTCOME_TASK = "record_outcome"


def run_facts(context: Mapping[str, Any]) -> dict[str, Any]:
    """What an alert about this task's training run quotes, from the group's own tasks:
    ``workflow`` (the validate task's result; per map index in a mapped retraining),
    ``console_url`` (pushed by the wait or the put), ``training_run_id`` (the
    bookkeeping run, for the models page link) and, once ``record_outcome`` has run,
    its ``models`` and ``verdicts``. Missing facts are left out."""
    from cpsign_airflow.links.pachyderm import CONSOLE_URL_XCOM_KEY

    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        return {}
    group = ti.task_id.rsplit(".", 1)[0] + "." if "." in ti.task_id else ""
    map_index = getattr(ti, "map_index", -1)
    indexes = {"map_indexes": map_index} if isinstance(map_index, int) and map_index >= 0 else {}

    def pull(task_id: str, key: str, one: bool = True) -> Any:
        try:
            value = ti.xcom_pull(task_ids=f"{group}{task_id}", key=key, **indexes)
        except Exception:  # an alert must go out even when XCom cannot be read
            return None
        return value[0] if one and isinstance(value, list) and value else value or None

    facts: dict[str, Any] = {}
    workflow = pull(VALIDATE_TASK, "workflow")
    if isinstance(workflow, str):
        facts["workflow"] = workflow
    for task_id in CONSOLE_URL_TASKS:
        url = pull(task_id, CONSOLE_URL_XCOM_KEY)
        if url:
            facts["console_url"] = url
            break
    run_id = pull(PENDING_TASK, "return_value")
    if isinstance(run_id, int) and not isinstance(run_id, bool):
        facts["training_run_id"] = run_id
    models = pull(OUTCOME_TASK, "models", one=False)
    if isinstance(models, list) and models:
        facts["models"] = models
    verdicts = pull(OUTCOME_TASK, "verdicts")
    if isinstance(verdicts, Mapping):
        facts["verdicts"] = dict(verdicts)
    return facts


#: Seconds a failure callback waits for ``cpsign_setup`` to record that its pipeline
#: update killed the run's jobs (its ``record_killed_runs`` task runs just after the
#: update), so that the record and the alert name the setup run.
KILL_RECORD_WAIT = 15.0


def _await_kill_record(
    context: Mapping[str, Any], bookkeeping_conn_id: str, timeout: float = KILL_RECORD_WAIT
) -> None:
    """When a pipeline update killed the failed jobs, wait (at most ``timeout`` s) until
    the setup run has failed their training runs; never raises."""
    import time

    exc = context.get("exception")
    killed = {
        job.get("job_id")
        for job in getattr(exc, "failed_jobs", None) or []
        if isinstance(job, Mapping)
        and job.get("state") == "JOB_KILLED"
        and "updated" in (job.get("reason") or "")
    }
    ti = context.get("ti") or context.get("task_instance")
    if not killed or ti is None:
        return
    from cpsign_airflow.bookkeeping.hook import BookkeepingHook

    deadline = time.monotonic() + timeout
    try:
        with BookkeepingHook(bookkeeping_conn_id).get_ledger() as ledger:
            while True:
                runs = [
                    run
                    for run in ledger.runs_for_airflow_run(ti.dag_id, ti.run_id)
                    if run.commit_set_id in killed
                ]
                if all(run.status == "failed" for run in runs) or time.monotonic() > deadline:
                    return
                time.sleep(0.5)
    except Exception as err:  # the run is failed (and alerted) all the same
        log.warning("Could not wait for the record of the setup run that killed jobs: %s", err)


def training_failure_callback(bookkeeping_conn_id: str):
    """``on_failure_callback``: mark the DAG run's open training runs failed (recording
    the commit set's jobs), then alert."""

    def callback(context: Mapping[str, Any]) -> None:
        from cpsign_airflow.bookkeeping.operators import mark_runs_failed
        from cpsign_airflow.notifications import send_alert

        _await_kill_record(context, bookkeeping_conn_id)
        mark_runs_failed(context, bookkeeping_conn_id=bookkeeping_conn_id)
        send_alert({**context, **run_facts(context)}, "failure")

    return callback


def training_success_callback(context: Mapping[str, Any]) -> None:
    """``on_success_callback`` of a run's last bookkeeping step: the ``on_success`` alert,
    naming each model with its verdict. A run whose model was held back in this run has
    had its one mail (``held_back``, from ``record_outcome``) and gets no second; a run
    that only carried an earlier held-back verdict (the same model again) was not alerted
    as held back, so it gets its success mail, which names the carried verdict."""
    from cpsign_airflow.cpsign.quality import HELD_BACK
    from cpsign_airflow.notifications import send_alert

    facts = run_facts(context)
    held_back = [
        name
        for name, verdict in (facts.get("verdicts") or {}).items()
        if isinstance(verdict, Mapping)
        and verdict.get("quality") == HELD_BACK
        and not verdict.get("carried_from")
    ]
    if held_back:
        log.info("Model(s) %s held back: alerted as held back, not as a success", held_back)
        return
    send_alert({**context, **facts}, "success")
