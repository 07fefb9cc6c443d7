"""Deployment settings of the bundled DAGs, from the ``[cpsign]`` config section.

Read from Airflow's configuration (``airflow.cfg`` or ``AIRFLOW__CPSIGN__*``),
which is local and cheap, so DAG files may read them at parse time; Variables
would need the API server and are only read inside tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Settings:
    pachyderm_conn_id: str
    bookkeeping_conn_id: str
    source_db_conn_id: str
    project: str | None
    retraining_schedule: str
    retraining_asset: str | None
    training_deadline: timedelta
    wait_timeout: timedelta
    deferrable: bool
    poke_interval: float
    sensor_mode: str


def load() -> Settings:
    from airflow.sdk import conf

    def get(key: str, default: str) -> str:
        return conf.get("cpsign", key, fallback=default) or default

    return Settings(
        pachyderm_conn_id=get("pachyderm_conn_id", "pachyderm_default"),
        bookkeeping_conn_id=get("bookkeeping_conn_id", "cpsign_bookkeeping"),
        source_db_conn_id=get("source_db_conn_id", "cpsign_source_db"),
        project=conf.get("cpsign", "project", fallback=None) or None,
        retraining_schedule=get("retraining_schedule", "@weekly"),
        retraining_asset=conf.get("cpsign", "retraining_asset", fallback=None) or None,
        training_deadline=timedelta(minutes=float(get("training_deadline_minutes", "360"))),
        wait_timeout=timedelta(hours=float(get("wait_timeout_hours", "24"))),
        deferrable=conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval=float(get("poke_interval", "30")),
        sensor_mode=get("sensor_mode", "reschedule"),
    )
