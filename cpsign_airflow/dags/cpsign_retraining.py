"""cpsign_retraining: retrain every workflow on its latest successful configuration.

Runs on ``[cpsign] retraining_schedule`` (default ``@weekly``) and, when
``[cpsign] retraining_asset`` names an Asset (e.g. the source data set's),
also whenever that Asset is updated. For each workflow with a succeeded run it
re-commits that run's configuration (with a new seed when the configuration
sets ``train.reseed_on_retrain``) and runs the same chain as
``cpsign_training``: wait, record jobs and model, alert on failure.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, task

from cpsign_airflow.workflow import settings as cpsign_settings
from cpsign_airflow.workflow.training import default_args, training_run

settings = cpsign_settings.load()

if settings.retraining_asset:
    schedule = AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(settings.retraining_schedule, timezone="UTC"),
        assets=[Asset(name=settings.retraining_asset)],
    )
else:
    schedule = settings.retraining_schedule

with DAG(
    dag_id="cpsign_retraining",
    description="Retrain each CPSign workflow on its latest successful configuration",
    doc_md=__doc__,
    schedule=schedule,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["cpsign", "pachyderm", "retraining"],
    default_args=default_args(settings),
) as dag:

    @task
    def plan(**context) -> list[dict]:
        """One training request per workflow that has a succeeded run."""
        from cpsign_airflow.workflow.retraining import retraining_requests

        return retraining_requests(context, settings.bookkeeping_conn_id)

    training_run.partial(settings=settings).expand(request=plan())
