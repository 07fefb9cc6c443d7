"""Deferrable wait for a Pachyderm commit set, in the triggerer's event loop.

The wait is pachd's own streaming ``InspectCommitSet(wait=true)``: no RPC is
sent while nothing changes, and the event fires as soon as pachd reports the
last commit finished. A broken stream (UNAVAILABLE, a pachd restart) is
reopened with backoff; since the request names only the commit set id,
reopening resumes the same wait.

The trigger does nothing else at finish time: the jobs are listed, and the
outcome decided, by the sensor's ``execute_complete`` on a worker, which
resumes the task anyway. pachd is reached through
:meth:`PachydermHook.async_session <cpsign_airflow.hooks.pachyderm.PachydermHook.async_session>`:
streams of all triggers in one triggerer share grpc.aio channels, and every
failure arrives as a :mod:`cpsign_airflow.exceptions` type (PachydermUnavailable:
reopen; any other: the wait cannot go on).

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
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from cpsign_airflow.exceptions import PachydermError, PachydermUnavailable
from cpsign_airflow.hooks.pachyderm_outcome import UnhealthyPipelines, stop_unfinished_jobs

if TYPE_CHECKING:
    from cpsign_airflow.hooks.pachyderm import PachydermHook
    from cpsign_airflow.hooks.pachyderm_types import (
        CommitSetFinished,
        CommitSetWaitError,
        PipelineUnhealthy,
    )


class PachydermCommitSetTrigger(BaseTrigger):
    """Fire once every commit of ``commit_set_id`` has finished.

    The event is ``{"status": "finished", "commit_set_id", "commits"}``: every
    user-repo commit of the set (as :func:`~cpsign_airflow.hooks.pachyderm.commit_to_dict`),
    a failed output commit carrying its ``error``. Whether the set succeeded is
    decided from its jobs by ``PachydermCommitSetSensor.execute_complete`` (see
    :func:`~cpsign_airflow.hooks.pachyderm_outcome.summarize`).
    ``{"status": "error", "commit_set_id", "error_type", "message"}`` means the wait
    itself could not go on (the commit set does not exist, the token was refused).

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

    def _hook(self) -> PachydermHook:
        from cpsign_airflow.hooks.pachyderm import PachydermHook

        return PachydermHook(pachyderm_conn_id=self.pachyderm_conn_id, project=self.project)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
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
        self, hook: PachydermHook, commits: dict[tuple[str, str], dict[str, Any]]
    ) -> CommitSetFinished | CommitSetWaitError:
        """The streaming wait: fills ``commits`` as they finish; returns the event payload."""
        delay = self.reconnect_backoff
        while True:
            try:
                async with hook.async_session() as session:
                    async for commit in session.wait_commit_set(self.commit_set_id):
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
            except PachydermUnavailable as err:
                self.log.warning("%s; reopening the wait in %.1fs", err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.reconnect_backoff_max)
            except PachydermError as err:
                return {
                    "status": "error",
                    "commit_set_id": self.commit_set_id,
                    "error_type": type(err).__name__,
                    "message": str(err),
                }
        return {
            "status": "finished",
            "commit_set_id": self.commit_set_id,
            "commits": list(commits.values()),
        }

    async def _watch_pipelines(
        self, hook: PachydermHook, commits: dict[tuple[str, str], dict[str, Any]]
    ) -> PipelineUnhealthy | None:
        """Check the set's unfinished pipelines every interval; return the
        ``pipeline_unhealthy`` payload, or None once no pipeline is left to check."""
        loop = asyncio.get_running_loop()
        grace = float(self.pipeline_grace_period or 0)
        tracker = UnhealthyPipelines(grace)
        pipelines: list[tuple[str, str]] | None = None
        delay = self.pipeline_check_interval * random.uniform(0.5, 1.0)
        while True:
            await asyncio.sleep(delay)
            delay = self.pipeline_check_interval
            try:
                async with hook.async_session() as session:
                    if pipelines is None:  # the set's pipelines: learnt once
                        jobs = await session.list_jobs(self.commit_set_id)
                        pipelines = [
                            (job["project"], job["pipeline"])
                            for job in jobs
                            if job["finished"] is None
                        ]
                    # a pipeline's output commit is in its repo of the same name
                    pending = [p for p in pipelines if p not in commits]
                    if not pending:
                        return None
                    states = await session.inspect_pipelines(pending)
            except PachydermError as err:
                # The stream is the judge of the set; a failed check is tried again.
                self.log.warning(
                    "Could not check the pipelines of commit set %s (%s); checking again in %.0fs",
                    self.commit_set_id,
                    err,
                    delay,
                )
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
        """Stop unfinished jobs of the set, only when asked to (stop_jobs_on_kill).

        Through the synchronous hook, in a thread: a one-off at kill time, with the
        hook's retries, and the same code as the sensor's ``on_kill``.
        """
        if not self.stop_jobs_on_kill:
            return
        hook = self._hook()
        try:
            await asyncio.to_thread(stop_unfinished_jobs, hook, self.commit_set_id, self.log)
        finally:
            hook.close()
