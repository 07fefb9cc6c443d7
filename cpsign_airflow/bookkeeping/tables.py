"""SQLAlchemy Core tables of the bookkeeping store, as of the newest migration.

These definitions drive every query; the Alembic revisions under
``migrations/versions`` create the same schema step by step, and a test checks
the two agree. Portability comes from types, never from SQL branches:

* long text is ``TEXT`` with a ``LONGTEXT`` variant on MySQL, so a 1 MB
  configuration or a long traceback fits whole;
* times are ``DATETIME(6)`` on MySQL (microseconds), stored as naive UTC;
* tables are ``utf8mb4`` with a binary collation on MySQL, so emoji round-trip
  and ``LogD`` and ``logd`` are different workflows, as on SQLite;
* every idempotency key is a unique constraint.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

MYSQL_TABLE_ARGS = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}

workflows = sa.Table(
    "cpsign_workflows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("project", sa.String(128), nullable=False),
    sa.Column("config_repo", sa.String(128), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("name"),
    **MYSQL_TABLE_ARGS,
)

pipeline_deployments = sa.Table(
    "cpsign_pipeline_deployments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workflow_id", sa.Integer, sa.ForeignKey("cpsign_workflows.id"), nullable=False),
    sa.Column("pipeline", sa.String(255), nullable=False),
    sa.Column("spec_hash", sa.String(64), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("dag_id", sa.String(250), nullable=True),
    sa.Column("airflow_run_id", sa.String(250), nullable=True),
    sa.Column("task_id", sa.String(250), nullable=True),
    sa.Column("task_key", sa.String(64), nullable=False),
    sa.Column("recorded_at", Timestamp, nullable=False),
    sa.UniqueConstraint("task_key", "pipeline"),
    sa.CheckConstraint("action IN ('created', 'updated', 'unchanged')", name="action"),
    sa.Index(None, "workflow_id", "recorded_at"),
    **MYSQL_TABLE_ARGS,
)

training_runs = sa.Table(
    "cpsign_training_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workflow_id", sa.Integer, sa.ForeignKey("cpsign_workflows.id"), nullable=False),
    sa.Column("dag_id", sa.String(250), nullable=True),
    sa.Column("airflow_run_id", sa.String(250), nullable=True),
    sa.Column("task_id", sa.String(250), nullable=True),
    sa.Column("map_index", sa.Integer, nullable=False),
    sa.Column("task_key", sa.String(64), nullable=False),
    sa.Column("trigger_kind", sa.String(16), nullable=False),
    sa.Column("configuration", LongText, nullable=False),
    sa.Column("config_sha256", sa.String(64), nullable=False),
    sa.Column("commit_id", sa.String(64), nullable=True),
    sa.Column("commit_set_id", sa.String(64), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", LongText, nullable=True),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("committed_at", Timestamp, nullable=True),
    sa.Column("finished_at", Timestamp, nullable=True),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("task_key"),
    sa.CheckConstraint("trigger_kind IN ('manual', 'scheduled', 'asset')", name="trigger_kind"),
    sa.CheckConstraint(
        "status IN ('pending', 'committed', 'running', 'succeeded', 'failed', 'rejected')",
        name="status",
    ),
    sa.Index(None, "workflow_id", "status", "finished_at"),
    sa.Index(None, "dag_id", "airflow_run_id"),
    sa.Index(None, "config_sha256"),
    **MYSQL_TABLE_ARGS,
)

pipeline_jobs = sa.Table(
    "cpsign_pipeline_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("cpsign_training_runs.id"), nullable=False),
    sa.Column("pipeline", sa.String(255), nullable=False),
    sa.Column("job_id", sa.String(64), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("reason", LongText, nullable=True),
    # last lines of a failed job's datum log: the stage's own error (revision 0005)
    sa.Column("log_tail", LongText, nullable=True),
    sa.Column("data_processed", sa.BigInteger, nullable=True),
    sa.Column("data_skipped", sa.BigInteger, nullable=True),
    sa.Column("data_failed", sa.BigInteger, nullable=True),
    sa.Column("data_total", sa.BigInteger, nullable=True),
    sa.Column("started_at", Timestamp, nullable=True),
    sa.Column("finished_at", Timestamp, nullable=True),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("run_id", "pipeline", "job_id"),
    **MYSQL_TABLE_ARGS,
)

model_artifacts = sa.Table(
    "cpsign_model_artifacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("cpsign_training_runs.id"), nullable=False),
    sa.Column("model_name", sa.String(255), nullable=False),
    sa.Column("location", sa.String(1024), nullable=False),
    # sha256(model_name NUL location): the two together are too long to index on MySQL.
    sa.Column("artifact_key", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("recorded_at", Timestamp, nullable=False),
    # Added by revision 0002.
    sa.Column("publication_status", sa.String(16), nullable=False, server_default="unpublished"),
    sa.Column("publication_target", sa.String(32), nullable=True),
    sa.Column("publication_url", LongText, nullable=True),
    sa.Column("publication_error", LongText, nullable=True),
    sa.Column("published_at", Timestamp, nullable=True),
    # Added by revision 0003.
    sa.Column("published_version", sa.String(64), nullable=True),
    # Added by revision 0004: metrics.json of the validate pipeline (canonical JSON),
    # and the quality gate's verdict ('passed' / 'held_back') with its reason.
    sa.Column("metrics", LongText, nullable=True),
    sa.Column("quality", sa.String(16), nullable=True),
    sa.Column("quality_reason", LongText, nullable=True),
    # Added by revision 0007: sha256 of the jar less its build metadata (the model's
    # identity), and the earlier run whose verdict a model already recorded carries.
    sa.Column("content_sha256", sa.String(64), nullable=True),
    sa.Column("verdict_run_id", sa.Integer, nullable=True),
    sa.UniqueConstraint("run_id", "artifact_key"),
    sa.Index(None, "run_id", "model_name"),
    **MYSQL_TABLE_ARGS,
)
