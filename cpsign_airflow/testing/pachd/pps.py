"""pps_v2.API: pipelines, jobs, job sets and logs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from betterproto.lib.google.protobuf import Empty
from pachyderm_sdk.api import pfs, pps

from . import errors, specs, wire
from .auth import AuthConfig
from .datums import pfs_inputs
from .errors import DEFAULT_PROJECT, PachdError
from .filestore import FileData
from .jobs import JobRunner
from .state import BranchRec, JobRec, PipelineRec, State, new_id, now

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


class PpsService:
    service = "pps_v2.API"

    def __init__(
        self,
        state: State,
        runner: JobRunner,
        auth: AuthConfig | None = None,
        crashing_backoff: Callable[[], float] = lambda: CRASHING_BACKOFF,
        image_pullable: Callable[[str], bool] = lambda image: True,
    ) -> None:
        self.state = state
        self.runner = runner
        self.auth = auth
        self.crashing_backoff = crashing_backoff
        self.image_pullable = image_pullable

    @property
    def user(self) -> str:
        """Who pachd names in kill reasons: the root user with auth on, else unknown."""
        return "pach:root" if self.auth is not None and self.auth.token else "unknown_username"

    def methods(self) -> dict:
        uu, us = "unary_unary", "unary_stream"
        return {
            "CreatePipeline": (uu, pps.CreatePipelineRequest, self.create_pipeline),
            "CreatePipelineV2": (uu, pps.CreatePipelineV2Request, self.create_pipeline_v2),
            "InspectPipeline": (uu, pps.InspectPipelineRequest, self.inspect_pipeline),
            "ListPipeline": (us, pps.ListPipelineRequest, self.list_pipeline),
            "DeletePipeline": (uu, pps.DeletePipelineRequest, self.delete_pipeline),
            "InspectJob": (uu, pps.InspectJobRequest, self.inspect_job),
            "ListJob": (us, pps.ListJobRequest, self.list_job),
            "InspectJobSet": (us, pps.InspectJobSetRequest, self.inspect_job_set),
            "ListJobSet": (us, pps.ListJobSetRequest, self.list_job_set),
            "StopJob": (uu, pps.StopJobRequest, self.stop_job),
            "GetLogs": (us, pps.GetLogsRequest, self.get_logs),
            "CreateSecret": (uu, pps.CreateSecretRequest, self.create_secret),
            "InspectSecret": (uu, pps.InspectSecretRequest, self.inspect_secret),
            "ListSecret": (uu, Empty, self.list_secret),
            "DeleteSecret": (uu, pps.DeleteSecretRequest, self.delete_secret),
        }

    # -------------------------------------------------------------- pipelines
    async def create_pipeline(self, req: pps.CreatePipelineRequest, ctx: object) -> Empty:
        user = specs.request_to_dict(req)
        self._create(req, user, json.dumps(user), req.update, req.reprocess, req.dry_run, None)
        return Empty()

    async def create_pipeline_v2(
        self, req: pps.CreatePipelineV2Request, ctx: object
    ) -> pps.CreatePipelineV2Response:
        try:
            request, raw = specs.parse_json(req.create_pipeline_request_json)
        except PachdError as exc:
            raise PachdError(
                grpc.StatusCode.INVALID_ARGUMENT, f"could not make effective spec: {exc.message}"
            ) from None
        effective_json = self._create(
            request,
            raw,
            req.create_pipeline_request_json,
            req.update or bool(raw.get("update")),
            req.reprocess or bool(raw.get("reprocess")),
            req.dry_run,
            raw,
        )
        return pps.CreatePipelineV2Response(effective_create_pipeline_request_json=effective_json)

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
        self.state.project(project)
        input_branches: list[tuple[pps.PfsInput, Any]] = []
        for pin in pfs_inputs(request.input):
            repo = self.state.repo(
                pfs.Repo(
                    name=pin.repo,
                    type=pin.repo_type or "user",
                    project=pfs.Project(name=pin.project or project),
                )
            )
            input_branches.append((pin, repo))
        effective, effective_json = specs.effective(user)
        specs.check_secrets(effective, self.state.secrets)
        existing = self.state.pipelines.get((project, name))
        if existing is not None and not update:
            raise errors.pipeline_exists(project, name)
        if existing is None and (project, name, "user") in self.state.repos:
            raise errors.repo_name_taken(name)
        if dry_run:
            return effective_json

        if existing is None:
            out_repo = self.state.create_repo(project, name, "user")
            spec_repo = self.state.create_repo(project, name, "spec")
            self.state.create_repo(project, name, "meta")
            rec = PipelineRec(
                project=project,
                name=name,
                spec=effective,
                user_json=user_json,
                effective_json=effective_json,
                salt=request.salt or new_id(),
            )
            self.state.pipelines[rec.key] = rec
        else:
            rec = existing
            out_repo = self.state.repos[(project, name, "user")]
            spec_repo = self.state.repos[(project, name, "spec")]
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
        spec_commit = self.state.add_commit(spec_branch, commit_set, pfs.OriginKind.USER)
        spec_commit.files = {SPEC_FILE: FileData.from_bytes(effective_json.encode())}
        self.state.finish_commit(spec_commit)
        rec.spec_commit = spec_commit

        changed = [spec_branch]
        provenance: list[BranchRec] = []
        for pin, repo in input_branches:
            branch_name = pin.branch or "master"
            branch = repo.branches.get(branch_name)
            if branch is None:
                branch = BranchRec(repo=repo, name=branch_name)
                repo.branches[branch_name] = branch
                empty = self.state.add_commit(branch, commit_set, pfs.OriginKind.AUTO)
                self.state.finish_commit(empty)
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
        meta_repo = self.state.repos[(project, name, "meta")]
        meta_branch = meta_repo.branches.get(out_name)
        if meta_branch is None:
            meta_branch = BranchRec(repo=meta_repo, name=out_name)
            meta_repo.branches[out_name] = meta_branch
        meta_branch.provenance = list(provenance)
        rec.state = pps.PipelineState.PIPELINE_STARTING
        rec.reason = ""
        self.state.propagate(commit_set, changed)
        self.state.notify()
        asyncio.get_running_loop().call_soon(self._workers_up, rec, rec.version)
        self.state.mark_dirty()
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
        if rec.version != version or self.state.pipelines.get(rec.key) is not rec:
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
            self.state.notify(rec)
            self.state.mark_dirty()

    def monitor_crashing(self) -> None:
        """Resume the checks of CRASHING pipelines (after loading a saved state)."""
        loop = asyncio.get_running_loop()
        for rec in self.state.pipelines.values():
            if rec.state == pps.PipelineState.PIPELINE_CRASHING:
                loop.call_soon(self._workers_up, rec, rec.version)

    def _kill_for_update(self, rec: PipelineRec) -> None:
        for job in list(self.state.jobs.values()):
            if job.pipeline is rec and not job.done:
                self.runner.stop(job, KILLED_BY_UPDATE.format(user=self.user))

    async def inspect_pipeline(
        self, req: pps.InspectPipelineRequest, ctx: object
    ) -> pps.PipelineInfo:
        return self.state.pipeline(req.pipeline).info(details=req.details)

    async def list_pipeline(
        self, req: pps.ListPipelineRequest, ctx: object
    ) -> AsyncIterator[pps.PipelineInfo]:
        projects = {p.name for p in req.projects}
        if req.pipeline is not None and req.pipeline.name:
            pipelines = [self.state.pipeline(req.pipeline)]
        else:
            pipelines = sorted(self.state.pipelines.values(), key=lambda p: p.created, reverse=True)
        for rec in pipelines:
            if projects and rec.project not in projects:
                continue
            if req.commit_set is not None and req.commit_set.id:
                if (rec.key, req.commit_set.id) not in self.state.jobs:
                    continue
            yield rec.info(details=True)

    async def delete_pipeline(self, req: pps.DeletePipelineRequest, ctx: object) -> Empty:
        rec = self.state.pipeline(req.pipeline)
        for (key, _), job in list(self.state.jobs.items()):
            if key == rec.key:
                if not job.done:
                    self.runner.stop(job, "pipeline deleted")
                del self.state.jobs[(key, job.id)]
        del self.state.pipelines[rec.key]
        from .pfs import PfsService

        pfs_api = PfsService(self.state)
        spec_repo = self.state.repos.get((rec.project, rec.name, "spec"))
        if spec_repo is not None:
            pfs_api._drop_repo(spec_repo)
        out_repo = self.state.repos.get((rec.project, rec.name, "user"))
        if out_repo is not None:
            if req.keep_repo:
                for branch in out_repo.branches.values():
                    branch.provenance = []
            else:
                pfs_api._drop_repo(out_repo)
        self.state.notify()
        return Empty()

    # ------------------------------------------------------------------- jobs
    async def inspect_job(self, req: pps.InspectJobRequest, ctx: object) -> pps.JobInfo:
        job = self.state.job(req.job)
        if req.wait:
            await self.state.wait_for(lambda: job.done, lambda: (job,))
        return wire.job_info(job, req.details)  # bytes: see wire.py

    async def list_job(self, req: pps.ListJobRequest, ctx: object) -> AsyncIterator[pps.JobInfo]:
        pipeline = None
        if req.pipeline is not None and req.pipeline.name:
            pipeline = self.state.pipeline(req.pipeline)
        projects = {p.name for p in req.projects}
        jobs = sorted(self.state.jobs.values(), key=lambda j: j.created, reverse=not req.reverse)
        count = 0
        for job in jobs:
            if pipeline is not None and job.pipeline is not pipeline:
                continue
            if projects and job.pipeline.project not in projects:
                continue
            if job.pipeline_version < oldest_listed_version(job.pipeline.version, req.history):
                continue
            yield wire.job_info(job, req.details)
            count += 1
            if req.number and count >= req.number:
                return

    async def inspect_job_set(
        self, req: pps.InspectJobSetRequest, ctx: object
    ) -> AsyncIterator[pps.JobInfo]:
        # An unknown id is an empty job set: pachd streams nothing and ends OK.
        set_id = req.job_set.id if req.job_set else ""
        for job in self.state.jobs_in_set(set_id):
            if req.wait:
                await self.state.wait_for(lambda j=job: j.done, lambda j=job: (j,))
            yield wire.job_info(job, req.details)

    async def list_job_set(
        self, req: pps.ListJobSetRequest, ctx: object
    ) -> AsyncIterator[pps.JobSetInfo]:
        by_set: dict[str, list[JobRec]] = {}
        for job in sorted(self.state.jobs.values(), key=lambda j: j.created):
            by_set.setdefault(job.id, []).append(job)
        set_ids = list(by_set)
        if not req.reverse:
            set_ids.reverse()
        if req.number:
            set_ids = set_ids[: req.number]
        for set_id in set_ids:
            jobs = self.state.jobs_in_set(set_id)
            yield pps.JobSetInfo(
                job_set=pps.JobSet(id=set_id), jobs=[j.info(details=req.details) for j in jobs]
            )

    async def stop_job(self, req: pps.StopJobRequest, ctx: object) -> Empty:
        job = self.state.job(req.job)
        if not job.done:  # stopping a finished job is a no-op in pachd
            self.runner.stop(job, req.reason or "job stopped")
        return Empty()

    async def get_logs(self, req: pps.GetLogsRequest, ctx: object) -> AsyncIterator[pps.LogMessage]:
        if req.job is not None and req.job.id:
            jobs = [self.state.job(req.job)]
        elif req.pipeline is not None and req.pipeline.name:
            pipeline = self.state.pipeline(req.pipeline)
            jobs = [j for j in self.state.jobs.values() if j.pipeline is pipeline]
        else:
            jobs = list(self.state.jobs.values())
        jobs.sort(key=lambda j: j.created)
        datum = req.datum.id if req.datum is not None else ""
        messages = [
            pps.LogMessage(
                project_name=job.pipeline.project,
                pipeline_name=job.pipeline.name,
                job_id=job.id,
                datum_id=datum_id,
                worker_id=f"pipeline-{job.pipeline.name}-v{job.pipeline_version}-local",
                user=True,
                ts=ts,
                message=line,
            )
            for job in jobs
            for ts, line, datum_id in job.logs
            if not datum or datum_id == datum
        ]
        if req.tail > 0:
            messages = messages[-req.tail :]
        for message in messages:
            yield message

    # ---------------------------------------------------------------- secrets
    async def create_secret(self, req: pps.CreateSecretRequest, ctx: object) -> Empty:
        try:
            manifest = json.loads(req.file or b"{}")
        except ValueError as exc:
            raise errors.unknown(f"failed to unmarshal secret: {exc}") from None
        name = (
            ((manifest or {}).get("metadata") or {}).get("name")
            if isinstance(manifest, dict)
            else None
        )
        if not name:
            raise errors.unknown("failed to create secret: secret name is required")
        if name in self.state.secrets:
            raise errors.unknown(f'failed to create secret: secrets "{name}" already exists')
        self.state.secrets[name] = manifest
        self.state.secret_created[name] = now()
        self.state.mark_dirty()
        return Empty()

    def _secret_info(self, name: str) -> pps.SecretInfo:
        manifest = self.state.secrets[name]
        return pps.SecretInfo(
            secret=pps.Secret(name=name),
            type=manifest.get("type") or "Opaque",
            creation_timestamp=self.state.secret_created[name],
        )

    async def inspect_secret(self, req: pps.InspectSecretRequest, ctx: object) -> pps.SecretInfo:
        name = req.secret.name if req.secret else ""
        if name not in self.state.secrets:
            raise errors.secret_not_found("get", name)
        return self._secret_info(name)

    async def list_secret(self, req: Empty, ctx: object) -> pps.SecretInfos:
        return pps.SecretInfos(
            secret_info=[self._secret_info(n) for n in sorted(self.state.secrets)]
        )

    async def delete_secret(self, req: pps.DeleteSecretRequest, ctx: object) -> Empty:
        name = req.secret.name if req.secret else ""
        if name not in self.state.secrets:
            raise errors.secret_not_found("delete", name)
        del self.state.secrets[name]
        self.state.secret_created.pop(name, None)
        self.state.mark_dirty()
        return Empty()
