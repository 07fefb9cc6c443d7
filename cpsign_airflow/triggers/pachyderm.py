"""Deferrable wait for a Pachyderm commit set, in the triggerer's event loop.

The wait is pachd's own streaming ``InspectCommitSet(wait=true)``: no RPC is
sent while nothing changes, and the event fires as soon as pachd reports the
last commit finished. A broken stream (UNAVAILABLE, a pachd restart) is
reopened with backoff; since the request names only the commit set id,
reopening resumes the same wait.

The trigger does nothing else at finish time: the jobs are listed, and the
outcome decided, by the sensor's ``execute_complete`` on a worker, which
resumes the task anyway. Streams of all triggers in one triggerer share
grpc.aio channels (:meth:`PachydermHook.async_shared_channel`).

Fail-fast: a pipeline whose workers cannot start (pachd state PIPELINE_CRASHING:
image not pullable, pod unschedulable...) or that pachd failed (PIPELINE_FAILURE)
never finishes its output commit, so the stream alone would wait until the
task's timeout. pachd has no stream of pipeline states, so beside the stream a
checker asks for them every ``pipeline_check_interval`` seconds: one
InspectPipeline (without details) per pipeline of the set whose output commit
has not finished, plus one InspectJobSet at the first check to learn the set's
pipelines. Nothing else is sent. A pipeline unhealthy at every check for
``pipeline_grace_period`` seconds (counted from the first check that saw it so;
a healthy check resets it) ends the wait with a ``pipeline_unhealthy`` event.
The set's jobs are left alone.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

SUCCESS_STATES = {"JOB_SUCCESS"}
#: Pipeline states in which a pipeline's jobs cannot make progress, failing the wait
#: once they outlast the grace period: its workers cannot start (CRASHING: image pull
#: failure, unschedulable pod...) or pachd gave up on it (FAILURE, which only an
#: update leaves). pachd 2.12 PipelineState names.
UNHEALTHY_PIPELINE_STATES = frozenset({"PIPELINE_CRASHING", "PIPELINE_FAILURE"})


class UnhealthyPipelines:
    """Grace bookkeeping shared by the trigger and the sensor.

    ``since`` maps ``"project/pipeline"`` to the clock time of the first check
    that saw it unhealthy. :meth:`observe` takes one check's states (pipelines
    not in it, e.g. finished ones, are forgotten) and returns those unhealthy
    for at least ``grace`` seconds, each with ``unhealthy_seconds``.
    """

    def __init__(self, grace: float, since: dict[str, float] | None = None) -> None:
        self.grace = grace
        self.since: dict[str, float] = dict(since or {})
        #: keys first seen unhealthy by the last :meth:`observe`
        self.newly_unhealthy: list[str] = []

    def observe(self, states: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        since: dict[str, float] = {}
        over = []
        for state in sorted(states, key=lambda s: (s["project"], s["pipeline"])):
            if state["state"] not in UNHEALTHY_PIPELINE_STATES:
                continue
            key = f"{state['project']}/{state['pipeline']}"
            first = since[key] = self.since.get(key, now)
            if now - first >= self.grace:
                over.append({**state, "unhealthy_seconds": round(now - first, 3)})
        self.newly_unhealthy = [k for k in since if k not in self.since]
        self.since = since
        return over


def summarize(jobs: list[dict[str, Any]], commits: list[dict[str, Any]]) -> dict[str, Any]:
    """Outcome of a finished commit set: overall status plus per-job and per-commit facts."""
    failed = [j for j in jobs if j["state"] not in SUCCESS_STATES]
    errored = [c for c in commits if c.get("error")]
    return {
        "status": "failed" if failed or errored else "success",
        "jobs": jobs,
        "commits": commits,
        "failed_jobs": failed,
        "errored_commits": errored,
    }


class PachydermCommitSetTrigger(BaseTrigger):
    """Fire once every commit of ``commit_set_id`` has finished.

    The event is ``{"status": "finished", "commit_set_id", "commits"}``: every
    user-repo commit of the set (as :func:`~cpsign_airflow.hooks.pachyderm.commit_to_dict`),
    a failed output commit carrying its ``error``. Whether the set succeeded is
    decided from its jobs by ``PachydermCommitSetSensor.execute_complete`` (see
    :func:`summarize`). ``{"status": "error", "commit_set_id", "error_type",
    "message"}`` means the wait itself could not go on (the commit set does not
    exist, the token was refused).

    ``{"status": "pipeline_unhealthy", "commit_set_id", "pipeline", "project",
    "state", "reason", "unhealthy_seconds", "grace_period", "pipelines"}`` means a
    pipeline of the set with an unfinished output commit stayed PIPELINE_CRASHING
    or PIPELINE_FAILURE (``state``, with pachd's ``reason``) for ``grace_period``
    seconds; ``pipelines`` lists every such pipeline (the first is also at top
    level). The set's jobs are left running.

    :param reconnect_backoff: first delay before reopening a broken stream.
    :param reconnect_backoff_max: ceiling for that delay, which doubles each time.
    :param stop_jobs_on_kill: stop the set's unfinished jobs when a user kills the task.
    :param pipeline_grace_period: seconds a pipeline may stay CRASHING or FAILURE
        before the wait fails; ``None`` or ``0`` turns the pipeline check off.
    :param pipeline_check_interval: seconds between pipeline checks (the first comes
        after a random 50-100% of it, so waits started together spread out).
    """

    def __init__(
        self,
        commit_set_id: str,
        pachyderm_conn_id: str = "pachyderm_default",
        project: str | None = None,
        reconnect_backoff: float = 1.0,
        reconnect_backoff_max: float = 30.0,
        stop_jobs_on_kill: bool = False,
        pipeline_grace_period: float | None = 600.0,
        pipeline_check_interval: float = 60.0,
    ) -> None:
        super().__init__()
        if pipeline_check_interval <= 0:
            raise ValueError(f"pipeline_check_interval must be > 0, got {pipeline_check_interval}")
        if pipeline_grace_period is not None and pipeline_grace_period < 0:
            raise ValueError(f"pipeline_grace_period must be >= 0, got {pipeline_grace_period}")
        self.commit_set_id = commit_set_id
        self.pachyderm_conn_id = pachyderm_conn_id
        self.project = project
        self.reconnect_backoff = reconnect_backoff
        self.reconnect_backoff_max = reconnect_backoff_max
        self.stop_jobs_on_kill = stop_jobs_on_kill
        self.pipeline_grace_period = pipeline_grace_period
        self.pipeline_check_interval = pipeline_check_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "commit_set_id": self.commit_set_id,
                "pachyderm_conn_id": self.pachyderm_conn_id,
                "project": self.project,
                "reconnect_backoff": self.reconnect_backoff,
                "reconnect_backoff_max": self.reconnect_backoff_max,
                "stop_jobs_on_kill": self.stop_jobs_on_kill,
                "pipeline_grace_period": self.pipeline_grace_period,
                "pipeline_check_interval": self.pipeline_check_interval,
            },
        )

    def _hook(self) -> Any:
        from cpsign_airflow.hooks.pachyderm import PachydermHook

        return PachydermHook(pachyderm_conn_id=self.pachyderm_conn_id, project=self.project)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # The first trigger in a triggerer imports grpc and the SDK's messages (about a
        # second): off the event loop, so the other triggers are not held up meanwhile.
        await asyncio.to_thread(_load_client_modules)
        hook = self._hook()
        await hook.aget_address()
        commits: dict[tuple[str, str], dict[str, Any]] = {}
        stream = asyncio.ensure_future(self._wait_for_commits(hook, commits))
        tasks = [stream]
        if self.pipeline_grace_period:
            tasks.append(asyncio.ensure_future(self._watch_pipelines(hook, commits)))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            payload = None if stream in done else tasks[1].result()
            if payload is None:  # the set finished, or nothing is left to check
                payload = await stream
        finally:
            for task in tasks:
                task.cancel()  # a no-op on a finished task
            await asyncio.gather(*tasks, return_exceptions=True)
        yield TriggerEvent(payload)

    async def _wait_for_commits(
        self, hook: Any, commits: dict[tuple[str, str], dict[str, Any]]
    ) -> dict[str, Any]:
        """The streaming wait: fills ``commits`` as they finish; returns the event payload."""
        import grpc

        from cpsign_airflow.hooks import _grpc_errors

        address = await hook.aget_address()
        delay = self.reconnect_backoff
        while True:
            try:
                async with hook.async_shared_channel() as channel:
                    async for commit in hook.async_wait_commit_set(channel, self.commit_set_id):
                        commits[(commit["project"], commit["repo"])] = commit
                        self.log.info(
                            "Commit set %s: %s/%s finished%s",
                            self.commit_set_id,
                            commit["project"],
                            commit["repo"],
                            f" with error: {commit['error']}" if commit["error"] else "",
                        )
                        delay = self.reconnect_backoff
                break
            except grpc.aio.AioRpcError as err:
                if _grpc_errors.is_retryable(err):
                    self.log.warning(
                        "Wait on commit set %s at %s broke (%s); reopening in %.1fs",
                        self.commit_set_id,
                        address.url,
                        err.details(),
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.reconnect_backoff_max)
                    continue
                error = _grpc_errors.translate(
                    err,
                    f"wait for commit set {self.commit_set_id}",
                    address=address.url,
                    secrets=(address.token,) if address.token else (),
                )
                return {
                    "status": "error",
                    "commit_set_id": self.commit_set_id,
                    "error_type": type(error).__name__,
                    "message": str(error),
                }
        return {
            "status": "finished",
            "commit_set_id": self.commit_set_id,
            "commits": list(commits.values()),
        }

    async def _watch_pipelines(
        self, hook: Any, commits: dict[tuple[str, str], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Check the set's unfinished pipelines every interval; return the
        ``pipeline_unhealthy`` payload, or None once no pipeline is left to check."""
        import grpc

        from cpsign_airflow.exceptions import PachydermError
        from cpsign_airflow.hooks import _grpc_errors

        address = await hook.aget_address()
        loop = asyncio.get_running_loop()
        grace = float(self.pipeline_grace_period or 0)
        tracker = UnhealthyPipelines(grace)
        pipelines: list[tuple[str, str]] | None = None
        delay = self.pipeline_check_interval * random.uniform(0.5, 1.0)
        while True:
            await asyncio.sleep(delay)
            delay = self.pipeline_check_interval
            try:
                async with hook.async_shared_channel() as channel:
                    if pipelines is None:  # the set's pipelines: learnt once
                        jobs = await hook.async_list_jobs(channel, self.commit_set_id)
                        pipelines = [
                            (job["project"], job["pipeline"])
                            for job in jobs
                            if job["finished"] is None
                        ]
                    # a pipeline's output commit is in its repo of the same name
                    pending = [p for p in pipelines if p not in commits]
                    if not pending:
                        return None
                    states = await hook.async_inspect_pipelines(channel, pending)
            except (grpc.aio.AioRpcError, PachydermError) as err:
                # The stream is the judge of the set; a failed check is tried again.
                error = _grpc_errors.translate(
                    err,
                    f"check the pipelines of commit set {self.commit_set_id}",
                    address=address.url,
                    secrets=(address.token,) if address.token else (),
                )
                self.log.warning("%s; checking again in %.0fs", error, delay)
                continue
            over = tracker.observe(states, loop.time())
            for state in states:
                key = f"{state['project']}/{state['pipeline']}"
                if key in tracker.newly_unhealthy:
                    self.log.warning(
                        "Commit set %s: pipeline %s is %s (%s); the wait fails if it stays "
                        "so for %.0fs",
                        self.commit_set_id,
                        key,
                        state["state"],
                        state["reason"] or "no reason given",
                        grace,
                    )
            if over:
                first = over[0]
                return {
                    "status": "pipeline_unhealthy",
                    "commit_set_id": self.commit_set_id,
                    "pipeline": first["pipeline"],
                    "project": first["project"],
                    "state": first["state"],
                    "reason": first["reason"],
                    "unhealthy_seconds": first["unhealthy_seconds"],
                    "grace_period": grace,
                    "pipelines": over,
                }

    async def on_kill(self) -> None:
        """Stop unfinished jobs of the set, only when asked to (stop_jobs_on_kill)."""
        if not self.stop_jobs_on_kill:
            return
        import grpc

        from cpsign_airflow.hooks import _grpc_errors

        hook = self._hook()
        address = await hook.aget_address()
        async with hook.async_shared_channel() as channel:
            for job in await hook.async_list_jobs(channel, self.commit_set_id):
                if job["finished"] is not None:
                    continue
                self.log.info("Stopping job %s@%s", job["pipeline"], job["job_id"])
                try:
                    await hook.async_stop_job(
                        channel, job["pipeline"], job["job_id"], job["project"]
                    )
                except grpc.aio.AioRpcError as err:
                    # Stopping an upstream job ends its downstream jobs (UNRUNNABLE),
                    # and any job may finish by itself meanwhile: pachd then refuses
                    # the stop. Carry on with the others either way.
                    error = _grpc_errors.translate(
                        err,
                        f"stop job {job['pipeline']}@{job['job_id']}",
                        address=address.url,
                        secrets=(address.token,) if address.token else (),
                    )
                    self.log.warning("%s", error)


def _load_client_modules() -> None:
    import grpc.aio  # noqa: F401
    import pachyderm_sdk.api.pfs  # noqa: F401
    import pachyderm_sdk.api.pps  # noqa: F401

    from cpsign_airflow.hooks import _grpc_errors, _wire, pachyderm  # noqa: F401
