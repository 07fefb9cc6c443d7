"""A run's Pachyderm jobs and model artifacts, and where a model was published;
part of :class:`~cpsign_airflow.bookkeeping.ledger.TrainingLedger`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from cpsign_airflow.bookkeeping import records as r
from cpsign_airflow.bookkeeping.errors import ArtifactNotFound, RunStateConflict
from cpsign_airflow.bookkeeping.records import ArtifactRecord, JobRecord
from cpsign_airflow.bookkeeping.store import (
    LedgerPart,
    artifact_record,
    dedupe,
    job_record,
    require_run,
    set_values,
    to_db,
    upsert,
)
from cpsign_airflow.bookkeeping.tables import model_artifacts as arts
from cpsign_airflow.bookkeeping.tables import pipeline_jobs as jobs_t
from cpsign_airflow.bookkeeping.validation import (
    ArtifactInput,
    JobInput,
    PublicationInput,
    artifact_key,
    parse,
    parse_list,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row


class ArtifactsPart(LedgerPart):
    # ----------------------------------------------------------------- jobs

    def record_jobs(self, run_id: int | str, jobs: Iterable[Mapping[str, Any]]) -> list[JobRecord]:
        """Insert or update a run's pipeline jobs, keyed by (run, pipeline, job id).

        A value left out (None) keeps what an earlier call recorded.
        """
        rid = r.check_run_id(run_id)
        checked = dedupe(
            (job.columns() for job in parse_list("jobs", jobs, JobInput)),
            key=lambda j: (j["pipeline"], j["job_id"]),
        )

        def unit(conn: Connection) -> list[JobRecord]:
            require_run(conn, rid)
            now = to_db(r.utcnow())
            out = []
            for job in checked:
                values = {**set_values(job), "updated_at": now}
                row, _ = upsert(
                    conn,
                    jobs_t,
                    {"run_id": rid, "pipeline": job["pipeline"], "job_id": job["job_id"]},
                    insert_values=values,
                    update_values=values,
                )
                out.append(job_record(row))
            return out

        return self._tx(f"recording {len(checked)} jobs of run {rid}", unit)

    def list_jobs(self, run_id: int | str) -> list[JobRecord]:
        rid = r.check_run_id(run_id)
        query = select(jobs_t).where(jobs_t.c.run_id == rid).order_by(jobs_t.c.id)
        return self._tx(
            f"listing jobs of run {rid}",
            lambda conn: [job_record(row) for row in conn.execute(query)],
        )

    # ----------------------------------------------------------------- artifacts

    def record_artifacts(
        self, run_id: int | str, artifacts: Iterable[Mapping[str, Any]]
    ) -> list[ArtifactRecord]:
        """Insert or update a run's model artifacts, keyed by (run, model name, location).

        Each may carry publication fields and ``metrics`` (the validate
        pipeline's ``metrics.json`` as a mapping or JSON text; stored as
        canonical JSON, returned parsed); a value left out keeps what was
        recorded. A different sha256 for the same artifact is a conflict.
        """
        rid = r.check_run_id(run_id)
        checked = dedupe(
            (art.columns() for art in parse_list("artifacts", artifacts, ArtifactInput)),
            key=lambda a: a["artifact_key"],
        )

        def unit(conn: Connection) -> list[ArtifactRecord]:
            require_run(conn, rid)
            now = to_db(r.utcnow())
            out = []
            for art in checked:
                values = set_values(art)
                row, _ = upsert(
                    conn,
                    arts,
                    {"run_id": rid, "artifact_key": art["artifact_key"]},
                    insert_values={**values, "recorded_at": now},
                    update_values=_same_sha256(rid, art, values),
                )
                out.append(artifact_record(row))
            return out

        return self._tx(f"recording {len(checked)} artifacts of run {rid}", unit)

    def record_publication(
        self,
        run_id: int | str,
        model_name: str,
        *,
        status: str,
        target: str | None = None,
        url: str | None = None,
        error: str | None = None,
        location: str | None = None,
        version: str | None = None,
    ) -> list[ArtifactRecord]:
        """Record where a model was published (model store or prediction service), or why not.

        ``version`` is the model version the target serves (a commit id).
        """
        rid = r.check_run_id(run_id)
        model_name = r.check_str("model_name", model_name, max_len=r.MODEL_NAME_MAX)  # type: ignore[assignment]
        r.check_choice("status", status, r.PUBLICATION_STATUSES)
        pub = parse(
            "publication",
            {
                "publication_status": status,
                "publication_target": target,
                "publication_url": url,
                "publication_error": error,
                "published_version": version,
            },
            PublicationInput,
        ).columns()
        key = artifact_key(model_name, r.check_location("location", location)) if location else None

        def unit(conn: Connection) -> list[ArtifactRecord]:
            where = [arts.c.model_name == model_name]
            if key:
                where.append(arts.c.artifact_key == key)
            missing = f"Run {rid} has no model artifact {model_name!r}" + (
                f" at {location}" if location else ""
            )
            return update_artifacts(conn, rid, where, set_values(pub), missing)

        return self._tx(f"recording publication of {model_name} of run {rid}", unit)

    def list_artifacts(self, run_id: int | str) -> list[ArtifactRecord]:
        rid = r.check_run_id(run_id)
        query = select(arts).where(arts.c.run_id == rid).order_by(arts.c.id)
        return self._tx(
            f"listing artifacts of run {rid}",
            lambda conn: [artifact_record(row) for row in conn.execute(query)],
        )

    def artifacts_of_runs(self, run_ids: Iterable[int | str]) -> dict[int, list[ArtifactRecord]]:
        """Artifacts of many runs in one query, by run id (runs without any are absent)."""
        rids = sorted({r.check_run_id(rid) for rid in run_ids})
        if not rids:
            return {}
        query = select(arts).where(arts.c.run_id.in_(rids)).order_by(arts.c.run_id, arts.c.id)

        def unit(conn: Connection) -> dict[int, list[ArtifactRecord]]:
            out: dict[int, list[ArtifactRecord]] = {}
            for row in conn.execute(query):
                out.setdefault(row.run_id, []).append(artifact_record(row))
            return out

        return self._tx(f"listing artifacts of {len(rids)} run(s)", unit)


def _same_sha256(
    rid: int, art: Mapping[str, Any], values: Mapping[str, Any]
) -> Callable[[Row], Mapping[str, Any]]:
    """The update of a recorded artifact: ``values``, unless it was recorded with another sha256."""

    def changes(row: Row) -> Mapping[str, Any]:
        if row.sha256 and art["sha256"] and row.sha256 != art["sha256"]:
            raise RunStateConflict(
                f"Artifact {art['model_name']} at {art['location']} of run {rid} is "
                f"recorded with sha256 {row.sha256}, not {art['sha256']}"
            )
        return values

    return changes


def update_artifacts(
    conn: Connection, rid: int, where: list[Any], values: Mapping[str, Any], missing: str
) -> list[ArtifactRecord]:
    """Set ``values`` on the artifacts of run ``rid`` that match ``where``; the artifacts
    as updated. None match: :class:`ArtifactNotFound` with ``missing`` (or RunNotFound)."""
    ids = list(conn.execute(select(arts.c.id).where(arts.c.run_id == rid, *where)).scalars())
    if not ids:
        require_run(conn, rid)
        raise ArtifactNotFound(missing)
    conn.execute(update(arts).where(arts.c.id.in_(ids)).values(**values))
    query = select(arts).where(arts.c.id.in_(ids)).order_by(arts.c.id)
    return [artifact_record(row) for row in conn.execute(query)]
