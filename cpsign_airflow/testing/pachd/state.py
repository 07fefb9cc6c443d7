"""In-memory pachd state: projects, repos, branches, commits, pipelines, jobs.

Everything here is touched only from the server's asyncio loop, so no locks are
needed. Waiting is event driven (no polling) and targeted: a waiter registers a
future under the records its predicate reads (commits, repos, jobs), and a
mutation wakes only the futures registered under the records it changed, so
with 1,000 open streams finishing one job does not wake 1,000 of them. Rare,
structural mutations (repos, branches, pipelines) and a restart wake everyone.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import grpc
from pachyderm_sdk.api import pfs, pps

from . import errors
from .errors import DEFAULT_PROJECT, PachdError, repo_str
from .filestore import FileData

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]+\Z")
# pachd's uuid.IsUUIDWithoutDashes (src/internal/uuid/uuid.go): what a branch may not be named
UUID_V4_HEX_RE = re.compile(r"^[0-9a-f]{12}4[0-9a-f]{19}\Z")
RESTARTING = "pachd is restarting; retry"

RepoKey = tuple[str, str, str]  # (project, name, type)
BranchKey = tuple[str, str, str, str]  # (project, repo name, repo type, branch)
PipelineKey = tuple[str, str]  # (project, name)


def now() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


def is_commit_id(ref: str) -> bool:
    """Whether pachd reads ``ref`` (after the ``@``) as a global commit id, not a branch name.

    ``CommitPicker.UnmarshalText`` (src/pfs/pfs.go): 32 hex digits (either case) with a
    ``4`` as the 13th, as in a UUIDv4 without dashes; anything else names a branch.
    """
    return len(ref) == 32 and ref[12] == "4" and all(ch in "0123456789abcdefABCDEF" for ch in ref)


def normalize_path(path: str) -> str:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


@dataclass
class ProjectRec:
    name: str
    description: str = ""
    created: datetime = field(default_factory=now)


@dataclass(eq=False)
class CommitRec:
    repo: RepoRec
    id: str
    branch: str | None
    origin: pfs.OriginKind = pfs.OriginKind.USER
    description: str = ""
    parent: CommitRec | None = None
    children: list[CommitRec] = field(default_factory=list)
    provenance: list[CommitRec] = field(default_factory=list)
    subvenance: list[CommitRec] = field(default_factory=list)
    files: dict[str, FileData] = field(default_factory=dict)
    started: datetime = field(default_factory=now)
    finishing: datetime | None = None
    finished: datetime | None = None
    error: str = ""

    @property
    def repo_str(self) -> str:
        return self.repo.display

    @property
    def is_finished(self) -> bool:
        return self.finished is not None

    @property
    def is_ready(self) -> bool:
        return all(p.is_finished for p in self.provenance)

    def reached(self, wanted: pfs.CommitState) -> bool:
        if wanted in (pfs.CommitState.COMMIT_STATE_UNKNOWN, pfs.CommitState.STARTED):
            return True
        if wanted == pfs.CommitState.READY:
            return self.is_ready
        if wanted == pfs.CommitState.FINISHING:
            return self.finishing is not None
        return self.is_finished

    def size(self) -> int:
        return sum(fd.size for fd in self.files.values())

    def to_proto(self) -> pfs.Commit:
        return pfs.Commit(
            repo=self.repo.to_proto(),
            id=self.id,
            branch=pfs.Branch(repo=self.repo.to_proto(), name=self.branch or ""),
        )

    def info(self) -> pfs.CommitInfo:
        size = self.size()
        info = pfs.CommitInfo(
            commit=self.to_proto(),
            origin=pfs.CommitOrigin(kind=self.origin),
            description=self.description,
            child_commits=[c.to_proto() for c in self.children],
            started=self.started,
            direct_provenance=[c.to_proto() for c in self.provenance],
            direct_subvenance=[c.to_proto() for c in self.subvenance],
            error=self.error,
            size_bytes_upper_bound=size,
            created_at=self.started,
            updated_at=self.finished or self.finishing or self.started,
        )
        if self.parent is not None:
            info.parent_commit = self.parent.to_proto()
        if self.finishing is not None:
            info.finishing = self.finishing
        if self.finished is not None:
            info.finished = self.finished
            info.details = pfs.CommitInfoDetails(size_bytes=size)
        return info


@dataclass(eq=False)
class BranchRec:
    repo: RepoRec
    name: str
    head: CommitRec | None = None
    provenance: list[BranchRec] = field(default_factory=list)
    created: datetime = field(default_factory=now)
    updated: datetime = field(default_factory=now)

    @property
    def key(self) -> BranchKey:
        return (*self.repo.key, self.name)

    def to_proto(self) -> pfs.Branch:
        return pfs.Branch(repo=self.repo.to_proto(), name=self.name)


@dataclass(eq=False)
class RepoRec:
    project: str
    name: str
    type: str = "user"
    description: str = ""
    created: datetime = field(default_factory=now)
    branches: dict[str, BranchRec] = field(default_factory=dict)
    commits: dict[str, CommitRec] = field(default_factory=dict)

    @property
    def key(self) -> RepoKey:
        return (self.project, self.name, self.type)

    @property
    def display(self) -> str:
        return repo_str(self.project, self.name, self.type)

    def to_proto(self) -> pfs.Repo:
        return pfs.Repo(name=self.name, type=self.type, project=pfs.Project(name=self.project))


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


class State:
    """All server state plus the condition that waiters block on."""

    def __init__(self) -> None:
        self.projects: dict[str, ProjectRec] = {DEFAULT_PROJECT: ProjectRec(DEFAULT_PROJECT)}
        self.repos: dict[RepoKey, RepoRec] = {}
        self.pipelines: dict[PipelineKey, PipelineRec] = {}
        self.jobs: dict[tuple[PipelineKey, str], JobRec] = {}
        self.commit_sets: dict[str, list[CommitRec]] = {}  # in creation order
        # pps secrets: name -> Kubernetes Secret manifest (as CreateSecret received it)
        self.secrets: dict[str, dict[str, Any]] = {}
        self.secret_created: dict[str, datetime] = {}
        # set by persistence: called (debounced) after mutations
        self.on_dirty: Callable[[], None] | None = None
        # every pending waiter, and the same futures keyed by the records they watch
        self._waiters: set[asyncio.Future[None]] = set()
        self._watching: dict[object, set[asyncio.Future[None]]] = {}
        self.restarting = False
        # hook: called with each new JobRec so the job runner can schedule it
        self.on_new_job: Callable[[JobRec], None] | None = None

    def mark_dirty(self) -> None:
        if self.on_dirty is not None:
            self.on_dirty()

    # ----------------------------------------------------------- notification
    def notify(self, *changed: object) -> None:
        """Wake the waiters watching any of ``changed``; with no argument, every waiter.

        Waiters re-check their predicate when woken (loop thread only).
        """
        if not changed:
            woken, self._waiters = self._waiters, set()
            self._watching.clear()
        else:
            woken = set()
            for record in changed:
                futures = self._watching.pop(record, None)
                if futures:
                    woken |= futures
        for fut in woken:
            if not fut.done():
                fut.set_result(None)

    def commit_changed(self, rec: CommitRec) -> None:
        """Wake waiters on ``rec`` (its state), its repo (SubscribeCommit) and the
        commits whose readiness depends on it (its subvenance) and their repos."""
        self.notify(rec, rec.repo, *rec.subvenance, *(c.repo for c in rec.subvenance))

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        watch: Callable[[], Iterable[object]],
        *,
        abort_on_restart: bool = True,
    ) -> None:
        """Block until ``predicate()`` holds.

        ``watch()`` names the records whose changes can make it true (evaluated
        at each wait, so it may follow the records' current links); a notify of
        any of them, or a notify of everything, re-checks the predicate. A
        restart aborts the wait with UNAVAILABLE when ``abort_on_restart`` (RPC
        streams); job tasks pass False and keep waiting through a restart.
        """
        loop = asyncio.get_running_loop()
        while True:
            if abort_on_restart and self.restarting:
                raise PachdError(grpc.StatusCode.UNAVAILABLE, RESTARTING)
            if predicate():
                return
            fut: asyncio.Future[None] = loop.create_future()
            records = list(watch())
            self._waiters.add(fut)
            for record in records:
                self._watching.setdefault(record, set()).add(fut)
            try:
                await fut
            finally:
                self._waiters.discard(fut)
                for record in records:
                    futures = self._watching.get(record)
                    if futures is not None:
                        futures.discard(fut)
                        if not futures:
                            del self._watching[record]

    # --------------------------------------------------------------- projects
    def project(self, name: str) -> ProjectRec:
        name = name or DEFAULT_PROJECT
        rec = self.projects.get(name)
        if rec is None:
            raise errors.project_not_found(name)
        return rec

    # ------------------------------------------------------------------ repos
    def repo(self, repo: pfs.Repo | None) -> RepoRec:
        if repo is None or not repo.name:
            raise errors.unknown("repo name cannot be empty")
        project = (repo.project.name if repo.project else "") or DEFAULT_PROJECT
        repo_type = repo.type or "user"
        rec = self.repos.get((project, repo.name, repo_type))
        if rec is None:
            if project not in self.projects:
                raise errors.project_not_found(project)
            raise errors.repo_not_found(project, repo.name, repo_type)
        return rec

    def create_repo(
        self, project: str, name: str, repo_type: str = "user", description: str = ""
    ) -> RepoRec:
        rec = RepoRec(project=project, name=name, type=repo_type, description=description)
        self.repos[rec.key] = rec
        return rec

    # --------------------------------------------------------------- branches
    def branch(self, branch: pfs.Branch) -> BranchRec:
        repo = self.repo(branch.repo)
        rec = repo.branches.get(branch.name)
        if rec is None:
            raise errors.branch_not_found(branch.name, repo.display)
        return rec

    def subvenant_branches(self, roots: list[BranchRec]) -> list[BranchRec]:
        """Branches downstream of ``roots`` (transitively), in dependency order."""
        all_branches = [b for r in self.repos.values() for b in r.branches.values()]
        affected: set[int] = {id(b) for b in roots}
        ordered: list[BranchRec] = []
        progress = True
        while progress:
            progress = False
            for b in all_branches:
                if id(b) in affected:
                    continue
                if any(id(p) in affected for p in b.provenance):
                    # only emit once all affected provenance is already emitted
                    pending = [
                        p
                        for p in b.provenance
                        if id(p) in affected and p not in roots and p not in ordered
                    ]
                    if pending:
                        continue
                    affected.add(id(b))
                    ordered.append(b)
                    progress = True
        return ordered

    # ---------------------------------------------------------------- commits
    def resolve_commit(self, commit: pfs.Commit | None) -> CommitRec:
        if commit is None:
            raise errors.unknown("commit cannot be nil")
        repo_msg = commit.repo if commit.repo and commit.repo.name else None
        if repo_msg is None and commit.branch and commit.branch.repo:
            repo_msg = commit.branch.repo
        repo = self.repo(repo_msg)
        branch_name = commit.branch.name if commit.branch else ""
        # pachd (pickCommitTx, server_commit.go) prints the handle as repo@ID, or
        # repo@BRANCH without an ID (pfs.Commit.String), and parses that text back
        # (CommitPicker.UnmarshalText, src/pfs/pfs.go): a commit-shaped ref is a commit
        # id, whichever field it came in, and any other ref is a branch name.
        ref = commit.id or branch_name
        if is_commit_id(ref):
            rec = repo.commits.get(ref.lower())
            if rec is None and commit.id:  # a set id: its provenance may hold repo's commit
                rec = self.commit_set_alias(repo, ref.lower())
            if rec is not None:
                return rec
            raise errors.commit_not_found(repo.display, ref)
        if commit.id:
            alias = repo.branches.get(commit.id)
            if alias is not None and alias.head is not None:
                return alias.head
            raise errors.commit_not_found(repo.display, commit.id)
        if not branch_name:
            raise errors.unknown("commit must have an ID or a branch")
        branch = repo.branches.get(branch_name)
        if branch is None:
            raise errors.branch_not_found(branch_name, repo.display)
        if branch.head is None:
            raise errors.commit_not_found(repo.display, branch_name)
        return branch.head

    def add_commit(
        self,
        branch: BranchRec,
        commit_id: str,
        origin: pfs.OriginKind,
        description: str = "",
        parent: CommitRec | None = None,
        inherit_files: bool = True,
    ) -> CommitRec:
        parent = parent if parent is not None else branch.head
        rec = CommitRec(
            repo=branch.repo,
            id=commit_id,
            branch=branch.name,
            origin=origin,
            description=description,
            parent=parent,
        )
        if parent is not None:
            parent.children.append(rec)
            if inherit_files:
                rec.files = dict(parent.files)
        branch.repo.commits[commit_id] = rec
        branch.head = rec
        branch.updated = now()
        self.commit_sets.setdefault(commit_id, []).append(rec)
        self.notify(branch.repo)
        return rec

    def propagate(self, commit_set_id: str, changed: list[BranchRec]) -> list[CommitRec]:
        """Open output commits (and jobs) in ``commit_set_id`` downstream of ``changed``."""
        created: list[CommitRec] = []
        for branch in self.subvenant_branches(changed):
            if branch.head is not None and branch.head.id == commit_set_id:
                continue
            rec = self.add_commit(branch, commit_set_id, pfs.OriginKind.AUTO, inherit_files=False)
            for prov in branch.provenance:
                if prov.head is not None:
                    rec.provenance.append(prov.head)
                    prov.head.subvenance.append(rec)
            created.append(rec)
            pipeline = self.pipeline_for_output(branch)
            if pipeline is not None:
                job = JobRec(
                    pipeline=pipeline,
                    id=commit_set_id,
                    pipeline_version=pipeline.version,
                    output_commit=rec,
                    spec=pipeline.spec,
                    salt=pipeline.salt,
                )
                self.jobs[(pipeline.key, commit_set_id)] = job
                if self.on_new_job is not None:
                    self.on_new_job(job)
        return created

    def finish_commit(self, rec: CommitRec, error: str = "", description: str = "") -> None:
        ts = now()
        if rec.finishing is None:
            rec.finishing = ts
        rec.finished = ts
        if error:
            rec.error = error
        if description:
            rec.description = description
        for fd in rec.files.values():
            if fd.owner is rec:
                fd.owner = None
        self.commit_changed(rec)

    def finishing_commit(self, rec: CommitRec) -> None:
        """Mark ``rec`` FINISHING (its job is writing its output)."""
        if rec.finishing is None:
            rec.finishing = now()
        self.commit_changed(rec)

    def ordered_commit_set(self, commit_set_id: str) -> list[CommitRec]:
        """The commits of a set in provenance (topological) order."""
        commits = list(self.commit_sets.get(commit_set_id, []))
        members = {id(c) for c in commits}
        result: list[CommitRec] = []
        placed: set[int] = set()
        while commits:
            for c in commits:
                deps = [p for p in c.provenance if id(p) in members and id(p) not in placed]
                if not deps:
                    result.append(c)
                    placed.add(id(c))
                    commits.remove(c)
                    break
            else:  # cycle (cannot happen); keep creation order
                result.extend(commits)
                break
        return result

    def commit_set_provenance(self, commit_set_id: str) -> list[CommitRec]:
        """Commits of other sets in the (transitive) provenance of the set's commits.

        pachd's ``pfsdb.CommitSetProvenance`` (src/internal/pfsdb/commit_provenance.go):
        e.g. the pipelines' spec commits, and an input's head from an earlier set.
        """
        found: list[CommitRec] = []
        seen: set[int] = set()
        stack = [p for c in self.commit_sets.get(commit_set_id, []) for p in c.provenance]
        while stack:
            commit = stack.pop()
            if id(commit) in seen:
                continue
            seen.add(id(commit))
            if commit.id != commit_set_id:
                found.append(commit)
            stack.extend(commit.provenance)
        return sorted(found, key=lambda c: c.started)

    def commit_set_alias(self, repo: RepoRec, commit_set_id: str) -> CommitRec | None:
        """``repo``'s commit in the provenance of set ``commit_set_id`` (pachd's
        ``ResolveCommitProvenance``: a commit picked by a set id its repo has no commit in)."""
        for commit in self.commit_set_provenance(commit_set_id):
            if commit.repo is repo:
                return commit
        return None

    def inspect_commit_set(self, commit_set_id: str) -> list[CommitRec]:
        """What InspectCommitSet lists: the set's provenance from other sets, then its own
        commits, topologically sorted (``inspectCommitSetImmediateTx`` and
        ``TopologicalSort``, src/server/pfs/server/server_commit_set.go)."""
        own = self.ordered_commit_set(commit_set_id)
        if not own:
            return []
        commits = [*self.commit_set_provenance(commit_set_id), *own]
        members = {id(c) for c in commits}
        result: list[CommitRec] = []
        visited: set[int] = set()

        def visit(commit: CommitRec) -> None:
            if id(commit) in visited:
                return
            for prov in commit.provenance:
                if id(prov) in members and id(prov) not in visited:
                    visit(prov)
            result.append(commit)
            visited.add(id(commit))

        for commit in commits:
            visit(commit)
        return result

    # -------------------------------------------------------------- pipelines
    def pipeline(self, pipeline: pps.Pipeline | None) -> PipelineRec:
        if pipeline is None or not pipeline.name:
            raise errors.unknown("invalid pipeline spec: request.Pipeline.Name cannot be empty")
        project = (pipeline.project.name if pipeline.project else "") or DEFAULT_PROJECT
        rec = self.pipelines.get((project, pipeline.name))
        if rec is None:
            raise errors.pipeline_not_found(pipeline.name)
        return rec

    def pipeline_for_output(self, branch: BranchRec) -> PipelineRec | None:
        repo = branch.repo
        if repo.type != "user":
            return None
        rec = self.pipelines.get((repo.project, repo.name))
        if rec is None or (rec.spec.output_branch or "master") != branch.name:
            return None
        return rec

    def job(self, job: pps.Job | None) -> JobRec:
        if job is None or job.pipeline is None:
            raise errors.unknown("job cannot be nil")
        pipeline = self.pipeline(job.pipeline)
        rec = self.jobs.get((pipeline.key, job.id))
        if rec is None:
            raise errors.job_not_found(pipeline.project, pipeline.name, job.id)
        return rec

    def jobs_in_set(self, job_set_id: str) -> list[JobRec]:
        """Jobs of the set in provenance order: a job's output commit is in the
        output repo of its pipeline, which has the pipeline's (project, name)."""
        jobs = []
        for commit in self.ordered_commit_set(job_set_id):
            job = self.jobs.get(((commit.repo.project, commit.repo.name), job_set_id))
            if job is not None and job.output_commit is commit:
                jobs.append(job)
        return jobs

    # ------------------------------------------------------------ job helpers
    def meta_commit(self, job: JobRec) -> CommitRec | None:
        """The job's commit in its pipeline's meta repo (same commit set id)."""
        repo = self.repos.get((job.pipeline.project, job.pipeline.name, "meta"))
        return None if repo is None else repo.commits.get(job.id)

    def parent_datums(self, job: JobRec) -> dict[str, dict[str, FileData]]:
        """Datum hash -> outputs, from the meta commit of the last successful parent job.

        pachd reads the parent output commit's meta commit; a failed parent is passed
        over, so ``until_success`` reprocesses what did not succeed.
        """
        meta_repo = self.repos.get((job.pipeline.project, job.pipeline.name, "meta"))
        parent = job.output_commit.parent
        while parent is not None and meta_repo is not None:
            meta = meta_repo.commits.get(parent.id)
            if meta is not None and meta.is_finished and not meta.error and not parent.error:
                return datums_from_meta(meta)
            parent = parent.parent
        return {}

    def worker_env(self, job: JobRec) -> dict[str, str]:
        """The machine's environment (the image's), the spec's env and pachd's job variables."""
        import os

        spec = job.spec
        env = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
        env.update(
            {
                "PACH_IN_WORKER": "true",
                "PPS_PIPELINE_NAME": job.pipeline.name,
                "PPS_PROJECT_NAME": job.pipeline.project,
                "PPS_SPEC_COMMIT": job.pipeline.spec_commit.id if job.pipeline.spec_commit else "",
            }
        )
        if spec is not None and spec.transform is not None:
            env.update(spec.transform.env)
        env.update({"PACH_JOB_ID": job.id, "PACH_OUTPUT_COMMIT_ID": job.output_commit.id})
        return env

    def secret_material(
        self, job: JobRec
    ) -> tuple[dict[str, str], list[tuple[str, dict[str, bytes]]]]:
        """``env_var`` values and ``mount_path`` file sets of the job's secrets."""
        env: dict[str, str] = {}
        files: list[tuple[str, dict[str, bytes]]] = []
        transform = job.spec.transform if job.spec else None
        for mount in transform.secrets if transform is not None else []:
            data = secret_data(self.secrets.get(mount.name, {}))
            if mount.env_var:
                env[mount.env_var] = data.get(mount.key, b"").decode(errors="replace")
            if mount.mount_path:
                files.append((mount.mount_path, data))
        return env, files


def secret_data(manifest: dict[str, Any]) -> dict[str, bytes]:
    """A Secret manifest's keys: ``data`` (base64) overlaid with ``stringData``."""
    import base64

    out = {k: base64.b64decode(v) for k, v in (manifest.get("data") or {}).items()}
    out.update({k: str(v).encode() for k, v in (manifest.get("stringData") or {}).items()})
    return out


def datums_from_meta(meta: CommitRec) -> dict[str, dict[str, FileData]]:
    """Datum hash -> output files, read back from a meta commit's ``/meta`` and ``/pfs``."""
    import json

    result: dict[str, dict[str, FileData]] = {}
    for path, fd in meta.files.items():
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "meta" and parts[3] == "meta":
            datum_id = parts[2]
            record = json.loads(fd.read())
            prefix = f"/pfs/{datum_id}/out/"
            result[record["hash"]] = {
                p[len(prefix) - 1 :]: f for p, f in meta.files.items() if p.startswith(prefix)
            }
    return result


def validate_name(kind: str, name: str) -> None:
    if not NAME_RE.match(name or ""):
        raise errors.invalid_name(kind, name)
