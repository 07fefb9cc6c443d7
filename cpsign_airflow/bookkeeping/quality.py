"""The quality gate's records: a model's verdict, decided once per workflow at a time,
its baseline and the model before it; part of
:class:`~cpsign_airflow.bookkeeping.ledger.TrainingLedger`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update

from cpsign_airflow.bookkeeping import records as r
from cpsign_airflow.bookkeeping.artifacts import update_artifacts
from cpsign_airflow.bookkeeping.errors import ArtifactNotFound, RunNotFound
from cpsign_airflow.bookkeeping.records import ArtifactRecord
from cpsign_airflow.bookkeeping.store import LedgerPart, artifact_record, from_db, to_db
from cpsign_airflow.bookkeeping.tables import model_artifacts as arts
from cpsign_airflow.bookkeeping.tables import training_runs as runs
from cpsign_airflow.bookkeeping.tables import workflows

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

Decide = Callable[[ArtifactRecord, ArtifactRecord | None, dict[str, Any] | None], tuple[str, str]]


class QualityPart(LedgerPart):
    def record_quality(
        self, run_id: int | str, model_name: str, quality: str, reason: str | None = None
    ) -> list[ArtifactRecord]:
        """Record the quality gate's verdict (``passed`` / ``held_back``) on a run's model.

        Applies to every artifact of the run with that model name. Repeating it
        is harmless; a later verdict replaces an earlier one (a retried gate
        recomputes it from the same metrics).
        """
        rid = r.check_run_id(run_id)
        model_name = r.check_str("model_name", model_name, max_len=r.MODEL_NAME_MAX)  # type: ignore[assignment]
        quality = r.check_choice("quality", quality, r.QUALITY_VERDICTS)
        reason = r.check_text("quality_reason", reason)

        def unit(conn: Connection) -> list[ArtifactRecord]:
            return update_artifacts(
                conn,
                rid,
                [arts.c.model_name == model_name],
                {"quality": quality, "quality_reason": reason},
                f"Run {rid} has no model artifact {model_name!r}",
            )

        return self._tx(f"recording quality {quality} of {model_name} of run {rid}", unit)

    def decide_quality(self, run_id: int | str, model_name: str, decide: Decide) -> ArtifactRecord:
        """Decide the quality verdict on a run's model once, one decision of a workflow at a time.

        One transaction that first takes the workflow's lock (its row ``FOR UPDATE`` on
        MySQL/MariaDB, read committed, so every read sees the decisions committed before
        the lock was granted; on SQLite a write to that row, which takes the database's
        write lock), so concurrent runs decide one after the other, and each sees what
        the others decided:

        * a verdict already recorded on this run's model (a retried task) is returned as is;
        * ``earlier``: the workflow's newest (by run) model with a verdict and the same
          identity (same model name, and the same content hash or the same sha256),
          followed to the run whose verdict it carries; else None;
        * ``baseline``: the metrics of the last accepted (published or passed) model in
          commit order, among runs that had finished before this run was committed, so
          runs in flight together are never each other's baseline, whichever finishes first.

        ``decide(artifact, earlier, baseline)`` (pure) returns ``(quality, reason)``; with an
        ``earlier`` model the verdict is recorded as carried from its run (``verdict_run_id``).
        Returns the recorded artifact.
        """
        rid = r.check_run_id(run_id)
        model_name = r.check_str("model_name", model_name, max_len=r.MODEL_NAME_MAX)  # type: ignore[assignment]

        def unit(conn: Connection) -> ArtifactRecord:
            run = conn.execute(
                select(runs.c.workflow_id, runs.c.committed_at).where(runs.c.id == rid)
            ).first()
            if run is None:
                raise RunNotFound(f"No training run {rid} in the bookkeeping store")
            self._lock(conn, run.workflow_id)
            where = (arts.c.run_id == rid, arts.c.model_name == model_name)
            row = conn.execute(select(arts).where(*where).order_by(arts.c.id).limit(1)).first()
            if row is None:
                raise ArtifactNotFound(f"Run {rid} has no model artifact {model_name!r}")
            own = artifact_record(row)
            if own.quality is not None:
                return own
            earlier = _same_model(conn, run.workflow_id, own)
            baseline = _baseline(conn, run.workflow_id, own, from_db(run.committed_at))
            quality, reason = decide(own, earlier, baseline)
            conn.execute(
                update(arts)
                .where(*where)
                .values(
                    quality=r.check_choice("quality", quality, r.QUALITY_VERDICTS),
                    quality_reason=r.check_text("quality_reason", reason),
                    verdict_run_id=earlier.run_id if earlier is not None else None,
                )
            )
            return artifact_record(conn.execute(select(arts).where(arts.c.id == own.id)).one())

        mysql = self.engine.dialect.name in ("mysql", "mariadb")
        return self._tx(
            f"deciding the quality of {model_name} of run {rid}",
            unit,
            isolation="READ COMMITTED" if mysql else None,
        )

    def last_published_metrics(
        self,
        workflow: str,
        *,
        before_run_id: int | str | None = None,
        model_name: str | None = None,
    ) -> dict[str, Any] | None:
        """Metrics of the workflow's newest accepted model: the quality gate's baseline.

        Accepted means published (``publication_status`` is ``published``: it
        is or was served) *or* passed by the quality gate (``quality`` is
        ``passed``), so a workflow that never deploys a prediction service
        still has a baseline, and a held-back model never becomes one. Only
        artifacts with recorded metrics count; the newest run wins (then the
        newest artifact). ``before_run_id`` limits the search to earlier runs,
        so a run never compares its model with itself. None if there is none.
        """
        workflow = r.check_workflow(workflow)
        query = (
            select(arts.c.metrics)
            .join(runs, runs.c.id == arts.c.run_id)
            .join(workflows, workflows.c.id == runs.c.workflow_id)
            .where(
                workflows.c.name == workflow,
                arts.c.metrics.is_not(None),
                or_(arts.c.publication_status == "published", arts.c.quality == "passed"),
            )
            .order_by(runs.c.id.desc(), arts.c.id.desc())
            .limit(1)
        )
        if before_run_id is not None:
            query = query.where(runs.c.id < r.check_run_id(before_run_id, "before_run_id"))
        if model_name is not None:  # a workflow with several models: each its own baseline
            name = r.check_str("model_name", model_name, max_len=r.MODEL_NAME_MAX)
            query = query.where(arts.c.model_name == name)

        def unit(conn: Connection) -> dict[str, Any] | None:
            text = conn.execute(query).scalar()
            return json.loads(text) if text else None

        return self._tx(f"reading the last accepted metrics of {workflow}", unit)

    def previous_model(
        self, workflow: str, model_name: str, *, before_run_id: int | str
    ) -> ArtifactRecord | None:
        """The model ``model_name`` of the workflow's newest succeeded run before ``before_run_id``.

        What a retraining compares its model with: the same sha256 means pachd
        skipped every datum (no new rows), so the model is unchanged.
        """
        workflow = r.check_workflow(workflow)
        model_name = r.check_str("model_name", model_name, max_len=r.MODEL_NAME_MAX)  # type: ignore[assignment]
        query = (
            select(arts)
            .join(runs, runs.c.id == arts.c.run_id)
            .join(workflows, workflows.c.id == runs.c.workflow_id)
            .where(
                workflows.c.name == workflow,
                arts.c.model_name == model_name,
                runs.c.status == "succeeded",
                runs.c.id < r.check_run_id(before_run_id, "before_run_id"),
            )
            .order_by(runs.c.id.desc(), arts.c.id.desc())
            .limit(1)
        )

        def unit(conn: Connection) -> ArtifactRecord | None:
            row = conn.execute(query).first()
            return artifact_record(row) if row else None

        return self._tx(f"reading the previous model {model_name} of {workflow}", unit)


def _same_model(conn: Connection, workflow_id: int, own: ArtifactRecord) -> ArtifactRecord | None:
    """The workflow's newest (by run) judged model with ``own``'s identity, or the model
    whose verdict that one carries; None if the identity is new."""
    same = [arts.c.content_sha256 == own.content_sha256] if own.content_sha256 else []
    same += [arts.c.sha256 == own.sha256] if own.sha256 else []
    if not same:
        return None
    row = conn.execute(
        select(arts)
        .join(runs, runs.c.id == arts.c.run_id)
        .where(
            runs.c.workflow_id == workflow_id,
            arts.c.model_name == own.model_name,
            arts.c.run_id != own.run_id,
            arts.c.quality.is_not(None),
            or_(*same),
        )
        .order_by(runs.c.id.desc(), arts.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    if row.verdict_run_id is not None:  # carried: the verdict was decided on that run's model
        origin = conn.execute(
            select(arts)
            .where(arts.c.run_id == row.verdict_run_id, arts.c.model_name == own.model_name)
            .order_by(arts.c.id)
            .limit(1)
        ).first()
        row = origin if origin is not None else row
    return artifact_record(row)


def _baseline(
    conn: Connection, workflow_id: int, own: ArtifactRecord, committed_at: datetime | None
) -> dict[str, Any] | None:
    """Metrics of the last accepted model in commit order among runs finished before
    ``own``'s run was committed (not committed: among earlier runs); None if none."""
    query = (
        select(arts.c.metrics)
        .join(runs, runs.c.id == arts.c.run_id)
        .where(
            runs.c.workflow_id == workflow_id,
            runs.c.id != own.run_id,
            arts.c.model_name == own.model_name,
            arts.c.metrics.is_not(None),
            or_(arts.c.publication_status == "published", arts.c.quality == "passed"),
        )
        .order_by(runs.c.committed_at.desc(), runs.c.id.desc(), arts.c.id.desc())
        .limit(1)
    )
    if committed_at is not None:
        query = query.where(runs.c.finished_at < to_db(committed_at))
    else:
        query = query.where(runs.c.id < own.run_id)
    text = conn.execute(query).scalar()
    return json.loads(text) if text else None
