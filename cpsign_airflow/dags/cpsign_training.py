"""cpsign_training: train a CPSign model on Pachyderm from a configuration.

Trigger it from the UI: the form holds the configuration's sections as typed
fields (``advanced`` takes raw JSON flags). Or trigger with a conf of
``{"configuration": {...}}`` holding a whole configuration.json (flat LogD-style
or sectioned), as the API and ``cpsign_retraining`` do.

The run validates the configuration, checks the source query, records a
pending run, writes ``configuration.json`` to the workflow's config repo (one
commit, even when retried), waits for every downstream pipeline job, records
the jobs and the model (location, size, sha256) and emits an event of the
``cpsign-models`` Asset, whose extra names the workflow. A failure marks the
run failed with its error and sends the configured alerts.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference, Param

from cpsign_airflow.cpsign.params import form_defaults, training_params
from cpsign_airflow.workflow import settings as cpsign_settings
from cpsign_airflow.workflow.training import default_args, training_run

settings = cpsign_settings.load()

with DAG(
    dag_id="cpsign_training",
    description="Train a CPSign model on Pachyderm and record the run",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=4,
    tags=["cpsign", "pachyderm", "training"],
    default_args=default_args(settings),
    params={
        **training_params(defaults=form_defaults()),
        "preflight": Param(
            True,
            type="boolean",
            title="Check the source query first",
            description="Run the query with LIMIT 0 on the source-database connection before committing.",
            section="Run options",
        ),
        "deploy_prediction_service": Param(
            False,
            type="boolean",
            title="Deploy a prediction service",
            description="After a successful run, serve the model with a CPSign prediction server "
            "on Kubernetes ([cpsign] prediction_namespace).",
            section="Run options",
        ),
    },
    # [cpsign] training_deadline_minutes; 0 turns it off (Airflow 3.3.2's dag.test()
    # crashes on DAGs with a deadline, so the demo and tests run without one).
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=settings.training_deadline,
        callback=AsyncCallback("cpsign_airflow.notifications.deadline_missed"),
    )
    if settings.training_deadline
    else None,
) as dag:
    # validate builds the request from the run's conf and the form (one task less)
    training_run(None, settings)
