"""The shapes the Pachyderm layer hands around: XCom values and trigger events.

Plain dicts (JSON for XCom and the triggerer), typed here so that a reader and a
type checker know their keys. The hook builds them from pachd's messages
(:func:`~cpsign_airflow.hooks.pachyderm.commit_to_dict` and friends). No postponed
annotations here: ``NotRequired`` must be seen when the classes are made.
"""

from typing import Literal, TypedDict

from typing_extensions import NotRequired


class CommitDict(TypedDict):
    """A commit (``pfs.CommitInfo``); times as ISO 8601 text."""

    project: str
    repo: str
    repo_type: str
    branch: str
    id: str
    origin: str | None
    description: str
    started: str | None
    finished: str | None
    error: str | None
    size_bytes: int


class JobDict(TypedDict):
    """A pipeline job (``pps.JobInfo``), in the shape bookkeeping records."""

    pipeline: str
    project: str
    job_id: str
    state: str
    reason: str | None
    data_processed: int
    data_skipped: int
    data_failed: int
    data_total: int
    data_recovered: int
    pipeline_version: int
    created: str | None
    started: str | None
    finished: str | None
    output_commit: str | None
    #: added by the sensor: a failed job's last log lines; every job's duration
    log_tail: NotRequired[list[str]]
    duration_seconds: NotRequired[float | None]


class PipelineStateDict(TypedDict):
    """A pipeline's health (``pps.PipelineInfo``)."""

    pipeline: str
    project: str
    version: int
    state: str
    reason: str | None


class RepoResult(TypedDict):
    """XCom of ``PachydermCreateRepoOperator``."""

    project: str
    repo: str
    created: bool


class PipelineResult(TypedDict):
    """One item of ``PachydermCreatePipelineOperator``'s XCom list."""

    pipeline: str
    project: str
    action: Literal["created", "updated", "unchanged"]
    spec_hash: str
    version: int
    spec_commit: str | None
    source: NotRequired[str]
    killed_jobs: NotRequired[list[str]]


class CommitSetFinished(TypedDict):
    """Trigger event: every commit of the set has finished."""

    status: Literal["finished"]
    commit_set_id: str
    commits: list[CommitDict]


class CommitSetWaitError(TypedDict):
    """Trigger event: the wait itself could not go on."""

    status: Literal["error"]
    commit_set_id: str
    error_type: str
    message: str


class UnhealthyPipeline(TypedDict):
    pipeline: str
    project: str
    state: str
    reason: str | None
    unhealthy_seconds: float


class PipelineUnhealthy(TypedDict):
    """Trigger event: a pipeline of the set stayed CRASHING/FAILURE past the grace period."""

    status: Literal["pipeline_unhealthy"]
    commit_set_id: str
    pipeline: str
    project: str
    state: str
    reason: str | None
    unhealthy_seconds: float
    grace_period: float
    pipelines: list[UnhealthyPipeline]


CommitSetEvent = CommitSetFinished | CommitSetWaitError | PipelineUnhealthy
