"""Initial bookkeeping schema: workflows, deployments, training runs, jobs, artifacts.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Types are spelled out here rather than imported from ``tables.py``: a revision
must keep creating what it created when it shipped. Tables and indexes that
already exist are skipped, so a run cut off half way (MySQL commits each DDL
statement) is completed by the next one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _create_table(name: str, *items: sa.SchemaItem) -> None:
    if not sa.inspect(op.get_bind()).has_table(name):
        op.create_table(name, *items, **MYSQL)


def _create_index(name: str, table: str, columns: list[str]) -> None:
    if name not in {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(table)}:
        op.create_index(name, table, columns)


def upgrade() -> None:
    _create_table(
        "cpsign_workflows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("config_repo", sa.String(128), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cpsign_workflows"),
        sa.UniqueConstraint("name", name="uq_cpsign_workflows_name"),
    )
    _create_table(
        "cpsign_pipeline_deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workflow_id", sa.Integer, nullable=False),
        sa.Column("pipeline", sa.String(255), nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("dag_id", sa.String(250), nullable=True),
        sa.Column("airflow_run_id", sa.String(250), nullable=True),
        sa.Column("task_id", sa.String(250), nullable=True),
        sa.Column("task_key", sa.String(64), nullable=False),
        sa.Column("recorded_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cpsign_pipeline_deployments"),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["cpsign_workflows.id"],
            name="fk_cpsign_pipeline_deployments_workflow_id_cpsign_workflows",
        ),
        sa.UniqueConstraint(
            "task_key", "pipeline", name="uq_cpsign_pipeline_deployments_task_key_pipeline"
        ),
        sa.CheckConstraint(
            "action IN ('created', 'updated', 'unchanged')",
            name="ck_cpsign_pipeline_deployments_action",
        ),
    )
    _create_index(
        "ix_cpsign_pipeline_deployments_workflow_id_recorded_at",
        "cpsign_pipeline_deployments",
        ["workflow_id", "recorded_at"],
    )
    _create_table(
        "cpsign_training_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workflow_id", sa.Integer, nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_cpsign_training_runs"),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["cpsign_workflows.id"],
            name="fk_cpsign_training_runs_workflow_id_cpsign_workflows",
        ),
        sa.UniqueConstraint("task_key", name="uq_cpsign_training_runs_task_key"),
        sa.CheckConstraint(
            "trigger_kind IN ('manual', 'scheduled', 'asset')",
            name="ck_cpsign_training_runs_trigger_kind",
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'committed', 'running', 'succeeded', 'failed')",
            name="ck_cpsign_training_runs_status",
        ),
    )
    _create_index(
        "ix_cpsign_training_runs_workflow_id_status_finished_at",
        "cpsign_training_runs",
        ["workflow_id", "status", "finished_at"],
    )
    _create_index(
        "ix_cpsign_training_runs_dag_id_airflow_run_id",
        "cpsign_training_runs",
        ["dag_id", "airflow_run_id"],
    )
    _create_index(
        "ix_cpsign_training_runs_config_sha256", "cpsign_training_runs", ["config_sha256"]
    )
    _create_table(
        "cpsign_pipeline_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("pipeline", sa.String(255), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("reason", LongText, nullable=True),
        sa.Column("data_processed", sa.BigInteger, nullable=True),
        sa.Column("data_skipped", sa.BigInteger, nullable=True),
        sa.Column("data_failed", sa.BigInteger, nullable=True),
        sa.Column("data_total", sa.BigInteger, nullable=True),
        sa.Column("started_at", Timestamp, nullable=True),
        sa.Column("finished_at", Timestamp, nullable=True),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cpsign_pipeline_jobs"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["cpsign_training_runs.id"],
            name="fk_cpsign_pipeline_jobs_run_id_cpsign_training_runs",
        ),
        sa.UniqueConstraint(
            "run_id", "pipeline", "job_id", name="uq_cpsign_pipeline_jobs_run_id_pipeline_job_id"
        ),
    )
    _create_table(
        "cpsign_model_artifacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("location", sa.String(1024), nullable=False),
        sa.Column("artifact_key", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("recorded_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cpsign_model_artifacts"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["cpsign_training_runs.id"],
            name="fk_cpsign_model_artifacts_run_id_cpsign_training_runs",
        ),
        sa.UniqueConstraint(
            "run_id", "artifact_key", name="uq_cpsign_model_artifacts_run_id_artifact_key"
        ),
    )
    _create_index(
        "ix_cpsign_model_artifacts_run_id_model_name",
        "cpsign_model_artifacts",
        ["run_id", "model_name"],
    )


def downgrade() -> None:
    op.drop_table("cpsign_model_artifacts")
    op.drop_table("cpsign_pipeline_jobs")
    op.drop_table("cpsign_training_runs")
    op.drop_table("cpsign_pipeline_deployments")
    op.drop_table("cpsign_workflows")
