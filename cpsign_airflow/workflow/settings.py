"""Deployment settings of the bundled DAGs, from the ``[cpsign]`` config section.

Read from Airflow's configuration (``airflow.cfg`` or ``AIRFLOW__CPSIGN__*``),
which is local and cheap, so DAG files may read them at parse time; Variables
would need the API server and are only read inside tasks. The defaults are
provider.yaml's (through :func:`cpsign_airflow.config.option`), their one source;
tests/provider/test_provider_config.py checks that this table shows them.

| option | default | meaning |
|---|---|---|
| pachyderm_conn_id | pachyderm_default | Pachyderm connection |
| bookkeeping_conn_id | cpsign_bookkeeping | bookkeeping database (mysql or sqlite) |
| source_db_conn_id | cpsign_source_db | source database: where ingestion connects, the pre-flight check, its password secret |
| source_db_conn_ids | (none) | further source connections a configuration may name (comma-separated allow-list) |
| source_sqlite_dir | (none) | SQLite source files must lie in this directory |
| model_store_conn_id | modelweb | model store credentials for the publish stage's secret |
| kubernetes_conn_id | kubernetes_default | Kubernetes API for secrets and prediction services |
| project | (connection's) | Pachyderm project |
| retraining_schedule | @weekly | cron or preset for cpsign_retraining |
| retraining_asset | (none) | also retrain when this Asset is updated |
| training_deadline_minutes | 360 | DeadlineAlert of cpsign_training; 0 turns it off |
| wait_timeout_hours | 24 | how long the commit-set wait may take |
| pipeline_check_seconds | 60 | how often the wait checks the states of the set's unfinished pipelines |
| pipeline_grace_minutes | 10 | the wait fails once a pipeline of the set is CRASHING/FAILURE this long; 0 turns it off |
| form_configuration | (none) | a configuration.json whose values are the cpsign_training form's defaults (else the LogD example) |
| setup_wait_minutes | 30 | cpsign_setup: default limit of its wait for running jobs of pipelines it updates |
| cpsign_version | 2.0.0 | the CPSign version of the stage image; a configuration's cpsign.version must match |
| stage_image | cpsign-airflow-stages:latest | the stage image you built and pushed (images/stages/Dockerfile): cpsign_setup's default for every pipeline's image |
| poke_interval, sensor_mode | 30, reschedule | the wait when not deferrable |
| prediction_namespace | cpsign-models | where prediction services are deployed |
| pachyderm_namespace | (none) | pachd's namespace, for the model fetch (S3 gateway) |
| prediction_token_secret | (none) | Secret with a Pachyderm token that may read models |
| task_retries, retry_delay_seconds | 2, 60 | retries of the DAGs' tasks |
| alerting | (none) | fallback for the Variable cpsign_alerting (see notifications) |
| validity_tolerance | 0.05 | quality gate: a model's error rate may exceed 1 - confidence by at most this |
| efficiency_margin | 0.1 | quality gate: relative worsening of efficiency allowed vs the last accepted model |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Settings:
    pachyderm_conn_id: str
    bookkeeping_conn_id: str
    cpsign_version: str
    source_db_conn_id: str
    model_store_conn_id: str
    kubernetes_conn_id: str
    project: str | None
    retraining_schedule: str
    retraining_asset: str | None
    training_deadline: timedelta
    wait_timeout: timedelta
    deferrable: bool
    poke_interval: float
    sensor_mode: str
    prediction_namespace: str
    pachyderm_namespace: str | None
    prediction_token_secret: str | None
    task_retries: int
    retry_delay: timedelta
    #: The commit-set wait fails once a pipeline stays CRASHING/FAILURE this long (0: off).
    pipeline_grace: timedelta
    #: How often the wait checks those pipelines' states (one InspectPipeline each).
    pipeline_check_interval: float
    #: Quality gate (see :mod:`cpsign_airflow.cpsign.quality`).
    validity_tolerance: float
    efficiency_margin: float
    #: cpsign_setup's default limit of its wait for unfinished jobs of pipelines it updates.
    setup_wait: timedelta
    #: Further source connections (beyond source_db_conn_id) a configuration may name.
    source_db_conn_ids: tuple[str, ...]
    #: SQLite source files must lie in this directory (None: only the connections' files).
    source_sqlite_dir: str | None
    #: The stage image every pipeline runs (cpsign_setup's default): the one the user built.
    stage_image: str

    @property
    def source_conn_ids(self) -> tuple[str, ...]:
        """The allow-list of source connections: source_db_conn_id first."""
        return tuple(dict.fromkeys((self.source_db_conn_id, *self.source_db_conn_ids)))


def load() -> Settings:
    """The ``[cpsign]`` settings; an option not configured takes provider.yaml's default."""
    from airflow.sdk import conf

    from cpsign_airflow.config import option

    def get(key: str) -> str:
        value = option(key)
        if value is None:  # pragma: no cover - provider.yaml declares a default for each
            raise KeyError(f"[cpsign] {key} has no default in provider.yaml")
        return value

    return Settings(
        pachyderm_conn_id=get("pachyderm_conn_id"),
        bookkeeping_conn_id=get("bookkeeping_conn_id"),
        cpsign_version=get("cpsign_version"),
        source_db_conn_id=get("source_db_conn_id"),
        model_store_conn_id=get("model_store_conn_id"),
        kubernetes_conn_id=get("kubernetes_conn_id"),
        project=option("project"),
        retraining_schedule=get("retraining_schedule"),
        retraining_asset=option("retraining_asset"),
        training_deadline=timedelta(minutes=float(get("training_deadline_minutes"))),
        wait_timeout=timedelta(hours=float(get("wait_timeout_hours"))),
        pipeline_grace=timedelta(
            minutes=_fraction("pipeline_grace_minutes", get("pipeline_grace_minutes"))
        ),
        pipeline_check_interval=_positive("pipeline_check_seconds", get("pipeline_check_seconds")),
        deferrable=conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval=float(get("poke_interval")),
        sensor_mode=get("sensor_mode"),
        prediction_namespace=get("prediction_namespace"),
        pachyderm_namespace=option("pachyderm_namespace"),
        prediction_token_secret=option("prediction_token_secret"),
        task_retries=int(get("task_retries")),
        retry_delay=timedelta(seconds=float(get("retry_delay_seconds"))),
        validity_tolerance=_fraction("validity_tolerance", get("validity_tolerance")),
        efficiency_margin=_fraction("efficiency_margin", get("efficiency_margin")),
        setup_wait=timedelta(minutes=_fraction("setup_wait_minutes", get("setup_wait_minutes"))),
        source_db_conn_ids=tuple(
            part.strip() for part in (option("source_db_conn_ids") or "").split(",") if part.strip()
        ),
        source_sqlite_dir=option("source_sqlite_dir"),
        stage_image=get("stage_image"),
    )


def _fraction(key: str, text: str) -> float:
    """A quality-gate setting: a finite number >= 0, or a clear error naming the option."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"[cpsign] {key} must be a number >= 0, got {text!r}")
    return value


def _positive(key: str, text: str) -> float:
    """A finite number > 0, or a clear error naming the option."""
    value = _fraction(key, text)
    if value <= 0:
        raise ValueError(f"[cpsign] {key} must be a number > 0, got {text!r}")
    return value
