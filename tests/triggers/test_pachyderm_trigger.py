"""PachydermCommitSetTrigger run directly under asyncio against a pachd over real gRPC.

No Airflow triggerer is involved: each test drives ``trigger.run()`` in the
test's own event loop, the way the triggerer would, and resolves the
``pachyderm_default`` connection from ``AIRFLOW_CONN_PACHYDERM_DEFAULT`` through
``BaseHook.aget_connection`` (outside any task context).

Waiting is done on events, never on sleeps: ``stream_open`` below is set when
the trigger receives the first commit of its streaming wait, which proves the
InspectCommitSet stream is open on the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pipeline_specs import copy_spec as spec

from cpsign_airflow.exceptions import (
    PachydermError,
    PachydermJobFailed,
    PachydermNotFound,
    PachydermUnavailable,
)
from cpsign_airflow.hooks import pachyderm as hook_module
from cpsign_airflow.hooks import pachyderm_async
from cpsign_airflow.hooks.pachyderm import AsyncPachydermSession, PachydermHook
from cpsign_airflow.sensors.pachyderm import PachydermCommitSetSensor
from cpsign_airflow.triggers.pachyderm import PachydermCommitSetTrigger

#: Safety bound on any single await in these tests (never reached when things work).
TIMEOUT = 30


def make_chain(hook: PachydermHook, name: str, stages: int = 2) -> tuple[str, list[str]]:
    """Input repo plus ``stages`` pipelines, each reading the previous one."""
    repo = f"{name}-in"
    hook.ensure_repo(repo)
    pipelines = []
    upstream = repo
    for i in range(stages):
        pipeline = f"{name}-{chr(ord('a') + i)}"
        hook.create_or_update_pipeline(spec(pipeline, upstream))
        pipelines.append(pipeline)
        upstream = pipeline
    return repo, pipelines


def commit_config(hook: PachydermHook, repo: str, seed: int = 1) -> str:
    return hook.put_file(repo, "/configuration.json", data=json.dumps({"seed": seed}))


class StreamSpy:
    """Wraps AsyncPachydermSession.wait_commit_set to signal when commits arrive.

    Observes only; the trigger's behaviour is unchanged. ``opened`` counts
    streams opened, ``channels`` the channel each stream was opened on,
    ``first_commit`` is set when any stream delivers a commit.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened = 0
        self.channels: list[Any] = []
        self.received: list[dict[str, Any]] = []
        self.first_commit = asyncio.Event()
        original = AsyncPachydermSession.wait_commit_set
        spy = self

        async def wrapped(
            session: AsyncPachydermSession, commit_set_id: str
        ) -> AsyncIterator[dict[str, Any]]:
            spy.opened += 1
            spy.channels.append(session._channel)
            async for commit in original(session, commit_set_id):
                spy.received.append(commit)
                spy.first_commit.set()
                yield commit

        monkeypatch.setattr(AsyncPachydermSession, "wait_commit_set", wrapped)

    async def wait_open(self) -> None:
        await asyncio.wait_for(self.first_commit.wait(), TIMEOUT)


@pytest.fixture
def spy(monkeypatch) -> StreamSpy:
    return StreamSpy(monkeypatch)


async def first_event(trigger: PachydermCommitSetTrigger) -> dict[str, Any]:
    """The trigger's first event payload; the generator is closed afterwards."""
    gen = trigger.run()
    try:
        event = await asyncio.wait_for(anext(gen), TIMEOUT)
    finally:
        await gen.aclose()
    return event.payload


def trigger_for(commit_set_id: str, **kwargs: Any) -> PachydermCommitSetTrigger:
    kwargs.setdefault("reconnect_backoff", 0.05)
    kwargs.setdefault("reconnect_backoff_max", 0.2)
    return PachydermCommitSetTrigger(commit_set_id=commit_set_id, **kwargs)


# ---------------------------------------------------------------- serialization


def test_serialize_round_trips():
    from airflow._shared.module_loading import import_string  # what the triggerer uses
    from airflow.models.trigger import Trigger

    trigger = PachydermCommitSetTrigger(
        commit_set_id="a" * 32,
        pachyderm_conn_id="lab_pachd",
        project="cpsign",
        reconnect_backoff=0.5,
        reconnect_backoff_max=7.0,
        stop_jobs_on_kill=True,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "cpsign_airflow.triggers.pachyderm.PachydermCommitSetTrigger"
    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    # through the trigger table's (encrypted, serialized) kwargs column as well
    row = Trigger.from_object(trigger)
    assert import_string(row.classpath)(**row.kwargs).serialize() == (classpath, kwargs)
    # the defaults survive the trip too
    classpath, kwargs = PachydermCommitSetTrigger("b" * 32).serialize()
    assert import_string(classpath)(**kwargs).serialize() == (classpath, kwargs)


# ---------------------------------------------------------------- outcomes


async def test_finished_event_lists_every_commit(hook, pachd, unique_name):
    repo, pipelines = make_chain(hook, unique_name)
    commit = commit_config(hook, repo)
    event = await first_event(trigger_for(commit))
    # the commits only: jobs are listed by the sensor on the worker (execute_complete)
    assert set(event) == {"status", "commit_set_id", "commits"}
    assert event["status"] == "finished"
    assert event["commit_set_id"] == commit
    commits = {c["repo"]: c for c in event["commits"]}
    assert set(commits) == {repo, *pipelines}
    assert all(c["id"] == commit and c["finished"] and not c["error"] for c in commits.values())
    # the event must go through the triggerer's JSON serialization as it is
    assert json.loads(json.dumps(event)) == event
    # ... and the sensor resumes from it with every job's summary
    sensor = PachydermCommitSetSensor(task_id="wait", commit_set_id=commit)
    summary = await asyncio.to_thread(sensor.execute_complete, context={}, event=event)
    jobs = {j["pipeline"]: j for j in summary}
    assert set(jobs) == set(pipelines)
    for job in jobs.values():
        assert job["job_id"] == commit
        assert job["state"] == "JOB_SUCCESS"
        assert job["duration_seconds"] is not None


async def test_failed_set_event_carries_the_commit_error(hook, pachd, unique_name):
    repo, (first, _second) = make_chain(hook, unique_name)
    pachd.configure_pipeline(first, fail=True, reason="datum failed: OutOfMemoryError")
    commit = commit_config(hook, repo)
    event = await first_event(trigger_for(commit))
    assert event["status"] == "finished"  # the outcome is the sensor's to decide
    errored = {c["repo"]: c["error"] for c in event["commits"] if c["error"]}
    assert first in errored
    assert json.loads(json.dumps(event)) == event


async def test_sensor_fails_a_failed_set_naming_pipeline_job_and_reason(hook, pachd, unique_name):
    """Trigger event -> execute_complete (on the worker): jobs listed there, failure named."""
    repo, (first, second) = make_chain(hook, unique_name)
    pachd.configure_pipeline(
        first, fail=True, reason="datum failed: OutOfMemoryError", logs=["java.lang.OOM"]
    )
    commit = commit_config(hook, repo)
    event = await first_event(trigger_for(commit))
    sensor = PachydermCommitSetSensor(task_id="wait", commit_set_id=commit)
    calls_before = len(pachd.calls)
    with pytest.raises(PachydermJobFailed) as failure:
        await asyncio.to_thread(sensor.execute_complete, context={}, event=event)
    assert "InspectJobSet" in pachd.calls[calls_before:]  # listed by the sensor, not the event
    message = str(failure.value)
    assert f"pipeline {first!r} job {commit} ended JOB_FAILURE" in message
    assert "datum failed: OutOfMemoryError" in message
    assert "java.lang.OOM" in message  # the log tail
    # the downstream stage never ran
    failed = {j["pipeline"]: j for j in failure.value.failed_jobs}
    assert failed[first]["reason"] == "datum failed: OutOfMemoryError"
    assert failed[second]["state"] == "JOB_UNRUNNABLE"
    assert first in failed[second]["reason"]


async def test_sensor_falls_back_to_commit_errors(pachyderm_conn):
    """No failed job but an errored commit (e.g. an input error): the commit is named."""
    from unittest import mock

    event = {
        "status": "finished",
        "commit_set_id": "c" * 32,
        "commits": [{"repo": "in", "error": "input commit failed", "finished": "x"}],
    }
    sensor = PachydermCommitSetSensor(task_id="wait", commit_set_id="c" * 32)
    with (
        mock.patch.object(PachydermHook, "list_jobs", return_value=[]) as list_jobs,
        pytest.raises(PachydermJobFailed, match="repo 'in': input commit failed"),
    ):
        sensor.execute_complete(context={}, event=event)
    list_jobs.assert_called_once_with("c" * 32)


def test_sensor_raises_the_error_event_as_it_is():
    event = {
        "status": "error",
        "commit_set_id": "d" * 32,
        "error_type": "PachydermNotFound",
        "message": "commit set dddd not found",
    }
    sensor = PachydermCommitSetSensor(task_id="wait", commit_set_id="d" * 32)
    with pytest.raises(PachydermError, match="commit set dddd not found"):
        sensor.execute_complete(context={}, event=event)


async def test_unknown_commit_set_is_an_error_event(pachyderm_conn, pachd):
    unknown = "0123456789abcdef" * 2
    event = await first_event(trigger_for(unknown))
    assert event["status"] == "error"
    assert event["commit_set_id"] == unknown
    assert event["error_type"] == "PachydermNotFound"
    assert unknown in event["message"]


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_refused_token_is_an_error_event(pachd, monkeypatch, token):
    secret = "the-real-token-77ab"
    pachd.require_auth(secret)
    host_port = pachd.address.split("://", 1)[1]
    uri = f"pachyderm://:{token}@{host_port}" if token else f"pachyderm://{host_port}"
    monkeypatch.setenv("AIRFLOW_CONN_PACHYDERM_DEFAULT", uri)
    event = await first_event(trigger_for("1" * 32))
    assert event["status"] == "error"
    assert event["error_type"] == "PachydermAuthError"
    assert "token is missing or wrong" in event["message"]
    assert secret not in json.dumps(event)
    if token:
        assert token not in json.dumps(event)


async def test_right_token_reaches_the_stream(pachd, monkeypatch, unique_name):
    secret = "the-real-token-3c9e"
    pachd.require_auth(secret)
    host_port = pachd.address.split("://", 1)[1]
    monkeypatch.setenv("AIRFLOW_CONN_PACHYDERM_DEFAULT", f"pachyderm://:{secret}@{host_port}")
    hook = PachydermHook(retry_backoff=0.01)
    try:
        repo, _ = make_chain(hook, unique_name, stages=1)
        commit = commit_config(hook, repo)
    finally:
        hook.close()
    event = await first_event(trigger_for(commit))
    assert event["status"] == "finished"


# ---------------------------------------------------------------- how it waits


async def test_waits_without_polling(hook, pachd, spy, unique_name):
    """Between the stream opening and the job finishing, no RPC at all is sent."""
    repo, [pipeline] = make_chain(hook, unique_name, stages=1)
    pachd.configure_pipeline(pipeline, duration=2.5)
    commit = commit_config(hook, repo)
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(first_event(trigger_for(commit)))
    await spy.wait_open()  # the input commit arrived: the stream is open on pachd
    opened_at = loop.time()
    calls_at_open = len(pachd.calls)
    assert pachd.calls[-1] == "InspectCommitSet"
    event = await asyncio.wait_for(task, TIMEOUT)
    waited = loop.time() - opened_at
    assert event["status"] == "finished"
    assert waited > 1.5, f"the job should have run ~2.5 s, the wait took {waited:.2f}s"
    # One stream for the whole wait, and nothing else: jobs are the sensor's to list.
    assert pachd.calls[calls_at_open:] == []
    assert spy.opened == 1
    assert pachd.job_states(commit, pipeline)[-1] == "JOB_SUCCESS"


async def test_does_not_block_the_event_loop(hook, pachd, spy, unique_name):
    repo, [pipeline] = make_chain(hook, unique_name, stages=1)
    pachd.configure_pipeline(pipeline, duration=1.0)
    commit = commit_config(hook, repo)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        event = await first_event(trigger_for(commit))
    finally:
        done.set()
        await ticking
    elapsed = loop.time() - started
    assert event["status"] == "finished"
    assert elapsed >= 0.9
    # ~100 ticks fit in a 1 s wait; a blocking wait would allow only a handful.
    assert ticks >= 0.6 * elapsed / 0.01, f"{ticks} ticks in {elapsed:.2f}s"


# ---------------------------------------------------------------- broken streams


async def test_cut_stream_is_reopened(hook, pachd, spy, unique_name):
    repo, pipelines = make_chain(hook, unique_name)
    pachd.configure_pipeline(pipelines[0], duration=0.5)
    commit = commit_config(hook, repo)
    pachd.faults.cut_next_stream(after=1)  # the trigger's stream: one commit, then UNAVAILABLE
    event = await first_event(trigger_for(commit, reconnect_backoff=0.05))
    assert event["status"] == "finished"
    assert pachd.call_counts()["InspectCommitSet"] == 2
    assert spy.opened == 2
    # the connection was fine (the server ended the stream): both opened on one channel
    assert spy.channels[0] is spy.channels[1]
    assert {c["repo"] for c in event["commits"]} == {repo, *pipelines}
    assert all(c["finished"] and not c["error"] for c in event["commits"])


async def test_pachd_restart_while_waiting(hook, pachd, spy, unique_name):
    # One stage: the local pachd fails a job that is itself waiting for its input
    # commit when restart() happens (its JobRunner uses State.wait_for, which
    # raises on restart), so a two-stage chain would end JOB_FAILURE there.
    repo, pipelines = make_chain(hook, unique_name, stages=1)
    pachd.configure_pipeline(pipelines[0], duration=1.5)
    commit = commit_config(hook, repo)
    task = asyncio.create_task(first_event(trigger_for(commit, reconnect_backoff=0.05)))
    await spy.wait_open()
    # restart() blocks until pachd serves again; run it off the loop like a real outage
    await asyncio.to_thread(pachd.restart)
    event = await asyncio.wait_for(task, TIMEOUT)
    assert event["status"] == "finished"
    assert spy.opened >= 2
    assert pachd.call_counts()["InspectCommitSet"] >= 2
    assert {c["repo"] for c in event["commits"]} == {repo, *pipelines}
    assert all(c["finished"] and not c["error"] for c in event["commits"])
    jobs = await asyncio.to_thread(hook.list_jobs, commit)
    assert {j["pipeline"]: j["state"] for j in jobs} == {p: "JOB_SUCCESS" for p in pipelines}


async def test_reconnect_backoff_doubles_up_to_the_ceiling(hook, pachd, spy, unique_name):
    """Several refused reopenings in a row: waits 0.05, 0.1, 0.2, 0.2 ... then succeeds."""
    import grpc

    repo, pipelines = make_chain(hook, unique_name, stages=1)
    commit = commit_config(hook, repo)
    hook.wait_commit_set(commit, timeout=TIMEOUT)
    pachd.faults.fail_next(4, code=grpc.StatusCode.UNAVAILABLE, methods=["InspectCommitSet"])
    loop = asyncio.get_running_loop()
    started = loop.time()
    event = await first_event(
        trigger_for(commit, reconnect_backoff=0.05, reconnect_backoff_max=0.2)
    )
    elapsed = loop.time() - started
    assert event["status"] == "finished"
    assert pachd.call_counts()["InspectCommitSet"] == 5 + 1  # 1 by wait_commit_set above
    assert 0.05 + 0.1 + 0.2 + 0.2 <= elapsed < 0.55 + 5


@pytest.mark.parametrize(
    ("message", "reopened"),
    [
        ("ERROR: could not serialize access due to concurrent update (SQLSTATE 40001)", True),
        (
            "ERROR: current transaction is aborted, commands ignored until end of "
            "transaction block (SQLSTATE 25P02)",
            True,
        ),
        ("something else went wrong", False),
    ],
    ids=["40001", "25P02", "other"],
)
async def test_transient_database_errors_reopen_the_wait(
    hook, pachd, unique_name, capsys, message, reopened
):
    """pachd's transient PostgreSQL errors (UNKNOWN) reopen the wait like UNAVAILABLE, the
    retry counted in the log; any other UNKNOWN ends it with an error event."""
    import grpc

    repo, _ = make_chain(hook, unique_name, stages=1)
    commit = commit_config(hook, repo)
    hook.wait_commit_set(commit, timeout=TIMEOUT)
    pachd.faults.fail_next(
        2, code=grpc.StatusCode.UNKNOWN, methods=["InspectCommitSet"], message=message
    )
    event = await first_event(trigger_for(commit, pipeline_grace_period=None))
    if reopened:
        assert event["status"] == "finished"
        assert pachd.call_counts()["InspectCommitSet"] == 3 + 1  # 1 by wait_commit_set
        logged = capsys.readouterr().out.splitlines()
        for retry in (1, 2):
            assert any(message in line and f"(retry {retry})" in line for line in logged)
    else:
        assert event["status"] == "error" and message in event["message"]
        assert pachd.call_counts()["InspectCommitSet"] == 1 + 1


async def test_session_raises_the_providers_exceptions_only(hook, pachd, unique_name):
    """UNAVAILABLE is PachydermUnavailable (the trigger reopens on it), a missing set
    PachydermNotFound: no grpc error reaches the trigger."""
    import grpc

    repo, [pipeline] = make_chain(hook, unique_name, stages=1)
    commit = commit_config(hook, repo)
    pachd.faults.fail_next(1, code=grpc.StatusCode.UNAVAILABLE, methods=["InspectJobSet"])
    async with hook.async_session() as session:
        with pytest.raises(PachydermUnavailable, match=f"list jobs of job set {commit}"):
            await session.list_jobs(commit)
        assert [j["pipeline"] for j in await session.list_jobs(commit)] == [pipeline]
        unknown = "0123456789abcdef" * 2
        with pytest.raises(PachydermNotFound, match=unknown):
            [c async for c in session.wait_commit_set(unknown)]


# ---------------------------------------------------------------- on_kill


async def kill_while_waiting(trigger: PachydermCommitSetTrigger, spy: StreamSpy) -> None:
    """What the triggerer does when a user kills the task: cancel run(), then on_kill()."""
    task = asyncio.create_task(first_event(trigger))
    await spy.wait_open()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(trigger.on_kill(), TIMEOUT)


async def test_on_kill_stops_running_jobs_when_asked(hook, pachd, spy, unique_name):
    repo, (first, second) = make_chain(hook, unique_name)
    pachd.configure_pipeline(first, duration=30)
    commit = commit_config(hook, repo)
    await kill_while_waiting(trigger_for(commit, stop_jobs_on_kill=True), spy)
    jobs = {j["pipeline"]: j for j in hook.list_jobs(commit)}
    assert jobs[first]["state"] == "JOB_KILLED"
    # the downstream job was unfinished too: stopped, or made unrunnable by the stop
    assert jobs[second]["state"] in ("JOB_KILLED", "JOB_UNRUNNABLE")
    assert pachd.job_states(commit, first)[-1] == "JOB_KILLED"
    assert pachd.call_counts()["StopJob"] >= 1


async def test_on_kill_leaves_jobs_alone_by_default(hook, pachd, spy, unique_name):
    repo, [pipeline] = make_chain(hook, unique_name, stages=1)
    pachd.configure_pipeline(pipeline, duration=30)
    commit = commit_config(hook, repo)
    trigger = trigger_for(commit)
    assert trigger.stop_jobs_on_kill is False
    task = asyncio.create_task(first_event(trigger))
    await spy.wait_open()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    calls_before = len(pachd.calls)
    await asyncio.wait_for(trigger.on_kill(), TIMEOUT)
    assert pachd.calls[calls_before:] == []  # not even a connection-level RPC
    [job] = hook.list_jobs(commit)
    assert job["state"] == "JOB_RUNNING"
    hook.stop_job(pipeline, commit)


# ---------------------------------------------------------------- concurrency


async def test_many_triggers_share_one_loop(hook, pachd, unique_name):
    """Twenty waits in one loop each get their own commit set's event, once."""
    repo, [pipeline] = make_chain(hook, unique_name, stages=1)
    release = threading.Event()

    def handler(ctx) -> None:
        release.wait(TIMEOUT)
        ctx.write("/model.txt", ctx.job_id)

    pachd.configure_pipeline(pipeline, duration=0, handler=handler)
    commits = [commit_config(hook, repo, seed=i) for i in range(20)]
    tasks = [asyncio.create_task(first_event(trigger_for(c))) for c in commits]
    release.set()
    events = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    assert [e["commit_set_id"] for e in events] == commits
    assert all(e["status"] == "finished" for e in events)


# ---------------------------------------------------------------- shared channels


def _pool(loop: asyncio.AbstractEventLoop) -> list[Any]:
    return [s for pool in hook_module._SHARED_CHANNELS.get(loop, {}).values() for s in pool]


async def test_triggers_in_one_loop_share_one_channel(hook, pachd, spy, unique_name):
    repo, [pipeline] = make_chain(hook, unique_name, stages=1)
    release = threading.Event()
    pachd.configure_pipeline(pipeline, duration=0, handler=lambda ctx: release.wait(TIMEOUT))
    commits = [commit_config(hook, repo, seed=i) for i in range(2)]
    tasks = [asyncio.create_task(first_event(trigger_for(c))) for c in commits]
    await spy.wait_open()
    while spy.opened < 2:  # the second stream is opened by now or very soon
        await asyncio.sleep(0.01)
    [shared] = _pool(asyncio.get_running_loop())
    assert shared.users == 2  # both streams open at once, on one channel
    release.set()
    events = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    assert [e["status"] for e in events] == ["finished", "finished"]
    assert spy.channels[0] is spy.channels[1] is shared.channel
    assert shared.users == 0
    # the triggers left it open for the next ones
    from grpc import ChannelConnectivity

    assert shared.channel.get_state() != ChannelConnectivity.SHUTDOWN


async def test_a_shut_down_shared_channel_is_replaced(hook, pachd, spy, unique_name):
    repo, _ = make_chain(hook, unique_name, stages=1)
    first = await first_event(trigger_for(commit_config(hook, repo, seed=1)))
    [shared] = _pool(asyncio.get_running_loop())
    await shared.channel.close()  # e.g. closed by mistake: no RPC could go through it
    second = await first_event(trigger_for(commit_config(hook, repo, seed=2)))
    assert first["status"] == second["status"] == "finished"
    assert spy.channels[0] is shared.channel
    assert spy.channels[1] is not shared.channel
    [replacement] = _pool(asyncio.get_running_loop())
    assert replacement.channel is spy.channels[1]


def test_each_event_loop_gets_its_own_channel(hook, pachd, monkeypatch, unique_name):
    """grpc.aio channels are bound to their loop: a new loop must not get the old one."""
    repo, _ = make_chain(hook, unique_name, stages=1)
    seen: list[tuple[asyncio.AbstractEventLoop, Any]] = []
    original = AsyncPachydermSession.wait_commit_set

    async def wrapped(session: AsyncPachydermSession, commit_set_id: str) -> Any:
        seen.append((asyncio.get_running_loop(), session._channel))
        async for commit in original(session, commit_set_id):
            yield commit

    monkeypatch.setattr(AsyncPachydermSession, "wait_commit_set", wrapped)
    events = [
        asyncio.run(first_event(trigger_for(commit_config(hook, repo, seed=i)))) for i in range(2)
    ]
    assert [e["status"] for e in events] == ["finished", "finished"]
    (loop1, channel1), (loop2, channel2) = seen
    assert loop1 is not loop2 and loop1.is_closed() and loop2.is_closed()
    assert channel1 is not channel2
    # the closed first loop's pool was dropped when the second loop leased its channel
    assert loop1 not in hook_module._SHARED_CHANNELS
    assert [s.channel for s in _pool(loop2)] == [channel2]
    hook_module._SHARED_CHANNELS.pop(loop2)  # closed loop: grpc closes it when collected


async def test_channels_hold_at_most_streams_per_channel(hook, pachd, monkeypatch):
    # patched where the pool reads it: hook_module only re-exports the number
    monkeypatch.setattr(pachyderm_async, "STREAMS_PER_CHANNEL", 2)
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(hook.async_session()) for _ in range(5)]
        leased = [session._channel for session in sessions]
        assert [id(c) for c in leased[:2]] == [id(leased[0])] * 2
        assert len({id(c) for c in leased}) == 3
    # all returned: the next session reuses the first channel
    async with hook.async_session() as again:
        assert again._channel is leased[0]
