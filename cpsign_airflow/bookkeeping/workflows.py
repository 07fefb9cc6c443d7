"""Workflows and their pipeline deployments; part of
:class:`~cpsign_airflow.bookkeeping.ledger.TrainingLedger`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cpsign_airflow.bookkeeping import records as r
from cpsign_airflow.bookkeeping.records import DeploymentRecord, TaskKey, WorkflowRecord
from cpsign_airflow.bookkeeping.store import (
    LedgerPart,
    check_limit,
    dedupe,
    deployment_query,
    deployment_record,
    to_db,
    upsert,
    workflow_record,
)
from cpsign_airflow.bookkeeping.tables import pipeline_deployments as deps
from cpsign_airflow.bookkeeping.tables import workflows
from cpsign_airflow.bookkeeping.validation import DeploymentInput, parse_list

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row


class WorkflowsPart(LedgerPart):
    # ----------------------------------------------------------------- workflows

    def ensure_workflow(
        self, name: str, *, project: str | None = None, config_repo: str | None = None
    ) -> WorkflowRecord:
        """Create the workflow if new; update its project or config repo if given and changed."""
        name = r.check_workflow(name)
        project = r.check_str("project", project, max_len=r.NAME_MAX, optional=True)
        config_repo = r.check_str("config_repo", config_repo, max_len=r.NAME_MAX, optional=True)
        return self._tx(
            f"recording workflow {name}",
            lambda conn: self._ensure_workflow(conn, name, project, config_repo),
        )

    def get_workflow(self, name: str) -> WorkflowRecord | None:
        name = r.check_workflow(name)

        def unit(conn: Connection) -> WorkflowRecord | None:
            row = conn.execute(select(workflows).where(workflows.c.name == name)).first()
            return workflow_record(row) if row else None

        return self._tx(f"reading workflow {name}", unit)

    def list_workflows(self) -> list[WorkflowRecord]:
        return self._tx(
            "listing workflows",
            lambda conn: [
                workflow_record(row)
                for row in conn.execute(select(workflows).order_by(workflows.c.name))
            ],
        )

    def _ensure_workflow(
        self, conn: Connection, name: str, project: str | None, config_repo: str | None
    ) -> WorkflowRecord:
        now = to_db(r.utcnow())

        def changed(row: Row) -> dict[str, Any]:
            changes = {}
            if project and project != row.project:
                changes["project"] = project
            if config_repo and config_repo != row.config_repo:
                changes["config_repo"] = config_repo
            return {**changes, "updated_at": now} if changes else {}

        row, _ = upsert(
            conn,
            workflows,
            {"name": name},
            insert_values={
                "project": project or r.DEFAULT_PROJECT,
                "config_repo": config_repo or r.DEFAULT_CONFIG_REPO,
                "created_at": now,
                "updated_at": now,
            },
            update_values=changed,
        )
        return workflow_record(row)

    # ----------------------------------------------------------------- deployments

    def record_deployments(
        self,
        workflow: str,
        deployments: Iterable[Mapping[str, Any]],
        *,
        task: TaskKey | None = None,
        project: str | None = None,
        config_repo: str | None = None,
    ) -> list[DeploymentRecord]:
        """Record what a setup task did to each pipeline (created/updated/unchanged).

        Keyed by (task, pipeline): a retried task keeps the first try's rows,
        whose action is the true one (a retry would see ``unchanged``).
        """
        workflow = r.check_workflow(workflow)
        project = r.check_str("project", project, max_len=r.NAME_MAX, optional=True)
        config_repo = r.check_str("config_repo", config_repo, max_len=r.NAME_MAX, optional=True)
        checked = dedupe(
            (dep.columns() for dep in parse_list("deployments", deployments, DeploymentInput)),
            key=lambda d: d["pipeline"],
        )
        task = task or TaskKey.one_off()
        key = task.digest()

        def unit(conn: Connection) -> list[DeploymentRecord]:
            wf = self._ensure_workflow(conn, workflow, project, config_repo)
            now = to_db(r.utcnow())
            out = []
            for dep in checked:
                row, _ = upsert(  # never updated: the first try's action is the true one
                    conn,
                    deps,
                    {"task_key": key, "pipeline": dep["pipeline"]},
                    insert_values={
                        "workflow_id": wf.id,
                        "dag_id": task.dag_id,
                        "airflow_run_id": task.run_id,
                        "task_id": task.task_id,
                        "recorded_at": now,
                        **dep,
                    },
                    query=deployment_query(),
                )
                out.append(deployment_record(row))
            return out

        return self._tx(f"recording {len(checked)} deployments of {workflow}", unit)

    def list_deployments(self, workflow: str, *, limit: int = 100) -> list[DeploymentRecord]:
        """Deployments of a workflow, newest first."""
        workflow = r.check_workflow(workflow)
        query = (
            deployment_query()
            .where(workflows.c.name == workflow)
            .order_by(deps.c.id.desc())
            .limit(check_limit(limit))
        )
        return self._tx(
            f"listing deployments of {workflow}",
            lambda conn: [deployment_record(row) for row in conn.execute(query)],
        )
