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
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

SUCCESS_STATES = {"JOB_SUCCESS"}


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

    :param reconnect_backoff: first delay before reopening a broken stream.
    :param reconnect_backoff_max: ceiling for that delay, which doubles each time.
    :param stop_jobs_on_kill: stop the set's unfinished jobs when a user kills the task.
    """

    def __init__(
        self,
        commit_set_id: str,
        pachyderm_conn_id: str = "pachyderm_default",
        project: str | None = None,
        reconnect_backoff: float = 1.0,
        reconnect_backoff_max: float = 30.0,
        stop_jobs_on_kill: bool = False,
    ) -> None:
        super().__init__()
        self.commit_set_id = commit_set_id
        self.pachyderm_conn_id = pachyderm_conn_id
        self.project = project
        self.reconnect_backoff = reconnect_backoff
        self.reconnect_backoff_max = reconnect_backoff_max
        self.stop_jobs_on_kill = stop_jobs_on_kill

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
            },
        )

    def _hook(self) -> Any:
        from cpsign_airflow.hooks.pachyderm import PachydermHook

        return PachydermHook(pachyderm_conn_id=self.pachyderm_conn_id, project=self.project)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import grpc

        from cpsign_airflow.hooks import _grpc_errors

        hook = self._hook()
        address = await hook.aget_address()
        delay = self.reconnect_backoff
        commits: dict[tuple[str, str], dict[str, Any]] = {}
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
                yield TriggerEvent(
                    {
                        "status": "error",
                        "commit_set_id": self.commit_set_id,
                        "error_type": type(error).__name__,
                        "message": str(error),
                    }
                )
                return
        yield TriggerEvent(
            {
                "status": "finished",
                "commit_set_id": self.commit_set_id,
                "commits": list(commits.values()),
            }
        )

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
