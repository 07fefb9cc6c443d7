"""One CPSign training run as an Airflow task group.

validate (schema, then the pre-flight query) → record pending run → put
configuration.json (one commit, even on retry) → mark committed → wait for the
commit set (deferrable) → record the outcome (jobs, the model with its
validation metrics and an Asset event, the quality verdict, the run succeeded)
→ optional prediction service. A model the quality gate holds back is recorded
as such and not deployed; the run still succeeds.

Each task costs a run about one scheduler loop (1 s with Airflow's defaults:
benchmarks/orchestration_overhead.py), so steps that always run together and
are each keyed in bookkeeping share a task: a retry redoes them without
doubling a record.

The same group serves ``cpsign_training`` (one run from the trigger form) and
``cpsign_retraining`` (mapped over workflows). Any task failure marks the run
``failed`` in bookkeeping with the error and sends the configured alerts.

The group is assembled here (:func:`training_run`, with the DAGs' :func:`default_args`);
its tasks and callbacks live in one module per step, and every name is importable
from here as before:

* :mod:`~cpsign_airflow.workflow.validation`: :func:`validate` (schema, pre-flight,
  a refusal recorded as a ``rejected`` run) and :func:`request_from_run`;
* :mod:`~cpsign_airflow.workflow.outcome`: :func:`record_outcome` (jobs, models with
  their metrics, the quality verdicts of :func:`judge_models`, the ``cpsign-models``
  Asset event), :func:`find_models`, :func:`read_metrics`;
* :mod:`~cpsign_airflow.workflow.model_identity`: :func:`model_content_sha256`, a
  model's identity without build metadata;
* :mod:`~cpsign_airflow.workflow.deployment`: :func:`deployment_request`, what the
  prediction service serves, if anything;
* :mod:`~cpsign_airflow.workflow.callbacks`: :func:`run_facts` (what an alert quotes)
  and the failure and success callbacks.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task_group

from cpsign_airflow.workflow.callbacks import (
    CONSOLE_URL_TASKS,
    KILL_RECORD_WAIT,
    OUTCOME_TASK,
    PENDING_TASK,
    VALIDATE_TASK,
    _await_kill_record,
    run_facts,
    training_failure_callback,
    training_success_callback,
)
from cpsign_airflow.workflow.deployment import _deploy_wanted, deployment_request
from cpsign_airflow.workflow.model_identity import (
    CPSIGN_JSON_BUILD_KEYS,
    MANIFEST_BUILD_HEADERS,
    _without_build_headers,
    _without_build_keys,
    model_content_sha256,
)
from cpsign_airflow.workflow.outcome import (
    METRICS_PATH,
    MODELS_ASSET,
    find_models,
    judge_models,
    read_metrics,
    record_outcome,
)
from cpsign_airflow.workflow.settings import Settings
from cpsign_airflow.workflow.validation import (
    _record_rejection,
    _with_source_database,
    request_from_run,
    validate,
)

CONFIG_PATH = "/configuration.json"


def default_args(settings: Settings) -> dict[str, Any]:
    """default_args of the DAGs that run training: retries, and failure -> record + alert."""
    return {
        "owner": "cpsign",
        "retries": settings.task_retries,
        "retry_delay": settings.retry_delay,
        "on_failure_callback": training_failure_callback(settings.bookkeeping_conn_id),
    }


@task_group(group_id="training_run")
def training_run(request: Any, settings: Settings) -> None:
    """The chain for one workflow's run; ``request`` is ``{"configuration", ...}``, or None
    for the DAG run's own (its conf, else its trigger form)."""
    from cpsign_airflow.bookkeeping.operators import (
        MarkRunCommittedOperator,
        RecordPendingRunOperator,
        RecordPublicationOperator,
    )
    from cpsign_airflow.kubernetes.operators import CPSignPredictionServiceOperator
    from cpsign_airflow.operators.pachyderm import PachydermPutFileOperator
    from cpsign_airflow.sensors.pachyderm import PachydermCommitSetSensor

    conns = {"bookkeeping_conn_id": settings.bookkeeping_conn_id}
    checked = validate(
        request,
        settings.bookkeeping_conn_id,
        settings.cpsign_version,
        list(settings.source_conn_ids),
        settings.source_sqlite_dir,
    )
    pending = RecordPendingRunOperator(
        task_id="record_pending_run",
        workflow=checked["workflow"],
        configuration=checked["canonical_json"],
        trigger_kind=checked["trigger_kind"],
        config_repo=checked["config_repo"],
        project=settings.project,
        **conns,
    )
    put = PachydermPutFileOperator(
        task_id="put_config",
        repo=checked["config_repo"],
        path=CONFIG_PATH,
        content=checked["configuration_json"],
        pachyderm_conn_id=settings.pachyderm_conn_id,
        project=settings.project,
    )
    committed = MarkRunCommittedOperator(
        task_id="mark_committed",
        run_id=pending.output,
        commit_id=put.output,
        commit_set_id=put.output,
        **conns,
    )
    wait = PachydermCommitSetSensor(
        task_id="wait_for_training",
        commit_set_id=put.output,
        pachyderm_conn_id=settings.pachyderm_conn_id,
        project=settings.project,
        deferrable=settings.deferrable,
        timeout=settings.wait_timeout.total_seconds(),
        poke_interval=settings.poke_interval,
        mode=settings.sensor_mode,
        pipeline_grace_period=settings.pipeline_grace.total_seconds() or None,
        pipeline_check_interval=settings.pipeline_check_interval,
    )
    outcome = record_outcome.override(on_success_callback=training_success_callback)(
        pending.output,
        wait.output,
        checked["workflow"],
        put.output,
        settings.pachyderm_conn_id,
        settings.project,
        settings.bookkeeping_conn_id,
        settings.validity_tolerance,
        settings.efficiency_margin,
    )
    checked >> pending >> put >> committed >> wait >> outcome

    target = deployment_request(
        outcome["models"], checked["configuration"], put.output, outcome["verdicts"]
    )
    deploy = CPSignPredictionServiceOperator(
        task_id="deploy_prediction_service",
        namespace=settings.prediction_namespace,
        model_name=target["model_name"],
        predictor_type=target["predictor_type"],
        model_location=target["location"],
        model_version=target["version"],
        pachyderm_namespace=settings.pachyderm_namespace,
        pachyderm_token_secret=settings.prediction_token_secret,
        kubernetes_conn_id=settings.kubernetes_conn_id,
    )
    published = RecordPublicationOperator(
        task_id="record_publication",
        run_id=pending.output,
        model_name=target["model_name"],
        location=target["location"],
        deployment=deploy.output,
        **conns,
    )
    target >> deploy >> published


__all__ = [
    "CONFIG_PATH",
    "CONSOLE_URL_TASKS",
    "CPSIGN_JSON_BUILD_KEYS",
    "KILL_RECORD_WAIT",
    "MANIFEST_BUILD_HEADERS",
    "METRICS_PATH",
    "MODELS_ASSET",
    "OUTCOME_TASK",
    "PENDING_TASK",
    "VALIDATE_TASK",
    "_await_kill_record",
    "_deploy_wanted",
    "_record_rejection",
    "_with_source_database",
    "_without_build_headers",
    "_without_build_keys",
    "default_args",
    "deployment_request",
    "find_models",
    "judge_models",
    "model_content_sha256",
    "read_metrics",
    "record_outcome",
    "request_from_run",
    "run_facts",
    "training_failure_callback",
    "training_run",
    "training_success_callback",
    "validate",
]
