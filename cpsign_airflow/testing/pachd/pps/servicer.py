"""pps_v2.API: decodes each request, calls :class:`.models.PpsBackend`, encodes the reply."""

from __future__ import annotations

from collections.abc import AsyncIterator

from betterproto.lib.google.protobuf import Empty
from pachyderm_sdk.api import pps

from .. import wire
from .models import PpsBackend


class PpsService:
    service = "pps_v2.API"

    def __init__(self, backend: PpsBackend) -> None:
        self.pps = backend

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
        self.pps.create_pipeline(req)
        return Empty()

    async def create_pipeline_v2(
        self, req: pps.CreatePipelineV2Request, ctx: object
    ) -> pps.CreatePipelineV2Response:
        effective_json = self.pps.create_pipeline_v2(
            req.create_pipeline_request_json, req.update, req.reprocess, req.dry_run
        )
        return pps.CreatePipelineV2Response(effective_create_pipeline_request_json=effective_json)

    async def inspect_pipeline(
        self, req: pps.InspectPipelineRequest, ctx: object
    ) -> pps.PipelineInfo:
        return self.pps.pipeline(req.pipeline).info(details=req.details)

    async def list_pipeline(
        self, req: pps.ListPipelineRequest, ctx: object
    ) -> AsyncIterator[pps.PipelineInfo]:
        commit_set_id = req.commit_set.id if req.commit_set is not None else ""
        projects = {p.name for p in req.projects}
        for rec in self.pps.list_pipelines(req.pipeline, projects, commit_set_id):
            yield rec.info(details=True)

    async def delete_pipeline(self, req: pps.DeletePipelineRequest, ctx: object) -> Empty:
        self.pps.delete_pipeline(req.pipeline, req.keep_repo)
        return Empty()

    # ------------------------------------------------------------------- jobs
    async def inspect_job(self, req: pps.InspectJobRequest, ctx: object) -> pps.JobInfo:
        job = self.pps.job(req.job)
        if req.wait:
            await self.pps.wait_job(job)
        return wire.job_info(job, req.details)  # bytes: see wire.py

    async def list_job(self, req: pps.ListJobRequest, ctx: object) -> AsyncIterator[pps.JobInfo]:
        projects = {p.name for p in req.projects}
        for job in self.pps.list_jobs(req.pipeline, projects, req.history, req.reverse, req.number):
            yield wire.job_info(job, req.details)

    async def inspect_job_set(
        self, req: pps.InspectJobSetRequest, ctx: object
    ) -> AsyncIterator[pps.JobInfo]:
        set_id = req.job_set.id if req.job_set else ""
        async for job in self.pps.inspect_job_set(set_id, req.wait):
            yield wire.job_info(job, req.details)

    async def list_job_set(
        self, req: pps.ListJobSetRequest, ctx: object
    ) -> AsyncIterator[pps.JobSetInfo]:
        for set_id, jobs in self.pps.list_job_sets(req.reverse, req.number):
            yield pps.JobSetInfo(
                job_set=pps.JobSet(id=set_id), jobs=[j.info(details=req.details) for j in jobs]
            )

    async def stop_job(self, req: pps.StopJobRequest, ctx: object) -> Empty:
        self.pps.stop(req.job, req.reason)
        return Empty()

    async def get_logs(self, req: pps.GetLogsRequest, ctx: object) -> AsyncIterator[pps.LogMessage]:
        datum = req.datum.id if req.datum is not None else ""
        for job, ts, line, datum_id in self.pps.logs(req.job, req.pipeline, datum, req.tail):
            yield pps.LogMessage(
                project_name=job.pipeline.project,
                pipeline_name=job.pipeline.name,
                job_id=job.id,
                datum_id=datum_id,
                worker_id=f"pipeline-{job.pipeline.name}-v{job.pipeline_version}-local",
                user=True,
                ts=ts,
                message=line,
            )

    # ---------------------------------------------------------------- secrets
    async def create_secret(self, req: pps.CreateSecretRequest, ctx: object) -> Empty:
        self.pps.create_secret(req.file)
        return Empty()

    def _secret_info(self, name: str, action: str = "get") -> pps.SecretInfo:
        manifest, created = self.pps.secret(name, action)
        return pps.SecretInfo(
            secret=pps.Secret(name=name),
            type=manifest.get("type") or "Opaque",
            creation_timestamp=created,
        )

    async def inspect_secret(self, req: pps.InspectSecretRequest, ctx: object) -> pps.SecretInfo:
        return self._secret_info(req.secret.name if req.secret else "")

    async def list_secret(self, req: Empty, ctx: object) -> pps.SecretInfos:
        return pps.SecretInfos(secret_info=[self._secret_info(n) for n in sorted(self.pps.secrets)])

    async def delete_secret(self, req: pps.DeleteSecretRequest, ctx: object) -> Empty:
        self.pps.delete_secret(req.secret.name if req.secret else "")
        return Empty()
