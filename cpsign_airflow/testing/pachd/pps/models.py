"""PPS's state and pachd's rules for it: pipelines, jobs, job sets, logs, secrets.

:class:`PpsBackend` holds the records (:mod:`.records`) and does what pachd's PPS API
server and master do (src/server/pps/server/: api_server.go, master.go, monitor.go,
poller.go; ppsutil), taking the SDK's identifier messages (``pps.Pipeline``,
``pps.Job``) and raising pachd's errors. It works on PFS through the PFS backend (a
pipeline's repos, branches and spec commit), as pachd's PPS does through PFS; jobs run
in :mod:`..jobs` (the runner registers itself here: ``on_new_job``, ``stop_job``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Any

import grpc
from pachyderm_sdk.api import pfs, pps

from .. import errors
from ..auth import AuthConfig
from ..datums import pfs_inputs
from ..errors import DEFAULT_PROJECT, PachdError
from ..events import Events
from ..filestore import FileData
from ..pfs.models import PfsBackend
from ..pfs.records import BranchRec, CommitRec, RepoRec, new_id, now
from . import specs
from .records import JobRec, PipelineKey, PipelineRec

# pachd appends " for user <name>"; with auth off the name is unknown_username
KILLED_BY_UPDATE = "all jobs killed because pipeline was updated for user {user}"

SPEC_FILE = "/spec.json"

#: pachd's master re-checks a CRASHING pipeline's workers this often (its
#: ``crashingBackoff``, src/server/pps/server/master.go) and moves it to RUNNING
#: once they are up (monitorCrashingPipeline, src/server/pps/server/monitor.go).
CRASHING_BACKOFF = 15.0

#: kubelet's waiting message for an image it cannot pull (ImagePullBackOff, between
#: attempts; pkg/kubelet/images/image_manager.go), which pachd's master makes the
#: CRASHING pipeline's reason (pollPipelinePods, src/server/pps/server/poller.go)
IMAGE_PULL_BACK_OFF = 'Back-off pulling image "{image}"'


def oldest_listed_version(current: int, history: int) -> int:
    """The oldest pipeline version whose jobs ListJob lists (pachd's ListPipelineInfo,
    src/internal/ppsutil/util.go): ``history`` 0 the current version only, N the last N
    versions before it too, -1 (any negative) all."""
    if history < 0 or history >= current:
        return 1
    return current - history


class PpsBackend:
    """Pipelines, their jobs, and pps secrets."""

    def __init__(self, events: Events, pfs_backend: PfsBackend) -> None:
        self.events = events
        self.pfs = pfs_backend
        self.pipelines: dict[PipelineKey, PipelineRec] = {}
        self.jobs: dict[tuple[PipelineKey, str], JobRec] = {}
        # pps secrets: name -> Kubernetes Secret manifest (as CreateSecret received it)
        self.secrets: dict[str, dict[str, Any]] = {}
        self.secret_created: dict[str, datetime] = {}
        #: who is logged in (kill reasons name the user); set by the server
        self.auth: AuthConfig | None = None
        #: seconds between checks of a CRASHING pipeline; set by the server
        self.crashing_backoff: Callable[[], float] = lambda: CRASHING_BACKOFF
        #: whether a worker could pull ``image``; set by the server
        self.image_pullable: Callable[[str], bool] = lambda image: True
        #: set by the job runner: called with each new job (to schedule it) ...
        self.on_new_job: Callable[[JobRec], None] | None = None
        #: ... and to kill a job (``reason``)
        self.stop_job: Callable[[JobRec, str], None] = lambda job, reason: None
        pfs_backend.on_output_commit = self._open_job
        pfs_backend.is_pipeline_output = self._is_output_repo

    def mark_dirty(self) -> None:
        self.events.mark_dirty()

    @property
    def user(self) -> str:
        """Who pachd names in kill reasons: the root user with auth on, else unknown."""
        return "pach:root" if self.auth is not None and self.auth.token else "unknown_username"

    # ------------------------------------------------------------- from PFS
    def _is_output_repo(self, repo: RepoRec) -> bool:
        return repo.type == "user" and (repo.project, repo.name) in self.pipelines

    def pipeline_for_output(self, branch: BranchRec) -> PipelineRec | None:
        repo = branch.repo
        if repo.type != "user":
            return None
        rec = self.pipelines.get((repo.project, repo.name))
        if rec is None or (rec.spec.output_branch or "master") != branch.name:
            return None
        return rec

    def _open_job(self, branch: BranchRec, output: CommitRec, commit_set_id: str) -> None:
        """A commit opened on a pipeline's output branch: the pipeline's job in that set."""
        pipeline = self.pipeline_for_output(branch)
        if pipeline is None:
            return
        job = JobRec(
            pipeline=pipeline,
            id=commit_set_id,
            pipeline_version=pipeline.version,
            output_commit=output,
            spec=pipeline.spec,
            salt=pipeline.salt,
        )
        self.jobs[(pipeline.key, commit_set_id)] = job
        if self.on_new_job is not None:
            self.on_new_job(job)

    # -------------------------------------------------------------- pipelines
    def pipeline(self, pipeline: pps.Pipeline | None) -> PipelineRec:
        if pipeline is None or not pipeline.name:
            raise errors.unknown("invalid pipeline spec: request.Pipeline.Name cannot be empty")
        project = (pipeline.project.name if pipeline.project else "") or DEFAULT_PROJECT
        rec = self.pipelines.get((project, pipeline.name))
        if rec is None:
            raise errors.pipeline_not_found(pipeline.name)
        return rec

    def create_pipeline(self, req: pps.CreatePipelineRequest) -> None:
        user = specs.request_to_dict(req)
        self._create(req, user, json.dumps(user), req.update, req.reprocess, req.dry_run, None)

    def create_pipeline_v2(self, text: str, update: bool, reprocess: bool, dry_run: bool) -> str:
        """The effective spec's JSON."""
        try:
            request, raw = specs.parse_json(text)
        except PachdError as exc:
            raise PachdError(
                grpc.StatusCode.INVALID_ARGUMENT, f"could not make effective spec: {exc.message}"
            ) from None
        return self._create(
            request,
            raw,
            text,
            update or bool(raw.get("update")),
            reprocess or bool(raw.get("reprocess")),
            dry_run,
            raw,
        )

    def _create(
        self,
        request: pps.CreatePipelineRequest,
        user: dict[str, Any],
        user_json: str,
        update: bool,
        reprocess: bool,
        dry_run: bool,
        raw: dict[str, Any] | None,
    ) -> str:
        specs.validate(request, raw)
        name = request.pipeline.name
        project = (request.pipeline.project.name if request.pipeline.project else "") or (
            DEFAULT_PROJECT
        )
        self.pfs.project(project)
        input_branches: list[tuple[pps.PfsInput, Any]] = []
        for pin in pfs_inputs(request.input):
            repo = self.pfs.repo(
                pfs.Repo(
                    name=pin.repo,
                    type=pin.repo_type or "user",
                    project=pfs.Project(name=pin.project or project),
                )
            )
            input_branches.append((pin, repo))
        effective, effective_json = specs.effective(user)
        specs.check_secrets(effective, self.secrets)
        existing = self.pipelines.get((project, name))
        if existing is not None and not update:
            raise errors.pipeline_exists(project, name)
        if existing is None and (project, name, "user") in self.pfs.repos:
            raise errors.repo_name_taken(name)
        if dry_run:
            return effective_json

        if existing is None:
            out_repo = self.pfs.add_repo(project, name, "user")
            spec_repo = self.pfs.add_repo(project, name, "spec")
            self.pfs.add_repo(project, name, "meta")
            rec = PipelineRec(
                project=project,
                name=name,
                spec=effective,
                user_json=user_json,
                effective_json=effective_json,
                salt=request.salt or new_id(),
            )
            self.pipelines[rec.key] = rec
        else:
            rec = existing
            out_repo = self.pfs.repos[(project, name, "user")]
            spec_repo = self.pfs.repos[(project, name, "spec")]
            self._kill_for_update(rec)
            rec.version += 1
            rec.spec = effective
            rec.user_json = user_json
            rec.effective_json = effective_json
            rec.updated = now()
            if reprocess:
                rec.salt = new_id()

        commit_set = new_id()
        spec_branch = spec_repo.branches.get("master")
        if spec_branch is None:
            spec_branch = BranchRec(repo=spec_repo, name="master")
            spec_repo.branches["master"] = spec_branch
        spec_commit = self.pfs.add_commit(spec_branch, commit_set, pfs.OriginKind.USER)
        spec_commit.files = {SPEC_FILE: FileData.from_bytes(effective_json.encode())}
        self.pfs.mark_finished(spec_commit)
        rec.spec_commit = spec_commit

        changed = [spec_branch]
        provenance: list[BranchRec] = []
        for pin, repo in input_branches:
            branch_name = pin.branch or "master"
            branch = repo.branches.get(branch_name)
            if branch is None:
                branch = BranchRec(repo=repo, name=branch_name)
                repo.branches[branch_name] = branch
                empty = self.pfs.add_commit(branch, commit_set, pfs.OriginKind.AUTO)
                self.pfs.mark_finished(empty)
                changed.append(branch)
            if branch not in provenance:
                provenance.append(branch)
        provenance.append(spec_branch)
        out_name = effective.output_branch or "master"
        out_branch = out_repo.branches.get(out_name)
        if out_branch is None:
            out_branch = BranchRec(repo=out_repo, name=out_name)
            out_repo.branches[out_name] = out_branch
        out_branch.provenance = provenance
        meta_repo = self.pfs.repos[(project, name, "meta")]
        meta_branch = meta_repo.branches.get(out_name)
        if meta_branch is None:
            meta_branch = BranchRec(repo=meta_repo, name=out_name)
            meta_repo.branches[out_name] = meta_branch
        meta_branch.provenance = list(provenance)
        rec.state = pps.PipelineState.PIPELINE_STARTING
        rec.reason = ""
        self.pfs.propagate(commit_set, changed)
        self.events.notify()
        asyncio.get_running_loop().call_soon(self._workers_up, rec, rec.version)
        self.mark_dirty()
        return effective_json

    def _workers_up(self, rec: PipelineRec, version: int) -> None:
        """STARTING -> RUNNING, or CRASHING when its workers cannot start.

        The only worker that cannot start here is one whose image the test said cannot
        be pulled (``LocalPachd.unpullable_images``): pachd's master then sets CRASHING
        with the pod's waiting message as the reason (pollPipelinePods, src/server/pps/
        server/poller.go; kubelet's ImagePullBackOff message). pachd never looks at
        ``transform.cmd`` here: a missing command fails its datums instead (worker.py).
        A CRASHING pipeline is checked again every ``crashing_backoff`` seconds, as
        pachd's master does, and turns RUNNING once its image can be pulled; its
        waiting jobs then run.
        """
        if rec.version != version or self.pipelines.get(rec.key) is not rec:
            return
        image = rec.spec.transform.image if rec.spec.transform is not None else ""
        if not self.image_pullable(image):
            new = (pps.PipelineState.PIPELINE_CRASHING, IMAGE_PULL_BACK_OFF.format(image=image))
            loop = asyncio.get_running_loop()
            loop.call_later(self.crashing_backoff(), self._workers_up, rec, version)
        else:
            new = (pps.PipelineState.PIPELINE_RUNNING, "")
        if (rec.state, rec.reason) != new:
            rec.state, rec.reason = new
            self.events.notify(rec)
            self.mark_dirty()

    def monitor_crashing(self) -> None:
        """Resume the checks of CRASHING pipelines (after loading a saved state)."""
        loop = asyncio.get_running_loop()
        for rec in self.pipelines.values():
            if rec.state == pps.PipelineState.PIPELINE_CRASHING:
                loop.call_soon(self._workers_up, rec, rec.version)

    def _kill_for_update(self, rec: PipelineRec) -> None:
        for job in list(self.jobs.values()):
            if job.pipeline is rec and not job.done:
                self.stop_job(job, KILLED_BY_UPDATE.format(user=self.user))

    def list_pipelines(
        self, pipeline: pps.Pipeline | None, projects: set[str], commit_set_id: str
    ) -> Iterator[PipelineRec]:
        if pipeline is not None and pipeline.name:
            pipelines = [self.pipeline(pipeline)]
        else:
            pipelines = sorted(self.pipelines.values(), key=lambda p: p.created, reverse=True)
        for rec in pipelines:
            if projects and rec.project not in projects:
                continue
            if commit_set_id and (rec.key, commit_set_id) not in self.jobs:
                continue
            yield rec

    def delete_pipeline(self, pipeline: pps.Pipeline | None, keep_repo: bool) -> None:
        rec = self.pipeline(pipeline)
        for (key, _), job in list(self.jobs.items()):
            if key == rec.key:
                if not job.done:
                    self.stop_job(job, "pipeline deleted")
                del self.jobs[(key, job.id)]
        del self.pipelines[rec.key]
        spec_repo = self.pfs.repos.get((rec.project, rec.name, "spec"))
        if spec_repo is not None:
            self.pfs.drop_repo(spec_repo)
        out_repo = self.pfs.repos.get((rec.project, rec.name, "user"))
        if out_repo is not None:
            if keep_repo:
                for branch in out_repo.branches.values():
                    branch.provenance = []
            else:
                self.pfs.drop_repo(out_repo)
        self.events.notify()

    # ------------------------------------------------------------------- jobs
    def job(self, job: pps.Job | None) -> JobRec:
        if job is None or job.pipeline is None:
            raise errors.unknown("job cannot be nil")
        pipeline = self.pipeline(job.pipeline)
        rec = self.jobs.get((pipeline.key, job.id))
        if rec is None:
            raise errors.job_not_found(pipeline.project, pipeline.name, job.id)
        return rec

    def meta_commit(self, job: JobRec) -> CommitRec | None:
        """The job's commit in its pipeline's meta repo (same commit set id)."""
        repo = self.pfs.repos.get((job.pipeline.project, job.pipeline.name, "meta"))
        return None if repo is None else repo.commits.get(job.id)

    def jobs_in_set(self, job_set_id: str) -> list[JobRec]:
        """Jobs of the set in provenance order: a job's output commit is in the
        output repo of its pipeline, which has the pipeline's (project, name)."""
        jobs = []
        for commit in self.pfs.ordered_commit_set(job_set_id):
            job = self.jobs.get(((commit.repo.project, commit.repo.name), job_set_id))
            if job is not None and job.output_commit is commit:
                jobs.append(job)
        return jobs

    async def wait_job(self, job: JobRec) -> None:
        await self.events.wait_for(lambda: job.done, lambda: (job,))

    def list_jobs(
        self,
        pipeline_msg: pps.Pipeline | None,
        projects: set[str],
        history: int,
        reverse: bool,
        number: int,
    ) -> Iterator[JobRec]:
        pipeline = None
        if pipeline_msg is not None and pipeline_msg.name:
            pipeline = self.pipeline(pipeline_msg)
        jobs = sorted(self.jobs.values(), key=lambda j: j.created, reverse=not reverse)
        count = 0
        for job in jobs:
            if pipeline is not None and job.pipeline is not pipeline:
                continue
            if projects and job.pipeline.project not in projects:
                continue
            if job.pipeline_version < oldest_listed_version(job.pipeline.version, history):
                continue
            yield job
            count += 1
            if number and count >= number:
                return

    async def inspect_job_set(self, set_id: str, wait: bool) -> AsyncIterator[JobRec]:
        """An unknown id is an empty job set: pachd streams nothing and ends OK."""
        for job in self.jobs_in_set(set_id):
            if wait:
                await self.events.wait_for(lambda j=job: j.done, lambda j=job: (j,))
            yield job

    def list_job_sets(self, reverse: bool, number: int) -> Iterator[tuple[str, list[JobRec]]]:
        by_set: dict[str, list[JobRec]] = {}
        for job in sorted(self.jobs.values(), key=lambda j: j.created):
            by_set.setdefault(job.id, []).append(job)
        set_ids = list(by_set)
        if not reverse:
            set_ids.reverse()
        if number:
            set_ids = set_ids[:number]
        for set_id in set_ids:
            yield set_id, self.jobs_in_set(set_id)

    def stop(self, job_msg: pps.Job | None, reason: str) -> None:
        job = self.job(job_msg)
        if not job.done:  # stopping a finished job is a no-op in pachd
            self.stop_job(job, reason or "job stopped")

    def logs(
        self, job_msg: pps.Job | None, pipeline_msg: pps.Pipeline | None, datum: str, tail: int
    ) -> list[tuple[JobRec, datetime, str, str]]:
        """(job, ts, line, datum id) of the user logs asked for, oldest job first; for a
        pipeline, those of all its jobs (pachd reads all of the pipeline's pods)."""
        if job_msg is not None and job_msg.id:
            jobs = [self.job(job_msg)]
        elif pipeline_msg is not None and pipeline_msg.name:
            pipeline = self.pipeline(pipeline_msg)
            jobs = [j for j in self.jobs.values() if j.pipeline is pipeline]
        else:
            jobs = list(self.jobs.values())
        jobs.sort(key=lambda j: j.created)
        lines = [
            (job, ts, line, datum_id)
            for job in jobs
            for ts, line, datum_id in job.logs
            if not datum or datum_id == datum
        ]
        if tail > 0:
            lines = lines[-tail:]
        return lines

    # ---------------------------------------------------------------- secrets
    def create_secret(self, file: bytes) -> None:
        try:
            manifest = json.loads(file or b"{}")
        except ValueError as exc:
            raise errors.unknown(f"failed to unmarshal secret: {exc}") from None
        name = (
            ((manifest or {}).get("metadata") or {}).get("name")
            if isinstance(manifest, dict)
            else None
        )
        if not name:
            raise errors.unknown("failed to create secret: secret name is required")
        if name in self.secrets:
            raise errors.unknown(f'failed to create secret: secrets "{name}" already exists')
        self.secrets[name] = manifest
        self.secret_created[name] = now()
        self.mark_dirty()

    def secret(self, name: str, action: str = "get") -> tuple[dict[str, Any], datetime]:
        """A secret's manifest and creation time (``action``: the verb of the not-found error)."""
        if name not in self.secrets:
            raise errors.secret_not_found(action, name)
        return self.secrets[name], self.secret_created[name]

    def delete_secret(self, name: str) -> None:
        if name not in self.secrets:
            raise errors.secret_not_found("delete", name)
        del self.secrets[name]
        self.secret_created.pop(name, None)
        self.mark_dirty()
