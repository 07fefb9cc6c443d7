"""Job execution: configurable per-pipeline behaviour, state machine, datums.

Each job is one asyncio task: CREATED -> STARTING -> (wait for the input commits
of its commit set) -> RUNNING -> (handler / configured duration) -> FINISHING ->
SUCCESS, or FAILURE / KILLED / UNRUNNABLE.  Timing is event driven: the only
sleep is the configured ``duration``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pachyderm_sdk.api import pps

from .filestore import FileData
from .state import CommitRec, JobRec, State, normalize_path, now

JS = pps.JobState


class PipelineFailure(Exception):
    """Raise from a handler to fail the job; the message becomes ``JobInfo.reason``."""


@dataclass
class PipelineBehaviour:
    """How jobs of one pipeline behave."""

    duration: float = 0.05
    fail: bool = False
    reason: str = ""
    logs: list[str] = field(default_factory=list)
    outputs: dict[str, bytes] | None = None
    datums: int | None = None
    handler: Callable[[JobContext], Any] | None = None


class _InputFiles(Mapping[str, bytes]):
    """Lazy ``{"/pfs/<input name>/<path>": bytes}`` view over the input commits."""

    def __init__(self, files: dict[str, FileData]) -> None:
        self._files = files

    def __getitem__(self, key: str) -> bytes:
        return self._files[key].read()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._files))

    def __len__(self) -> int:
        return len(self._files)


class JobContext:
    """What a pipeline handler sees: its inputs, and a way to write outputs."""

    def __init__(
        self, pipeline: str, project: str, job_id: str, inputs: dict[str, FileData]
    ) -> None:
        self.pipeline = pipeline
        self.project = project
        self.job_id = job_id
        self.inputs: Mapping[str, bytes] = _InputFiles(inputs)
        self.outputs: dict[str, bytes] = {}
        self.logs: list[str] = []

    def write(self, path: str, data: bytes | str) -> None:
        """Write ``data`` to ``path`` in the job's output commit."""
        self.outputs[path] = data.encode() if isinstance(data, str) else bytes(data)

    def log(self, message: str) -> None:
        """Add a user log line (returned by GetLogs)."""
        self.logs.append(message)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(ch) if ch not in "[]" else ch)
        i += 1
    return re.compile("^" + "".join(out) + "$")


def glob_paths(files: dict[str, FileData], pattern: str) -> list[str]:
    """Paths (files and implied directories) matched by a PFS glob pattern."""
    pattern = "/" + pattern.strip("/") if pattern.strip("/") else "/"
    if pattern == "/":
        return ["/"]
    candidates: set[str] = set()
    for path in files:
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            candidates.add("/" + "/".join(parts[:depth]))
    regex = _glob_regex(pattern)
    return sorted(p for p in candidates if regex.match(p) or fnmatch.fnmatchcase(p, pattern))


def count_datums(input_spec: pps.Input | None, commits: dict[str, CommitRec]) -> int:
    """Datums of an input: top-level glob matches for pfs; cross multiplies; others add."""
    if input_spec is None:
        return 0
    if input_spec.pfs is not None and input_spec.pfs.repo:
        commit = commits.get(input_spec.pfs.name or input_spec.pfs.repo)
        if commit is None:
            return 0
        if not commit.files and (input_spec.pfs.glob or "/").strip("/") == "":
            return 0
        return len(glob_paths(commit.files, input_spec.pfs.glob or "/"))
    if input_spec.cross:
        total = 1
        for sub in input_spec.cross:
            total *= count_datums(sub, commits)
        return total
    subs = input_spec.union or input_spec.join or input_spec.group
    return sum(count_datums(sub, commits) for sub in subs)


def pfs_inputs(input_spec: pps.Input | None) -> list[pps.PfsInput]:
    if input_spec is None:
        return []
    if input_spec.pfs is not None and input_spec.pfs.repo:
        return [input_spec.pfs]
    result: list[pps.PfsInput] = []
    for sub in [*input_spec.cross, *input_spec.union, *input_spec.join, *input_spec.group]:
        result.extend(pfs_inputs(sub))
    return result


class JobRunner:
    """Schedules and drives job tasks on the server loop."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._behaviours: dict[str, PipelineBehaviour] = {}
        state.on_new_job = self.schedule

    def configure(self, pipeline: str, behaviour: PipelineBehaviour) -> None:
        with self._lock:
            self._behaviours[pipeline] = behaviour

    def behaviour(self, pipeline: str) -> PipelineBehaviour:
        with self._lock:
            return self._behaviours.get(pipeline) or PipelineBehaviour()

    def schedule(self, job: JobRec) -> None:
        job.task = asyncio.get_running_loop().create_task(self._run(job))

    # ------------------------------------------------------------ transitions
    def _set(self, job: JobRec, job_state: pps.JobState, reason: str = "") -> None:
        job.state = job_state
        job.states.append(job_state)
        if reason:
            job.reason = reason
        if job_state == JS.JOB_RUNNING:
            job.started = now()
        if job.done:
            job.finished = now()
            job.pipeline.last_job_state = job_state
        elif job_state != JS.JOB_CREATED:
            job.pipeline.last_job_state = job_state
        self.state.notify(job)

    def end(self, job: JobRec, job_state: pps.JobState, reason: str) -> None:
        """Finish a job that did not succeed; its output commit carries the error."""
        if job.done:
            return
        self._set(job, job_state, reason)
        if not job.output_commit.is_finished:
            self.state.finish_commit(job.output_commit, error=reason or job_state.name)

    def stop(self, job: JobRec, reason: str = "") -> None:
        self.end(job, JS.JOB_KILLED, reason or "job was stopped")
        if job.task is not None and job.task is not asyncio.current_task():
            job.task.cancel()

    # -------------------------------------------------------------------- run
    async def _run(self, job: JobRec) -> None:
        try:
            await self._run_inner(job)
        except asyncio.CancelledError:
            self.end(job, JS.JOB_KILLED, "job was stopped")
            raise
        except Exception as exc:  # noqa: BLE001 - a job must always end
            self.end(job, JS.JOB_FAILURE, f"{type(exc).__name__}: {exc}")

    async def _run_inner(self, job: JobRec) -> None:
        await asyncio.sleep(0)  # CREATED is observable before the job is picked up
        self._set(job, JS.JOB_STARTING)
        out = job.output_commit
        # Not aborted by a restart: jobs keep running while pachd restarts.
        await self.state.wait_for(
            lambda: job.done or out.is_ready,
            lambda: (job, *out.provenance),
            abort_on_restart=False,
        )
        if job.done:
            return
        failed = [c for c in out.provenance if c.error]
        if failed:
            names = sorted({c.repo.name for c in failed})
            self.end(
                job,
                JS.JOB_UNRUNNABLE,
                "unrunnable because the following upstream pipelines failed: " + ", ".join(names),
            )
            return
        behaviour = self.behaviour(job.pipeline.name)
        inputs_by_name: dict[str, CommitRec] = {}
        input_files: dict[str, FileData] = {}
        spec_input = job.spec.input if job.spec else None
        for pin in pfs_inputs(spec_input):
            commit = next(
                (c for c in out.provenance if c.repo.name == pin.repo and c.repo.type == "user"),
                None,
            )
            if commit is None:
                continue
            name = pin.name or pin.repo
            inputs_by_name[name] = commit
            for path, fd in commit.files.items():
                input_files[f"/pfs/{name}{path}"] = fd
        datums = behaviour.datums
        if datums is None:
            datums = count_datums(spec_input, inputs_by_name)
        job.data_total = datums
        self._set(job, JS.JOB_RUNNING)
        ts = now()
        job.logs.extend((ts, line) for line in behaviour.logs)

        outputs: dict[str, bytes] = {}
        failure: str | None = None
        if behaviour.handler is not None:
            ctx = JobContext(job.pipeline.name, job.pipeline.project, job.id, input_files)
            try:
                await asyncio.get_running_loop().run_in_executor(None, behaviour.handler, ctx)
            except Exception as exc:  # noqa: BLE001 - handler failures fail the job
                failure = str(exc) or type(exc).__name__
            job.logs.extend((now(), line) for line in ctx.logs)
            outputs = ctx.outputs
        elif behaviour.outputs is not None:
            outputs = dict(behaviour.outputs)
        elif datums > 0:
            outputs = {f"/{job.pipeline.name}.txt": f"{job.id}\n".encode()}
        if behaviour.duration > 0:
            await asyncio.sleep(behaviour.duration)
        if job.done:
            return
        if failure is None and behaviour.fail:
            failure = behaviour.reason or "datum failed"
        if failure is not None:
            job.data_failed = max(datums, 1)
            self.end(job, JS.JOB_FAILURE, failure)
            return
        for path, data in outputs.items():
            out.files[normalize_path(path)] = FileData.from_bytes(data)
        job.data_processed = datums
        self._set(job, JS.JOB_FINISHING)
        self.state.finishing_commit(out)
        await asyncio.sleep(0)
        if job.done:
            return
        self.state.finish_commit(out)
        self._set(job, JS.JOB_SUCCESS)
