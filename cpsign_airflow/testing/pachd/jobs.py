"""Jobs: the state machine, datums run as local processes, skipping, retries.

Each job is one asyncio task: CREATED -> STARTING -> (wait for the input commits
of its commit set) -> RUNNING -> (each datum's transform, or a datum carried
over from the parent job) -> FINISHING -> SUCCESS, or FAILURE / KILLED /
UNRUNNABLE. A test may configure a pipeline with a scripted behaviour (a
duration, a failure, a Python handler) in place of its transform.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pachyderm_sdk.api import pps

from .datums import Datum, InputCommit, pfs_inputs
from .datums import build as build_datums
from .filestore import FileData
from .pfs.records import CommitRec, normalize_path, now
from .pps.records import JobRec
from .state import State
from .worker import SandboxUnavailable, run_datum, sandbox_kind

JS = pps.JobState
PS = pps.PipelineState
DEFAULT_DATUM_TRIES = 3
UNRUNNABLE_PREFIX = "unrunnable because the following upstream pipelines failed: "


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


class JobRunner:
    """Schedules and drives job tasks on the server loop."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.events = state.events
        self._lock = threading.Lock()
        self._behaviours: dict[str, PipelineBehaviour] = {}
        state.pps.on_new_job = self.schedule
        state.pps.stop_job = self.stop

    def configure(self, pipeline: str, behaviour: PipelineBehaviour) -> None:
        with self._lock:
            self._behaviours[pipeline] = behaviour

    def forget(self, pipeline: str) -> None:
        """Run ``pipeline``'s own transform again, as pachd does."""
        with self._lock:
            self._behaviours.pop(pipeline, None)

    def behaviour(self, pipeline: str) -> PipelineBehaviour | None:
        with self._lock:
            return self._behaviours.get(pipeline)

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
        self.events.notify(job)
        self.events.mark_dirty()

    def end(self, job: JobRec, job_state: pps.JobState, reason: str) -> None:
        """Finish a job that did not succeed; its output and meta commits carry the error."""
        if job.done:
            return
        self._set(job, job_state, reason)
        for commit in (job.output_commit, self.state.pps.meta_commit(job)):
            if commit is not None and not commit.is_finished:
                self.state.pfs.mark_finished(commit, error=reason or job_state.name)

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
        await self.events.wait_for(
            lambda: job.done or out.is_ready,
            lambda: (job, *out.provenance),
            abort_on_restart=False,
        )
        if job.done:
            return
        # pachd's worker runs a pipeline's jobs in order: a job starts once its parent
        # output commit is finished, so the skip base is settled. (Scripted jobs do not.)
        behaviour = self.behaviour(job.pipeline.name)
        parent = out.parent
        if parent is not None and behaviour is None:
            await self.events.wait_for(
                lambda: job.done or parent.is_finished,
                lambda: (job, parent),
                abort_on_restart=False,
            )
            if job.done:
                return
        failed = [c for c in out.provenance if c.error]
        if failed:
            self.end(job, JS.JOB_UNRUNNABLE, unrunnable_reason(job, failed))
            return
        # A pipeline whose workers cannot start (CRASHING: its image cannot be pulled)
        # leaves its job waiting and its output commit open, as on a cluster, scripted
        # or not; an update, StopJob or the image becoming pullable ends the wait.
        await self.events.wait_for(
            lambda: (
                job.done
                or job.pipeline.state != PS.PIPELINE_CRASHING
                or job.pipeline_version != job.pipeline.version
            ),
            lambda: (job, job.pipeline),
            abort_on_restart=False,
        )
        if job.done:
            return
        if behaviour is None:
            await self._run_transform(job)
        else:
            await self._run_scripted(job, behaviour)

    def _input_commits(self, job: JobRec) -> dict[str, InputCommit]:
        """Input name -> the input commit this job reads."""
        result: dict[str, InputCommit] = {}
        spec_input = job.spec.input if job.spec else None
        for pin in pfs_inputs(spec_input):
            project = pin.project or job.pipeline.project
            commit = next(
                (
                    c
                    for c in job.output_commit.provenance
                    if c.repo.name == pin.repo
                    and c.repo.project == project
                    and c.repo.type == (pin.repo_type or "user")
                ),
                None,
            )
            if commit is not None:
                result[pin.name or pin.repo] = InputCommit(commit.id, commit.files)
        return result

    # ------------------------------------------------------------- transforms
    async def _run_transform(self, job: JobRec) -> None:
        spec = job.spec
        assert spec is not None
        out = job.output_commit
        meta = self.state.pps.meta_commit(job)
        datums = build_datums(spec.input, self._input_commits(job))
        parent = parent_datums(self.state, job) if spec.reprocess_spec != "every_job" else {}
        job.data_total = len(datums)
        self._set(job, JS.JOB_RUNNING)
        try:
            sandbox_kind()
        except SandboxUnavailable as exc:
            self.end(job, JS.JOB_FAILURE, str(exc))
            return
        env = worker_env(job)
        secret_env, secret_files = secret_material(self.state.pps.secrets, job)
        tries = spec.datum_tries or DEFAULT_DATUM_TRIES
        limit = asyncio.Semaphore(
            max(1, int(spec.parallelism_spec.constant or 1) if spec.parallelism_spec else 1)
        )
        results: dict[str, DatumResult] = {}
        failed: list[str] = []

        async def one(datum: Datum) -> None:
            datum_id, datum_hash = datum.id, datum.hash(job.salt)
            carried = parent.get(datum_hash)
            if carried is not None:
                results[datum_id] = DatumResult(datum_hash, carried, skipped=True)
                job.data_skipped += 1
                self.events.notify(job)
                return
            async with limit:
                if job.done or failed:
                    return
                datum_env = {**env, **secret_env, **datum_vars(datum, datum_id)}
                for attempt in range(1, tries + 1):
                    run = await run_datum(
                        transform=spec.transform,
                        datum=datum,
                        env=datum_env,
                        secret_files=secret_files,
                        log=lambda ts, line: job.logs.append((ts, line, datum_id)),
                        clock=now,
                    )
                    if run.exit_code == 0:
                        results[datum_id] = DatumResult(datum_hash, run.outputs)
                        job.data_processed += 1
                        self.events.notify(job)
                        return
                    job.logs.append(
                        (
                            now(),
                            f"datum {datum_id} failed (try {attempt} of {tries}): {run.error}",
                            datum_id,
                        )
                    )
                job.data_failed += 1
                failed.append(datum_id)

        await asyncio.gather(*(one(d) for d in datums))
        if job.done:
            return
        if failed:
            self.end(job, JS.JOB_FAILURE, f"datum {failed[0]} failed")
            return
        merged: dict[str, list[tuple[str, FileData]]] = {}
        for datum_id in sorted(results):
            for path, fd in results[datum_id].outputs.items():
                merged.setdefault(normalize_path(path), []).append((datum_id, fd))
        for path, pieces in merged.items():
            out.files[path] = pieces[0][1] if len(pieces) == 1 else concat(p for _, p in pieces)
        if meta is not None:
            for datum_id, result in results.items():
                meta.files[f"/meta/{datum_id}/meta"] = FileData.from_bytes(
                    json.dumps(
                        {"hash": result.hash, "job": job.id, "skipped": result.skipped}
                    ).encode()
                )
                for path, fd in result.outputs.items():
                    meta.files[normalize_path(f"/pfs/{datum_id}/out/{path}")] = fd
        self._succeed(job)

    def _succeed(self, job: JobRec) -> None:
        self._set(job, JS.JOB_FINISHING)
        meta = self.state.pps.meta_commit(job)
        for commit in (job.output_commit, meta):
            if commit is not None:
                self.state.pfs.mark_finishing(commit)
        for commit in (meta, job.output_commit):
            if commit is not None and not commit.is_finished:
                self.state.pfs.mark_finished(commit)
        self._set(job, JS.JOB_SUCCESS)

    # --------------------------------------------------------------- scripted
    async def _run_scripted(self, job: JobRec, behaviour: PipelineBehaviour) -> None:
        """A test-configured behaviour in place of the transform (timing, faults, handlers)."""
        out = job.output_commit
        inputs = self._input_commits(job)
        input_files = {
            f"/pfs/{name}{path}": fd
            for name, commit in inputs.items()
            for path, fd in commit.files.items()
        }
        datums = behaviour.datums
        if datums is None:
            datums = len(build_datums(job.spec.input if job.spec else None, inputs))
        job.data_total = datums
        self._set(job, JS.JOB_RUNNING)
        ts = now()
        job.logs.extend((ts, line, "") for line in behaviour.logs)

        outputs: dict[str, bytes] = {}
        failure: str | None = None
        if behaviour.handler is not None:
            ctx = JobContext(job.pipeline.name, job.pipeline.project, job.id, input_files)
            try:
                await asyncio.get_running_loop().run_in_executor(None, behaviour.handler, ctx)
            except Exception as exc:  # noqa: BLE001 - handler failures fail the job
                failure = str(exc) or type(exc).__name__
            job.logs.extend((now(), line, "") for line in ctx.logs)
            outputs = ctx.outputs
        elif behaviour.outputs is not None:
            outputs = dict(behaviour.outputs)
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
        self._succeed(job)


@dataclass
class DatumResult:
    hash: str
    outputs: dict[str, FileData]
    skipped: bool = False


def concat(pieces: Iterable[FileData]) -> FileData:
    """Datums writing the same output path: pachd merges them, in datum order."""
    merged = FileData()
    for piece in pieces:
        for chunk in piece.chunks():
            merged.append(chunk)
    return merged


def datum_vars(datum: Datum, datum_id: str) -> dict[str, str]:
    """pachd's UserCodeEnv per datum: each input's path and commit, join/group keys, the id."""
    env: dict[str, str] = {}
    for inp in datum.inputs:
        env[inp.name] = inp.mount_path
        env[f"{inp.name}_COMMIT"] = inp.commit_id
        if inp.join_on:
            env[f"PACH_DATUM_{inp.name}_JOIN_ON"] = inp.join_on
        if inp.group_by:
            env[f"PACH_DATUM_{inp.name}_GROUP_BY"] = inp.group_by
    if datum.inputs:
        env["PACH_DATUM_ID"] = datum_id
    return env


def unrunnable_reason(job: JobRec, failed: list[CommitRec]) -> str:
    """pachd names the failed inputs by their input name (the repo unless renamed)."""
    names = []
    for pin in pfs_inputs(job.spec.input if job.spec else None):
        if any(c.repo.name == pin.repo for c in failed):
            names.append(pin.name or pin.repo)
    return UNRUNNABLE_PREFIX + ", ".join(names or sorted({c.repo.name for c in failed}))


# ------------------------------------------------------- the worker's inputs
def parent_datums(state: State, job: JobRec) -> dict[str, dict[str, FileData]]:
    """Datum hash -> outputs, from the meta commit of the last successful parent job.

    pachd reads the parent output commit's meta commit; a failed parent is passed
    over, so ``until_success`` reprocesses what did not succeed.
    """
    meta_repo = state.pfs.repos.get((job.pipeline.project, job.pipeline.name, "meta"))
    parent = job.output_commit.parent
    while parent is not None and meta_repo is not None:
        meta = meta_repo.commits.get(parent.id)
        if meta is not None and meta.is_finished and not meta.error and not parent.error:
            return datums_from_meta(meta)
        parent = parent.parent
    return {}


def datums_from_meta(meta: CommitRec) -> dict[str, dict[str, FileData]]:
    """Datum hash -> output files, read back from a meta commit's ``/meta`` and ``/pfs``."""
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


def worker_env(job: JobRec) -> dict[str, str]:
    """The machine's environment (the image's), the spec's env and pachd's job variables."""
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
    secrets: Mapping[str, dict[str, Any]], job: JobRec
) -> tuple[dict[str, str], list[tuple[str, dict[str, bytes]]]]:
    """``env_var`` values and ``mount_path`` file sets of the job's secrets."""
    env: dict[str, str] = {}
    files: list[tuple[str, dict[str, bytes]]] = []
    transform = job.spec.transform if job.spec else None
    for mount in transform.secrets if transform is not None else []:
        data = secret_data(secrets.get(mount.name, {}))
        if mount.env_var:
            env[mount.env_var] = data.get(mount.key, b"").decode(errors="replace")
        if mount.mount_path:
            files.append((mount.mount_path, data))
    return env, files


def secret_data(manifest: dict[str, Any]) -> dict[str, bytes]:
    """A Secret manifest's keys: ``data`` (base64) overlaid with ``stringData``."""
    out = {k: base64.b64decode(v) for k, v in (manifest.get("data") or {}).items()}
    out.update({k: str(v).encode() for k, v in (manifest.get("stringData") or {}).items()})
    return out
