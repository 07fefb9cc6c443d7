"""PPS's records: pipelines and jobs (the rows pachd keeps in ppsdb).

A job links to its pipeline and its output commit (a PFS record); :mod:`.models`
holds them and applies pachd's rules, :mod:`..jobs` runs them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from pachyderm_sdk.api import pfs, pps

from ..pfs.records import CommitRec, now

PipelineKey = tuple[str, str]  # (project, name)


@dataclass(eq=False)
class JobRec:
    pipeline: PipelineRec
    id: str
    pipeline_version: int
    output_commit: CommitRec
    state: pps.JobState = pps.JobState.JOB_CREATED
    states: list[pps.JobState] = field(default_factory=lambda: [pps.JobState.JOB_CREATED])
    reason: str = ""
    created: datetime = field(default_factory=now)
    started: datetime | None = None
    finished: datetime | None = None
    data_total: int = 0
    data_processed: int = 0
    data_skipped: int = 0
    data_failed: int = 0
    logs: list[tuple[datetime, str, str]] = field(default_factory=list)  # (ts, line, datum id)
    spec: pps.CreatePipelineRequest | None = None
    salt: str = ""
    task: asyncio.Task | None = None

    TERMINAL = frozenset(
        {
            pps.JobState.JOB_SUCCESS,
            pps.JobState.JOB_FAILURE,
            pps.JobState.JOB_KILLED,
            pps.JobState.JOB_UNRUNNABLE,
        }
    )

    @property
    def done(self) -> bool:
        return self.state in self.TERMINAL

    def info(self, details: bool = False) -> pps.JobInfo:
        info = pps.JobInfo(
            job=pps.Job(pipeline=self.pipeline.to_proto(), id=self.id),
            pipeline_version=self.pipeline_version,
            output_commit=self.output_commit.to_proto(),
            data_processed=self.data_processed,
            data_skipped=self.data_skipped,
            data_total=self.data_total,
            data_failed=self.data_failed,
            stats=pps.ProcessStats(),
            state=self.state,
            reason=self.reason,
            created=self.created,
        )
        if self.started is not None:
            info.started = self.started
        if self.finished is not None:
            info.finished = self.finished
        if details and self.spec is not None:
            spec = self.spec
            info.details = pps.JobInfoDetails(
                transform=spec.transform,
                parallelism_spec=spec.parallelism_spec,
                resource_requests=spec.resource_requests,
                resource_limits=spec.resource_limits,
                sidecar_resource_limits=spec.sidecar_resource_limits,
                sidecar_resource_requests=spec.sidecar_resource_requests,
                input=spec.input,
                salt=self.salt,
                datum_set_spec=spec.datum_set_spec,
                datum_tries=spec.datum_tries,
                scheduling_spec=spec.scheduling_spec,
                pod_spec=spec.pod_spec,
                pod_patch=spec.pod_patch,
            )
        return info


@dataclass(eq=False)
class PipelineRec:
    project: str
    name: str
    spec: pps.CreatePipelineRequest
    user_json: str
    effective_json: str
    salt: str
    version: int = 1
    spec_commit: CommitRec | None = None
    created: datetime = field(default_factory=now)
    updated: datetime = field(default_factory=now)
    last_job_state: pps.JobState = pps.JobState.JOB_STATE_UNKNOWN
    state: pps.PipelineState = pps.PipelineState.PIPELINE_STARTING
    reason: str = ""

    @property
    def key(self) -> PipelineKey:
        return (self.project, self.name)

    def to_proto(self) -> pps.Pipeline:
        return pps.Pipeline(project=pfs.Project(name=self.project), name=self.name)

    def info(self, details: bool) -> pps.PipelineInfo:
        spec = self.spec
        info = pps.PipelineInfo(
            pipeline=self.to_proto(),
            version=self.version,
            stopped=False,
            state=self.state,
            reason=self.reason,
            last_job_state=self.last_job_state,
            parallelism=1,
            type=pps.PipelineInfoPipelineType.PIPELINE_TYPE_TRANSFORM,
            user_spec_json=self.user_json,
            effective_spec_json=self.effective_json,
        )
        if self.spec_commit is not None:
            info.spec_commit = self.spec_commit.to_proto()
        if details:
            info.details = pps.PipelineInfoDetails(
                transform=spec.transform,
                parallelism_spec=spec.parallelism_spec,
                egress=spec.egress,
                created_at=self.created,
                updated_at=self.updated,
                workers_requested=1,
                workers_available=1,
                output_branch=spec.output_branch or "master",
                resource_requests=spec.resource_requests,
                resource_limits=spec.resource_limits,
                sidecar_resource_limits=spec.sidecar_resource_limits,
                sidecar_resource_requests=spec.sidecar_resource_requests,
                input=spec.input,
                description=spec.description,
                salt=self.salt,
                datum_set_spec=spec.datum_set_spec,
                datum_timeout=spec.datum_timeout,
                job_timeout=spec.job_timeout,
                datum_tries=spec.datum_tries,
                scheduling_spec=spec.scheduling_spec,
                pod_spec=spec.pod_spec,
                pod_patch=spec.pod_patch,
                s3_out=spec.s3_out,
                metadata=spec.metadata,
                reprocess_spec=spec.reprocess_spec,
                autoscaling=spec.autoscaling,
                tolerations=spec.tolerations,
                maximum_expected_uptime=spec.maximum_expected_uptime,
            )
        return info
