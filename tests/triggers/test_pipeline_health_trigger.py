"""Fail-fast waits: the trigger also watches the states of the commit set's pipelines.

A pipeline whose workers cannot start (pachd's PIPELINE_CRASHING, e.g. an image
that cannot be pulled: src/server/pps/server/poller.go; on the local pachd, an image
named in ``LocalPachd.unpullable_images``) leaves its job waiting and its output commit
open, so the commit-set stream alone would wait until the task's timeout. The
trigger checks the set's unfinished pipelines every ``pipeline_check_interval``
and ends the wait once one stays unhealthy for ``pipeline_grace_period``.

As in test_pachyderm_trigger.py, everything is awaited on events (the trigger's
own event, or a spy's), never on sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any
from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowFailException
from pipeline_specs import copy_spec as spec

from cpsign_airflow.exceptions import PachydermPipelineUnhealthy
from cpsign_airflow.hooks.pachyderm import AsyncPachydermSession, PachydermHook
from cpsign_airflow.hooks.pachyderm_outcome import UnhealthyPipelines
from cpsign_airflow.sensors.pachyderm import PachydermCommitSetSensor
from cpsign_airflow.triggers.pachyderm import PachydermCommitSetTrigger

TIMEOUT = 30
UNPULLABLE = "lab/missing:1"
GRACE, INTERVAL = 0.5, 0.1


def broken_chain(hook: PachydermHook, pachd: Any, name: str) -> tuple[str, str, str, str]:
    """in -> a (cannot start: CRASHING) -> b (fine); returns (repo, a, b, commit set)."""
    pachd.unpullable_images.add(UNPULLABLE)  # a local pachd control: skipped on a real one
    repo, first, second = f"{name}-in", f"{name}-a", f"{name}-b"
    hook.ensure_repo(repo)
    hook.create_or_update_pipeline(spec(first, repo, image=UNPULLABLE))
    hook.create_or_update_pipeline(spec(second, first))
    commit = hook.put_file(repo, "/configuration.json", data=json.dumps({"seed": 1}))
    return repo, first, second, commit


def trigger_for(commit_set_id: str, **kwargs: Any) -> PachydermCommitSetTrigger:
    kwargs.setdefault("reconnect_backoff", 0.05)
    kwargs.setdefault("pipeline_grace_period", GRACE)
    kwargs.setdefault("pipeline_check_interval", INTERVAL)
    return PachydermCommitSetTrigger(commit_set_id=commit_set_id, **kwargs)


async def first_event(trigger: PachydermCommitSetTrigger) -> dict[str, Any]:
    gen = trigger.run()
    try:
        event = await asyncio.wait_for(anext(gen), TIMEOUT)
    finally:
        await gen.aclose()
    return event.payload


class CheckSpy:
    """Records each pipeline check round (what was asked, what pachd said)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rounds: list[tuple[list[tuple[str, str]], list[dict[str, Any]]]] = []
        self.seen: dict[str, asyncio.Event] = {}
        original = AsyncPachydermSession.inspect_pipelines
        spy = self

        async def wrapped(
            session: AsyncPachydermSession, pipelines: Iterable[tuple[str, str]]
        ) -> list[dict[str, Any]]:
            asked = list(pipelines)
            states = await original(session, asked)
            spy.rounds.append((asked, states))
            for state in states:
                spy.seen.setdefault(state["state"], asyncio.Event()).set()
            return states

        monkeypatch.setattr(AsyncPachydermSession, "inspect_pipelines", wrapped)

    async def wait_for_state(self, state: str) -> None:
        await asyncio.wait_for(self.seen.setdefault(state, asyncio.Event()).wait(), TIMEOUT)


@pytest.fixture
def checks(monkeypatch) -> CheckSpy:
    return CheckSpy(monkeypatch)


# ---------------------------------------------------------------- serialization


def test_serialize_round_trips_the_pipeline_check():
    from airflow._shared.module_loading import import_string
    from airflow.models.trigger import Trigger

    for grace, interval in ((0.5, 0.1), (None, 60.0), (600.0, 60.0)):
        trigger = PachydermCommitSetTrigger(
            commit_set_id="a" * 32, pipeline_grace_period=grace, pipeline_check_interval=interval
        )
        classpath, kwargs = trigger.serialize()
        assert kwargs["pipeline_grace_period"] == grace
        assert kwargs["pipeline_check_interval"] == interval
        row = Trigger.from_object(trigger)
        rebuilt = import_string(row.classpath)(**row.kwargs)
        assert rebuilt.serialize() == (classpath, kwargs)
    # defaults: on, 10 minutes of grace, a check a minute
    _, kwargs = PachydermCommitSetTrigger("b" * 32).serialize()
    assert (kwargs["pipeline_grace_period"], kwargs["pipeline_check_interval"]) == (600.0, 60.0)
    with pytest.raises(ValueError, match="pipeline_check_interval"):
        PachydermCommitSetTrigger("c" * 32, pipeline_check_interval=0)
    with pytest.raises(ValueError, match="pipeline_grace_period"):
        PachydermCommitSetTrigger("c" * 32, pipeline_grace_period=-1)


# ---------------------------------------------------------------- grace bookkeeping


def _state(name: str, state: str, reason: str = "") -> dict[str, Any]:
    return {"pipeline": name, "project": "default", "state": state, "reason": reason or None}


def test_grace_counts_from_the_first_unhealthy_check_and_resets_on_recovery():
    tracker = UnhealthyPipelines(grace=10)
    crashing = [_state("a", "PIPELINE_CRASHING", "ErrImagePull"), _state("b", "PIPELINE_RUNNING")]
    assert tracker.observe(crashing, now=100) == []
    assert tracker.since == {"default/a": 100} and tracker.newly_unhealthy == ["default/a"]
    assert tracker.observe(crashing, now=109) == []
    assert tracker.newly_unhealthy == []
    # CRASHING -> FAILURE is still unhealthy: the same clock runs on
    failed = [_state("a", "PIPELINE_FAILURE", "gave up")]
    [over] = tracker.observe(failed, now=110)
    assert (over["pipeline"], over["state"], over["unhealthy_seconds"]) == (
        "a",
        "PIPELINE_FAILURE",
        10,
    )
    # a healthy check resets it; the next unhealthy one starts a new grace period
    assert tracker.observe([_state("a", "PIPELINE_RUNNING")], now=111) == []
    assert tracker.since == {}
    assert tracker.observe(crashing, now=115) == []
    assert tracker.since == {"default/a": 115}
    # a pipeline no longer checked (its output commit finished) is forgotten
    assert tracker.observe([], now=200) == [] and tracker.since == {}


# ---------------------------------------------------------------- against a pachd


async def test_crashing_pipeline_fails_the_wait_after_the_grace(hook, pachd, checks, unique_name):
    _repo, first, second, commit = broken_chain(hook, pachd, unique_name)
    loop = asyncio.get_running_loop()
    started = loop.time()
    event = await first_event(trigger_for(commit))
    elapsed = loop.time() - started
    assert event["status"] == "pipeline_unhealthy"
    assert event["commit_set_id"] == commit
    assert (event["pipeline"], event["project"]) == (first, "default")
    assert event["state"] == "PIPELINE_CRASHING"
    assert event["reason"] == f'Back-off pulling image "{UNPULLABLE}"'
    assert event["grace_period"] == GRACE
    assert event["unhealthy_seconds"] >= GRACE
    assert elapsed >= GRACE + INTERVAL / 2  # first check after >= half an interval
    # only the broken pipeline is named: its downstream one is RUNNING, just waiting
    assert [p["pipeline"] for p in event["pipelines"]] == [first]
    asked = {name for round_, _ in checks.rounds for _, name in round_}
    assert asked == {first, second}
    assert json.loads(json.dumps(event)) == event  # the triggerer serializes it as JSON
    # the jobs were left alone: the wait failed, nothing was stopped
    assert pachd.call_counts()["StopJob"] == 0
    jobs = {j["pipeline"]: j for j in hook.list_jobs(commit)}
    assert jobs[first]["state"] == "JOB_STARTING" and jobs[first]["finished"] is None

    # the sensor resumes on a worker and fails, not to be retried, naming it all
    sensor = PachydermCommitSetSensor(task_id="wait", commit_set_id=commit)
    calls_before = len(pachd.calls)
    with pytest.raises(PachydermPipelineUnhealthy) as failure:
        await asyncio.to_thread(sensor.execute_complete, context={}, event=event)
    assert isinstance(failure.value, AirflowFailException)
    assert "GetLogs" in pachd.calls[calls_before:]  # the pipeline's log tail, read there
    message = str(failure.value)
    assert f"Commit set {commit} cannot finish" in message
    assert f"pipeline {first!r} has been PIPELINE_CRASHING" in message
    assert event["reason"] in message
    assert "no log lines" in message  # its workers never started
    [named] = failure.value.pipelines
    assert (named["pipeline"], named["log_tail"]) == (first, [])


async def test_healthy_chain_finishes_while_being_checked(hook, pachd, checks, unique_name):
    repo, first, second = f"{unique_name}-in", f"{unique_name}-a", f"{unique_name}-b"
    hook.ensure_repo(repo)
    hook.create_or_update_pipeline(spec(first, repo))
    hook.create_or_update_pipeline(spec(second, first))
    pachd.configure_pipeline(first, duration=0.6)
    commit = hook.put_file(repo, "/configuration.json", data="{}")
    event = await first_event(trigger_for(commit, pipeline_grace_period=0.2))
    assert event["status"] == "finished"
    assert {c["repo"] for c in event["commits"]} == {repo, first, second}
    assert all(c["finished"] and not c["error"] for c in event["commits"])
    assert checks.rounds  # the checker ran meanwhile, and found them healthy
    assert {s["state"] for _, states in checks.rounds for s in states} <= {
        "PIPELINE_STARTING",
        "PIPELINE_RUNNING",
    }


async def test_pipeline_recovering_within_the_grace_does_not_fail_the_wait(
    hook, pachd, checks, unique_name
):
    """CRASHING until its image can be pulled (pachd's master re-checks it)."""
    pachd.crashing_backoff = 0.05  # pachd re-checks crashing workers (15 s on a cluster)
    pachd.unpullable_images.add(UNPULLABLE)
    repo, pipeline = f"{unique_name}-in", unique_name
    hook.ensure_repo(repo)
    hook.create_or_update_pipeline(spec(pipeline, repo, image=UNPULLABLE))
    commit = hook.put_file(repo, "/configuration.json", data="{}")
    task = asyncio.create_task(first_event(trigger_for(commit, pipeline_grace_period=5.0)))
    await checks.wait_for_state("PIPELINE_CRASHING")
    pachd.unpullable_images.discard(UNPULLABLE)  # the image was pushed at last
    event = await asyncio.wait_for(task, TIMEOUT)
    assert event["status"] == "finished"
    assert {c["repo"] for c in event["commits"]} == {repo, pipeline}
    assert all(c["finished"] and not c["error"] for c in event["commits"])
    [job] = hook.list_jobs(commit)
    assert job["state"] == "JOB_SUCCESS"
    assert hook.read_file(pipeline, commit, "/configuration.json") == b"{}"


async def test_checks_cost_one_inspect_per_unfinished_pipeline_per_interval(
    hook, pachd, checks, unique_name
):
    repo, first, second = f"{unique_name}-in", f"{unique_name}-a", f"{unique_name}-b"
    hook.ensure_repo(repo)
    hook.create_or_update_pipeline(spec(first, repo))
    hook.create_or_update_pipeline(spec(second, first))
    pachd.configure_pipeline(first, duration=0.6)
    pachd.configure_pipeline(second, duration=0.6)
    commit = hook.put_file(repo, "/configuration.json", data="{}")
    interval = 0.1
    calls_before = len(pachd.calls)
    loop = asyncio.get_running_loop()
    started = loop.time()
    event = await first_event(trigger_for(commit, pipeline_check_interval=interval))
    elapsed = loop.time() - started
    assert event["status"] == "finished"
    calls = pachd.calls[calls_before:]
    # besides the stream: the set's pipelines learnt once, then InspectPipeline only
    assert set(calls) <= {"InspectCommitSet", "InspectJobSet", "InspectPipeline"}
    assert calls.count("InspectCommitSet") == 1
    assert calls.count("InspectJobSet") == 1
    assert calls.count("InspectPipeline") == sum(len(asked) for asked, _ in checks.rounds)
    # at most one round per interval (the first after >= half of one) ...
    assert 3 <= len(checks.rounds) <= elapsed / interval + 1
    # ... each asking only for pipelines whose output commit had not finished yet
    assert all(1 <= len(asked) <= 2 for asked, _ in checks.rounds)
    assert set(checks.rounds[0][0]) == {("default", first), ("default", second)}
    assert checks.rounds[-1][0] == [("default", second)]


async def test_default_interval_sends_no_pipeline_rpc_in_a_short_wait(hook, pachd, unique_name):
    repo, pipeline = f"{unique_name}-in", unique_name
    hook.ensure_repo(repo)
    hook.create_or_update_pipeline(spec(pipeline, repo))
    pachd.configure_pipeline(pipeline, duration=1.0)
    commit = hook.put_file(repo, "/configuration.json", data="{}")
    calls_before = len(pachd.calls)
    trigger = PachydermCommitSetTrigger(commit_set_id=commit)  # on: 600 s grace, 60 s checks
    assert trigger.pipeline_grace_period == 600.0
    event = await first_event(trigger)
    assert event["status"] == "finished"
    assert pachd.calls[calls_before:] == ["InspectCommitSet"]


async def test_a_failed_check_is_tried_again_at_the_next_interval(hook, pachd, checks, unique_name):
    import grpc

    _repo, first, _second, commit = broken_chain(hook, pachd, unique_name)
    pachd.faults.fail_next(2, code=grpc.StatusCode.UNAVAILABLE, methods=["InspectPipeline"])
    event = await first_event(trigger_for(commit))
    assert event["status"] == "pipeline_unhealthy" and event["pipeline"] == first
    assert pachd.call_counts()["InspectPipeline"] >= 2 + 2


async def test_learning_the_pipelines_is_tried_again_at_the_next_interval(
    hook, pachd, checks, unique_name
):
    """The first check learns the set's pipelines with one InspectJobSet; when pachd cannot
    answer it, it is asked again an interval later (the one retry policy), and said so."""
    import grpc

    _repo, first, _second, commit = broken_chain(hook, pachd, unique_name)
    before = pachd.call_counts().get("InspectJobSet", 0)
    pachd.faults.fail_next(2, code=grpc.StatusCode.UNAVAILABLE, methods=["InspectJobSet"])
    log = mock.Mock()
    with mock.patch.object(PachydermCommitSetTrigger, "log", mock.PropertyMock(return_value=log)):
        event = await first_event(trigger_for(commit))
    assert event["status"] == "pipeline_unhealthy" and event["pipeline"] == first
    assert pachd.call_counts()["InspectJobSet"] - before == 3
    retries = [c.args for c in log.warning.call_args_list if "checking again in" in c.args[0]]
    assert len(retries) == 2 and all(args[1] == commit for args in retries), retries


async def test_check_turned_off_waits_on_the_stream_only(hook, pachd, monkeypatch, unique_name):
    """With no grace period the crashing set is only ended by someone else (here: StopJob)."""
    pachd.unpullable_images.add(UNPULLABLE)
    repo, pipeline = f"{unique_name}-in", unique_name
    hook.ensure_repo(repo)
    hook.create_or_update_pipeline(spec(pipeline, repo, image=UNPULLABLE))
    commit = hook.put_file(repo, "/configuration.json", data="{}")
    stream_open = asyncio.Event()
    original = AsyncPachydermSession.wait_commit_set

    async def wrapped(session: AsyncPachydermSession, commit_set_id: str) -> Any:
        async for finished in original(session, commit_set_id):
            stream_open.set()  # the input commit (finished) comes first
            yield finished

    monkeypatch.setattr(AsyncPachydermSession, "wait_commit_set", wrapped)
    calls_before = len(pachd.calls)
    task = asyncio.create_task(
        first_event(trigger_for(commit, pipeline_grace_period=None, pipeline_check_interval=0.01))
    )
    await asyncio.wait_for(stream_open.wait(), TIMEOUT)
    await asyncio.to_thread(hook.stop_job, pipeline, commit)
    event = await asyncio.wait_for(task, TIMEOUT)
    assert event["status"] == "finished"
    assert {c["repo"]: c["error"] for c in event["commits"]} == {
        repo: None,
        pipeline: "job stopped",
    }
    assert "InspectPipeline" not in pachd.calls[calls_before:]
    assert "InspectJobSet" not in pachd.calls[calls_before:]
