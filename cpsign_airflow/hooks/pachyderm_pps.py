"""The PPS part of the Pachyderm hook: pipelines, jobs and their logs.

:class:`PachydermPpsMixin` is composed into
:class:`~cpsign_airflow.hooks.pachyderm.PachydermHook`; every call goes through
:meth:`~cpsign_airflow.hooks.pachyderm_base.BasePachydermHook._call`.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cpsign_airflow.exceptions import (
    PachydermError,
    PachydermInvalidArgument,
    PachydermNotFound,
    PachydermSpecError,
    PachydermTimeout,
)
from cpsign_airflow.hooks.pachyderm_base import (
    TERMINAL_JOB_STATES,
    BasePachydermHook,
    _enum_name,
    job_to_dict,
    pipeline_state_to_dict,
)

if TYPE_CHECKING:
    from cpsign_airflow.hooks.pachyderm_types import PipelineResult


class PachydermPpsMixin(BasePachydermHook):
    """Pipelines, jobs and their logs (pachd's PPS API)."""

    def inspect_pipeline(self, pipeline: str, project: str | None = None) -> dict[str, Any]:
        """``{"pipeline", "project", "version", "state", "user_spec"}``; NotFound if absent."""
        from pachyderm_sdk.api import pps

        msg = self._pipeline_msg(pipeline, project)
        info = self._call(
            f"inspect pipeline {self._where(pipeline, project)!r}",
            lambda: self.get_conn().pps.inspect_pipeline(pipeline=msg, details=True),
        )
        user_spec = json.loads(info.user_spec_json) if info.user_spec_json else None
        return {
            "pipeline": pipeline,
            "project": project or self.project,
            "version": int(info.version),
            "state": _enum_name(pps.PipelineState, info.state),
            "user_spec": user_spec,
            "spec_commit": info.spec_commit.id if info.spec_commit else None,
        }

    def pipeline_states(self, pipelines: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        """State and reason of ``(project, name)`` pipelines (:func:`pipeline_state_to_dict`).

        One InspectPipeline each, without details (pachd then skips its Kubernetes and
        worker look-ups); a pipeline that no longer exists is left out.
        """
        states = []
        for project, name in pipelines:
            msg = self._pipeline_msg(name, project)
            try:
                info = self._call(
                    f"inspect pipeline {project + '/' + name!r}",
                    lambda msg=msg: self.get_conn().pps.inspect_pipeline(
                        pipeline=msg, details=False
                    ),
                )
            except PachydermNotFound:
                continue
            states.append(pipeline_state_to_dict(info))
        return states

    def pipeline_exists(self, pipeline: str, project: str | None = None) -> bool:
        try:
            self.inspect_pipeline(pipeline, project)
            return True
        except PachydermNotFound:
            return False

    def plan_pipeline(self, spec: dict[str, Any], *, reprocess: bool = False) -> dict[str, Any]:
        """What :meth:`create_or_update_pipeline` would do with ``spec``; nothing is sent.

        Returns ``{"pipeline", "project", "action", "spec_hash", "version"}``: action
        ``created`` (no such pipeline), ``updated`` (its spec differs, in canonical
        form, from what pachd reports as the user's spec, or ``reprocess``) or
        ``unchanged``; version is the current one (None if there is no pipeline).
        Only an update kills jobs: pachd stops the pipeline's unfinished jobs.
        """
        return self._plan_pipeline(spec, reprocess)[0]

    def _plan_pipeline(
        self, spec: dict[str, Any], reprocess: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The plan and the spec as it would be sent (project filled in)."""
        from cpsign_airflow.specs.canonical import canonical_spec, pipeline_name, spec_hash
        from cpsign_airflow.specs.validate import validate_spec

        name = pipeline_name(spec)
        validate_spec(spec, f"for pipeline {name!r}")
        spec = dict(spec)
        project = (spec.get("pipeline") or {}).get("project", {}).get("name") or self.project
        spec["pipeline"] = {**spec["pipeline"], "project": {"name": project}}
        try:
            current = self.inspect_pipeline(name, project)
        except PachydermNotFound:
            current = None
        if current is None:
            action = "created"
        elif (
            current["user_spec"] is not None
            and not reprocess
            and canonical_spec(current["user_spec"]) == canonical_spec(spec)
        ):
            action = "unchanged"
        else:
            action = "updated"
        plan = {
            "pipeline": name,
            "project": project,
            "action": action,
            "spec_hash": spec_hash(spec),
            "version": current["version"] if current is not None else None,
        }
        return plan, spec

    def create_or_update_pipeline(
        self, spec: dict[str, Any], *, reprocess: bool = False
    ) -> PipelineResult:
        """Create the pipeline, or update it if its spec changed (see :meth:`plan_pipeline`).

        pachd starts a job on every create/update, even an identical one, so an
        unchanged spec (compared in canonical form with what pachd reports as
        the user's spec) is not sent. Without ``reprocess`` pachd keeps the
        pipeline's salt and only new or changed datums run. An update kills the
        pipeline's unfinished jobs (pachd does; see :meth:`list_unfinished_jobs`).

        Returns ``{"pipeline", "project", "action", "spec_hash", "version",
        "spec_commit"}`` with action ``created``, ``updated`` or ``unchanged``;
        spec_commit is the commit set of the jobs this create/update started
        (None when unchanged).
        """
        plan, spec = self._plan_pipeline(spec, reprocess)
        name, project, digest = plan["pipeline"], plan["project"], plan["spec_hash"]
        if plan["action"] == "unchanged":
            self.log.info("Pipeline %s/%s unchanged; nothing sent", project, name)
            return {**plan, "spec_commit": None}
        update = plan["action"] == "updated"
        body = json.dumps({k: v for k, v in spec.items() if k not in ("update", "reprocess")})
        try:
            self._call(
                f"{'update' if update else 'create'} pipeline {project + '/' + name!r}",
                lambda: self.get_conn().pps.create_pipeline_v2(
                    create_pipeline_request_json=body, update=update, reprocess=reprocess
                ),
            )
        except PachydermInvalidArgument as err:
            # pachd refused the spec itself (INVALID_ARGUMENT): the same spec fails again
            raise PachydermSpecError(str(err)) from None
        after = self.inspect_pipeline(name, project)
        action = "updated" if update else "created"
        self.log.info(
            "Pipeline %s/%s %s (version %s%s)",
            project,
            name,
            action,
            after["version"],
            ", reprocessing all datums" if reprocess else "",
        )
        return {
            "pipeline": name,
            "project": project,
            "action": action,
            "spec_hash": digest,
            "version": after["version"],
            "spec_commit": after["spec_commit"],
        }

    def delete_pipeline(self, pipeline: str, project: str | None = None) -> None:
        msg = self._pipeline_msg(pipeline, project)
        self._call(
            f"delete pipeline {self._where(pipeline, project)!r}",
            lambda: self.get_conn().pps.delete_pipeline(pipeline=msg, force=True),
        )

    # ------------------------------------------------------------------ jobs

    def list_jobs(self, commit_set_id: str) -> list[dict[str, Any]]:
        """Jobs of a commit set (its id is the job id): one per pipeline."""
        from pachyderm_sdk.api import pps

        infos = self._list(
            f"list jobs of job set {commit_set_id}",
            lambda: self.get_conn().pps.inspect_job_set(job_set=pps.JobSet(id=commit_set_id)),
        )
        return [job_to_dict(i) for i in infos]

    def get_job_logs(
        self, pipeline: str, job_id: str, tail: int = 20, project: str | None = None
    ) -> list[str]:
        """Last log lines of a job, where pachd keeps them; [] when it has none."""
        from pachyderm_sdk.api import pps

        pipe = self._pipeline_msg(pipeline, project)
        try:
            messages = self._list(
                f"read logs of job {pipeline}@{job_id}",
                lambda: self.get_conn().pps.get_logs(
                    pipeline=pipe, job=pps.Job(pipeline=pipe, id=job_id), tail=tail
                ),
            )
        except PachydermError as err:
            self.log.info("No logs for job %s@%s: %s", pipeline, job_id, err)
            return []
        return [m.message.rstrip("\n") for m in messages][-tail:]

    def get_pipeline_logs(
        self, pipeline: str, tail: int = 20, project: str | None = None
    ) -> list[str]:
        """Last log lines of a pipeline's workers (any job), where pachd has them; else [].

        pachd reads them from the pipeline's pods (or Loki); a pipeline whose workers
        never started has none, and pachd may answer with an error then, which is
        taken as "no lines".
        """
        pipe = self._pipeline_msg(pipeline, project)
        try:
            messages = self._list(
                f"read logs of pipeline {self._where(pipeline, project)}",
                lambda: self.get_conn().pps.get_logs(pipeline=pipe, tail=tail),
            )
        except PachydermError as err:
            self.log.info("No logs for pipeline %s: %s", pipeline, err)
            return []
        return [m.message.rstrip("\n") for m in messages][-tail:] if tail > 0 else []

    def stop_job(self, pipeline: str, job_id: str, project: str | None = None) -> None:
        from pachyderm_sdk.api import pps

        pipe = self._pipeline_msg(pipeline, project)
        self._call(
            f"stop job {pipeline}@{job_id}",
            lambda: self.get_conn().pps.stop_job(job=pps.Job(pipeline=pipe, id=job_id)),
        )

    # ------------------------------------------------------------------ in-flight jobs

    def inspect_job(self, pipeline: str, job_id: str, project: str | None = None) -> dict[str, Any]:
        """One job as it stands now (:func:`job_to_dict`); NotFound if there is none."""
        from pachyderm_sdk.api import pps

        pipe = self._pipeline_msg(pipeline, project)
        info = self._call(
            f"inspect job {pipeline}@{job_id}",
            lambda: self.get_conn().pps.inspect_job(job=pps.Job(pipeline=pipe, id=job_id)),
        )
        return job_to_dict(info)

    def list_unfinished_jobs(
        self, pipelines: Iterable[str | tuple[str, str]], project: str | None = None
    ) -> list[dict[str, Any]]:
        """Jobs of ``pipelines`` not yet in a terminal state: those an update would kill.

        ``pipelines`` are names (in ``project``) or ``(project, name)`` pairs. One
        ListJob per pipeline over all its versions (``history=-1``: pachd stops the
        unfinished jobs of every version when a pipeline is updated); a pipeline
        that does not exist has none. Oldest first, as :func:`job_to_dict` dicts.
        """
        jobs: list[dict[str, Any]] = []
        for item in pipelines:
            proj, name = item if isinstance(item, tuple) else (project or self.project, item)
            pipe = self._pipeline_msg(name, proj)
            try:
                infos = self._list(
                    f"list jobs of pipeline {proj}/{name}",
                    lambda pipe=pipe: self.get_conn().pps.list_job(
                        pipeline=pipe, history=-1, details=False
                    ),
                )
            except PachydermNotFound:
                continue
            found = [job_to_dict(i) for i in infos]
            jobs.extend(j for j in reversed(found) if j["state"] not in TERMINAL_JOB_STATES)
        return jobs

    def wait_for_jobs(
        self, jobs: Iterable[dict[str, Any]], timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Wait until each job has finished, ``timeout`` seconds in all; never raises on time.

        Each job (a dict with ``pipeline``, ``job_id`` and optionally ``project``)
        is awaited with pachd's own blocking InspectJob (``wait``) under the
        remaining deadline. Returns every job as it stands at the end: finished,
        or, once time ran out, its current (unfinished) state.
        """
        from pachyderm_sdk.api import pps

        deadline = None if timeout is None else time.monotonic() + timeout
        results = []
        for job in jobs:
            name, job_id = job["pipeline"], job["job_id"]
            project = job.get("project") or self.project
            msg = pps.Job(pipeline=self._pipeline_msg(name, project), id=job_id)
            rpc = self._rpc("/pps_v2.API/InspectJob", pps.JobInfo)
            try:
                info = self._call(
                    f"wait for job {name}@{job_id}",
                    functools.partial(rpc, pps.InspectJobRequest(job=msg, wait=True)),
                    deadline=deadline,
                )
            except PachydermTimeout:
                results.append(self.inspect_job(name, job_id, project))
            else:
                results.append(job_to_dict(info))
        return results
