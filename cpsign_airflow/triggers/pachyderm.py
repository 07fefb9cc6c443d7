"""Deferrable wait for a Pachyderm commit set, in the triggerer's event loop.

The wait is pachd's own streaming ``InspectCommitSet(wait=true)``: no RPC is
sent while nothing changes, and the event fires as soon as pachd reports the
last commit finished. A broken stream (UNAVAILABLE, a pachd restart, or one of
pachd's transient database errors) is reopened with backoff; since the request
names only the commit set id, reopening resumes the same wait.

The trigger does nothing else at finish time: the jobs are listed, and the
outcome decided, by the sensor's ``execute_complete`` on a worker, which
resumes the task anyway. pachd is reached through
:meth:`PachydermHook.async_session <cpsign_airflow.hooks.pachyderm.PachydermHook.async_session>`:
streams of all triggers in one triggerer share grpc.aio channels, and every
failure arrives as a :mod:`cpsign_airflow.exceptions` type (PachydermUnavailable or a
transient database error, see ``_grpc_errors.retry_reason``: reopen; any other: the
wait cannot go on).

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

One check per pipeline: the waits of one triggerer (one event loop) that reach the
same pachd with the same token at the same ``pipeline_check_interval`` share one
check (:class:`_SharedPipelineCheck`), which asks for each distinct pipeline once
per interval, whatever the number of waits, and hands every wait the states of
its own pipelines. A wait learns its set's pipelines (InspectJobSet) at its own
first check, as before; it then joins the shared check and takes the states of its
last round when those cover its pipelines and are no older than the wait (else
the next round's); the first wait to join starts the check with a round at once,
the last to leave stops it. So 1,000 waits on one chain cost one InspectPipeline
per pipeline per interval, not 1,000. Waits with different intervals share
nothing (one check per interval); each wait keeps its own grace bookkeeping, log
lines and event.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from cpsign_airflow.exceptions import PachydermError
from cpsign_airflow.hooks import _grpc_errors
from cpsign_airflow.hooks.pachyderm_outcome import UnhealthyPipelines, stop_unfinished_jobs
from cpsign_airflow.retries import RetryPolicy

if TYPE_CHECKING:
    from cpsign_airflow.hooks.pachyderm import PachdAddress, PachydermHook
    from cpsign_airflow.hooks.pachyderm_types import (
        CommitSetFinished,
        CommitSetWaitError,
        PipelineUnhealthy,
    )


def _reopen_reason(err: BaseException) -> str | None:
    """Why a broken wait is reopened (UNAVAILABLE, or pachd's transient database errors),
    or None to give up on it."""
    retryable = isinstance(err, PachydermError) and _grpc_errors.is_retryable(err)
    return str(err) if retryable else None


def _any_pachyderm_error(err: BaseException) -> str | None:
    """A check that could not be made is made again (the stream is the judge of the set)."""
    return str(err) if isinstance(err, PachydermError) else None


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

    #: Share the pipeline check with the other waits of this event loop (see the module
    #: doc). Not a trigger argument: ``False`` (on a subclass) gives each wait its own
    #: check, as before the sharing; the benchmarks measure that as their baseline.
    share_pipeline_check: bool = True

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
        """The streaming wait: fills ``commits`` as they finish; returns the event payload.

        A broken stream (UNAVAILABLE, or pachd's transient database errors) is reopened
        under the provider's :class:`~cpsign_airflow.retries.RetryPolicy`, without limit;
        a commit arriving makes the next reopening the first again (retry 1, first pause).
        """
        policy = RetryPolicy(
            attempts=None, backoff=self.reconnect_backoff, max_backoff=self.reconnect_backoff_max
        )

        async def stream(progress: Callable[[], None]) -> None:
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
                    progress()

        try:
            await policy.acall(stream, _reopen_reason, self._log_reopening)
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

    def _log_reopening(self, retry: int, reason: str, pause: float) -> None:
        self.log.warning("%s; reopening the wait (retry %d) in %.1fs", reason, retry, pause)

    async def _watch_pipelines(
        self, hook: PachydermHook, commits: dict[tuple[str, str], dict[str, Any]]
    ) -> PipelineUnhealthy | None:
        """Check the set's unfinished pipelines every interval; return the
        ``pipeline_unhealthy`` payload, or None once no pipeline is left to check."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        grace = float(self.pipeline_grace_period or 0)
        tracker = UnhealthyPipelines(grace)
        interval = self.pipeline_check_interval
        await asyncio.sleep(interval * random.uniform(0.5, 1.0))
        pipelines = await self._learn_pipelines(hook)
        check = await _join_pipeline_check(
            hook,
            interval,
            # a pipeline's output commit is in its repo of the same name
            lambda: [p for p in pipelines if p not in commits],
            since=started,
            shared=self.share_pipeline_check,
        )
        try:
            while True:
                checked_at, states = await check.next_round()
                if states is None:  # no pipeline left to check
                    return None
                if isinstance(states, PachydermError):
                    # The stream is the judge of the set; a failed check is tried again.
                    self.log.warning(
                        "Could not check the pipelines of commit set %s (%s); "
                        "checking again in %.0fs",
                        self.commit_set_id,
                        states,
                        interval,
                    )
                    continue
                if isinstance(states, BaseException):
                    raise states
                over = tracker.observe(states, checked_at)
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
        finally:
            check.leave()

    async def _learn_pipelines(self, hook: PachydermHook) -> list[tuple[str, str]]:
        """The set's unfinished pipelines (one InspectJobSet), tried again every interval
        (the one :class:`~cpsign_airflow.retries.RetryPolicy`, at a steady pause)."""
        interval = self.pipeline_check_interval
        policy = RetryPolicy(attempts=None, backoff=interval, max_backoff=interval)

        async def learn(progress: Callable[[], None]) -> list[tuple[str, str]]:
            async with hook.async_session() as session:
                jobs = await session.list_jobs(self.commit_set_id)
            return [(job["project"], job["pipeline"]) for job in jobs if job["finished"] is None]

        def log_retry(retry: int, reason: str, pause: float) -> None:
            self.log.warning(
                "Could not check the pipelines of commit set %s (%s); checking again in %.0fs",
                self.commit_set_id,
                reason,
                pause,
            )

        return await policy.acall(learn, _any_pachyderm_error, log_retry)

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


# ---------------------------------------------------------------------- shared pipeline check

#: What one round hands a wait: its pipelines' states, None when it has no pipeline
#: left to check, or the error the round failed with.
_Round = tuple[float, "list[dict[str, Any]] | BaseException | None"]


class _PipelineCheckLease:
    """One wait's part in a :class:`_SharedPipelineCheck`: the rounds meant for it."""

    __slots__ = ("_check", "_rounds", "hook", "pending")

    def __init__(
        self,
        check: _SharedPipelineCheck,
        hook: PachydermHook,
        pending: Callable[[], list[tuple[str, str]]],
    ) -> None:
        self._check = check
        self._rounds: asyncio.Queue[_Round] = asyncio.Queue()
        self.hook = hook
        #: the ``(project, pipeline)`` pairs the wait needs checked now
        self.pending = pending

    def deliver(self, checked_at: float, states: Any) -> None:
        self._rounds.put_nowait((checked_at, states))

    async def next_round(self) -> _Round:
        """``(loop time of the round, states)``, states as the wait's pending pipelines."""
        return await self._rounds.get()

    def leave(self) -> None:
        self._check.leave(self)


class _SharedPipelineCheck:
    """One check of pipeline states for the waits of one event loop that reach one
    pachd as one token, at one interval (see the module doc).

    Each round asks pachd once for every distinct pipeline that a wait in it still
    needs, then hands each wait the states of its own. The first lease starts it (a
    round at once, then one every ``interval``); the last one to leave cancels it.
    Only touched from its event loop, between awaits: no lock.
    """

    def __init__(
        self,
        registry: dict[Any, _SharedPipelineCheck],
        key: Any,
        interval: float,
    ) -> None:
        self._registry = registry
        self._key = key
        self.interval = interval
        self.leases: dict[_PipelineCheckLease, None] = {}  # an ordered set
        self.rounds = 0  # rounds that asked pachd, done
        # the last round that succeeded: when, what it asked for, what pachd said
        self._last_at: float | None = None
        self._last_asked: frozenset[tuple[str, str]] = frozenset()
        self._last_states: dict[tuple[str, str], dict[str, Any]] = {}
        self._task: asyncio.Future[None] | None = None

    def join(
        self,
        hook: PachydermHook,
        pending: Callable[[], list[tuple[str, str]]],
        since: float,
    ) -> _PipelineCheckLease:
        lease = _PipelineCheckLease(self, hook, pending)
        self.leases[lease] = None
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
            return lease
        wanted = pending()
        if not wanted:
            lease.deliver(asyncio.get_running_loop().time(), None)
        elif (
            self._last_at is not None
            and self._last_at >= since
            and self._last_asked.issuperset(wanted)
        ):
            # the last round already covers this wait's pipelines: its first check
            lease.deliver(self._last_at, self._states_for(wanted))
        return lease

    def leave(self, lease: _PipelineCheckLease) -> None:
        self.leases.pop(lease, None)
        if self.leases:
            return
        if self._registry.get(self._key) is self:
            del self._registry[self._key]
        if self._task is not None:
            self._task.cancel()  # nobody waits: the check stops

    def _states_for(self, wanted: list[tuple[str, str]]) -> list[dict[str, Any]]:
        # in the wait's order; a pipeline pachd no longer has is left out
        return [self._last_states[p] for p in wanted if p in self._last_states]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.leases:
            leases = list(self.leases)
            wanted = {lease: lease.pending() for lease in leases}
            asked = list(dict.fromkeys(p for pipelines in wanted.values() for p in pipelines))
            failure: BaseException | None = None
            states: list[dict[str, Any]] = []
            if asked:
                try:
                    async with leases[0].hook.async_session() as session:
                        states = await session.inspect_pipelines(asked)
                except Exception as err:  # each wait decides (PachydermError: try again)
                    failure = err
                self.rounds += 1
            checked_at = loop.time()
            if failure is None:  # what later leases may take as their first check
                self._last_at, self._last_asked = checked_at, frozenset(asked)
                self._last_states = {(s["project"], s["pipeline"]): s for s in states}
            else:
                self._last_at, self._last_asked, self._last_states = None, frozenset(), {}
            for lease in leases:
                if lease not in self.leases:  # left during the round
                    continue
                if not wanted[lease]:
                    lease.deliver(checked_at, None)
                elif failure is not None:
                    lease.deliver(checked_at, failure)
                else:
                    lease.deliver(checked_at, self._states_for(wanted[lease]))
            await asyncio.sleep(self.interval)


#: event loop -> check key -> the shared check of that loop (see _join_pipeline_check).
_PIPELINE_CHECKS: dict[Any, dict[Any, _SharedPipelineCheck]] = {}


def _pachd_identity(addr: PachdAddress) -> tuple[Any, ...]:
    """Which pachd, as whom: pipelines look the same to waits with equal keys."""

    def digest(value: bytes | str | None) -> str | None:
        if value is None:
            return None
        raw = value.encode() if isinstance(value, str) else value
        return hashlib.sha256(raw).hexdigest()

    return (addr.host, addr.port, addr.tls, digest(addr.root_certs), digest(addr.token))


async def _join_pipeline_check(
    hook: PachydermHook,
    interval: float,
    pending: Callable[[], list[tuple[str, str]]],
    since: float,
    shared: bool = True,
) -> _PipelineCheckLease:
    """A lease on the running loop's check of ``hook``'s pachd at ``interval``
    (a check of its own when not ``shared``). ``since``: the wait's start (loop time);
    an earlier round is not taken as its first check."""
    addr = await hook.aget_address()
    loop = asyncio.get_running_loop()
    for closed in [other for other in _PIPELINE_CHECKS if other.is_closed()]:
        del _PIPELINE_CHECKS[closed]
    checks = _PIPELINE_CHECKS.setdefault(loop, {})
    key = (_pachd_identity(addr), interval) if shared else object()
    check = checks.get(key)
    if check is None:
        check = checks[key] = _SharedPipelineCheck(checks, key, interval)
    return check.join(hook, pending, since)
