"""One pipeline check per pipeline: the waits of one event loop share it.

N waits on the same chain cost one InspectPipeline per pipeline per interval, not
N (counted at the local pachd), and a CRASHING pipeline still fails every one of
them after its grace period. The registry itself (keys, refcount, rounds handed
to late joiners, failures) is tested with a fake hook: no pachd, no timing.

As in the other trigger tests, everything is awaited on events, never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from pipeline_specs import copy_spec as spec

from cpsign_airflow.exceptions import PachydermUnavailable
from cpsign_airflow.hooks.pachyderm import AsyncPachydermSession, PachdAddress, PachydermHook
from cpsign_airflow.triggers import pachyderm as trigger_module
from cpsign_airflow.triggers.pachyderm import PachydermCommitSetTrigger

TIMEOUT = 30
MISSING = "cpsign-no-such-binary"
N = 12
GRACE, INTERVAL = 0.5, 0.1


class PerWaitTrigger(PachydermCommitSetTrigger):
    """Each wait checks its pipelines for itself, as before the sharing."""

    share_pipeline_check = False


def trigger_for(commit_set_id: str, cls: type = PachydermCommitSetTrigger, **kwargs: Any) -> Any:
    kwargs.setdefault("reconnect_backoff", 0.05)
    kwargs.setdefault("pipeline_grace_period", GRACE)
    kwargs.setdefault("pipeline_check_interval", INTERVAL)
    return cls(commit_set_id=commit_set_id, **kwargs)


async def first_event(trigger: PachydermCommitSetTrigger) -> dict[str, Any]:
    gen = trigger.run()
    try:
        event = await asyncio.wait_for(anext(gen), TIMEOUT)
    finally:
        await gen.aclose()
    return event.payload


def loop_checks() -> dict[Any, Any]:
    """The running loop's shared checks, by key."""
    return trigger_module._PIPELINE_CHECKS.get(asyncio.get_running_loop(), {})


class Spy:
    """Counts joins and InspectPipeline rounds (what each asked for), with events."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.rounds: list[list[tuple[str, str]]] = []
        self.joins = 0
        self._waiters: list[tuple[Any, asyncio.Event]] = []
        spy = self
        inspect = AsyncPachydermSession.inspect_pipelines
        join = trigger_module._SharedPipelineCheck.join

        async def inspecting(
            session: AsyncPachydermSession, pipelines: Iterable[tuple[str, str]]
        ) -> list[dict[str, Any]]:
            asked = list(pipelines)
            try:
                return await inspect(session, asked)
            finally:
                spy.rounds.append(asked)
                # once the round has handed out its states and counted itself
                asyncio.get_running_loop().call_soon(spy._wake)

        def joining(check: Any, *args: Any, **kwargs: Any) -> Any:
            lease = join(check, *args, **kwargs)
            spy.joins += 1
            spy._wake()
            return lease

        monkeypatch.setattr(AsyncPachydermSession, "inspect_pipelines", inspecting)
        monkeypatch.setattr(trigger_module._SharedPipelineCheck, "join", joining)

    def _wake(self) -> None:
        for condition, event in self._waiters:
            if condition():
                event.set()

    async def until(self, condition: Any) -> None:
        event = asyncio.Event()
        self._waiters.append((condition, event))
        self._wake()
        try:
            await asyncio.wait_for(event.wait(), TIMEOUT)
        finally:
            self._waiters.remove((condition, event))


@pytest.fixture
def spy(monkeypatch) -> Spy:
    return Spy(monkeypatch)


def gated_chain(hook: PachydermHook, pachd: Any, name: str) -> tuple[str, str, threading.Event]:
    """in -> a -> b, a's jobs held until the returned gate is set; returns (a, b, gate)."""
    repo, first, second = f"{name}-in", f"{name}-a", f"{name}-b"
    gate = threading.Event()
    hook.ensure_repo(repo)
    hook.create_or_update_pipeline(spec(first, repo))
    hook.create_or_update_pipeline(spec(second, first))
    pachd.configure_pipeline(first, duration=0, handler=lambda ctx: gate.wait(TIMEOUT))
    return first, second, gate


def commit_sets(hook: PachydermHook, name: str, n: int = N) -> list[str]:
    return [hook.put_file(f"{name}-in", "/c", data=str(i)) for i in range(n)]


# ---------------------------------------------------------------- against a pachd


async def test_waits_on_one_chain_cost_one_inspect_per_pipeline_per_interval(
    hook, pachd, spy, unique_name
):
    first, second, gate = gated_chain(hook, pachd, unique_name)
    commits = commit_sets(hook, unique_name)
    pipelines = {("default", first), ("default", second)}
    tasks = [
        asyncio.create_task(first_event(trigger_for(c, pipeline_grace_period=60))) for c in commits
    ]
    try:
        await spy.until(lambda: spy.joins == N)
        [check] = loop_checks().values()  # one check for all N waits ...
        assert len(check.leases) == N
        # ... asking for each pipeline once a round: count 5 rounds at pachd, from the
        # end of one (the next is an interval away)
        after = len(spy.rounds) + 1
        await spy.until(lambda: len(spy.rounds) >= after)
        rounds0 = len(spy.rounds)
        calls0 = pachd.call_counts()["InspectPipeline"]
        loop = asyncio.get_running_loop()
        started = loop.time()
        await spy.until(lambda: len(spy.rounds) >= rounds0 + 5)
        elapsed = loop.time() - started
        calls = pachd.call_counts()["InspectPipeline"] - calls0
        window = spy.rounds[rounds0 : rounds0 + 5]
        assert len(spy.rounds) == rounds0 + 5
        assert all(sorted(asked) == sorted(pipelines) for asked in window)
        assert calls == 5 * len(pipelines)  # per round: 2 pipelines, whatever N
        assert elapsed >= 4 * INTERVAL  # one round per interval
    finally:
        gate.set()
    events = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    assert [e["status"] for e in events] == ["finished"] * N
    assert sorted(e["commit_set_id"] for e in events) == sorted(commits)
    assert loop_checks() == {}  # the last wait to leave stopped the check
    with pytest.raises(asyncio.CancelledError):
        await check._task


async def test_per_wait_checks_cost_one_inspect_per_pipeline_per_wait(
    hook, pachd, spy, unique_name
):
    """The control: with sharing off, each wait has its own check (as before)."""
    _first, _second, gate = gated_chain(hook, pachd, unique_name)
    commits = commit_sets(hook, unique_name)
    tasks = [
        asyncio.create_task(first_event(trigger_for(c, PerWaitTrigger, pipeline_grace_period=60)))
        for c in commits
    ]
    try:
        await spy.until(lambda: spy.joins == N)
        checks = list(loop_checks().values())
        assert len(checks) == N and all(len(c.leases) == 1 for c in checks)
        rounds0 = [c.rounds for c in checks]  # + 3: 2 whole rounds after calls0
        calls0 = pachd.call_counts()["InspectPipeline"]
        await spy.until(
            lambda: all(c.rounds >= r + 3 for c, r in zip(checks, rounds0, strict=True))
        )
        assert pachd.call_counts()["InspectPipeline"] - calls0 >= 2 * 2 * N
    finally:
        gate.set()
    events = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    assert [e["status"] for e in events] == ["finished"] * N
    assert loop_checks() == {}


async def test_crashing_pipeline_fails_every_waiting_trigger_after_the_grace(
    hook, pachd, spy, unique_name
):
    repo, first, second = f"{unique_name}-in", f"{unique_name}-a", f"{unique_name}-b"
    hook.ensure_repo(repo)
    pachd.unpullable_images.add("lab/missing:1")  # its workers cannot start: CRASHING
    hook.create_or_update_pipeline(spec(first, repo, [MISSING], image="lab/missing:1"))
    hook.create_or_update_pipeline(spec(second, first))
    commits = commit_sets(hook, unique_name)
    loop = asyncio.get_running_loop()
    calls0 = pachd.call_counts()["InspectPipeline"]

    async def timed(commit: str) -> tuple[float, dict[str, Any]]:
        started = loop.time()
        event = await first_event(trigger_for(commit))
        return loop.time() - started, event

    # half the waits start together; the others once the check has run (they join it late)
    started = loop.time()
    early = [asyncio.create_task(timed(c)) for c in commits[: N // 2]]
    await spy.until(lambda: spy.rounds)
    late = [asyncio.create_task(timed(c)) for c in commits[N // 2 :]]
    results = await asyncio.wait_for(asyncio.gather(*early, *late), TIMEOUT)
    total = loop.time() - started
    for (elapsed, event), commit in zip(results, commits, strict=True):
        assert event["status"] == "pipeline_unhealthy"
        assert event["commit_set_id"] == commit
        assert (event["pipeline"], event["state"]) == (first, "PIPELINE_CRASHING")
        assert event["reason"] == 'Back-off pulling image "lab/missing:1"'
        assert [p["pipeline"] for p in event["pipelines"]] == [first]
        assert event["grace_period"] == GRACE
        assert event["unhealthy_seconds"] >= GRACE
        assert elapsed >= GRACE
        assert json.loads(json.dumps(event)) == event
    # pachd was asked about each pipeline once a round, not once per wait
    calls = pachd.call_counts()["InspectPipeline"] - calls0
    assert calls == sum(len(asked) for asked in spy.rounds)
    assert len(spy.rounds) <= total / INTERVAL + 1  # one check's rounds, not one per wait
    assert all(len(asked) == len(set(asked)) <= 2 for asked in spy.rounds)
    assert {p for asked in spy.rounds for _, p in asked} == {first, second}
    assert loop_checks() == {}
    assert pachd.call_counts()["StopJob"] == 0  # the jobs were left alone


# ---------------------------------------------------------------- the registry, on a fake hook


class FakeHook:
    """Just what the registry uses of a hook. ``paced``: each round waits for
    :meth:`answer`, so the test decides when rounds happen and what they get."""

    def __init__(self, token: str | None = None, port: int = 30650, paced: bool = False) -> None:
        self.address = PachdAddress(host="pachd", port=port, token=token)
        self.asked: list[list[tuple[str, str]]] = []
        self._answers: asyncio.Queue[bool] | None = asyncio.Queue() if paced else None

    def answer(self, ok: bool = True) -> None:
        assert self._answers is not None
        self._answers.put_nowait(ok)

    async def aget_address(self) -> PachdAddress:
        return self.address

    @contextlib.asynccontextmanager
    async def async_session(self) -> AsyncIterator[FakeHook]:
        yield self

    async def inspect_pipelines(self, pipelines: Iterable[tuple[str, str]]) -> list[dict]:
        asked = list(pipelines)
        ok = True if self._answers is None else await self._answers.get()
        self.asked.append(asked)
        if not ok:
            raise PachydermUnavailable("pachd gone")
        return [
            {"project": p, "pipeline": n, "state": "PIPELINE_RUNNING", "reason": None}
            for p, n in asked
            if n != "gone"
        ]


async def join(
    hook: FakeHook, pending: list, interval: float = 3600, since: float = 0.0, **kwargs: Any
) -> Any:
    """A lease for a wait started at ``since`` (loop time; by default before any round)."""
    return await trigger_module._join_pipeline_check(
        hook, interval, lambda: list(pending), since=since, **kwargs
    )


def names(states: list[dict]) -> list[str]:
    return [s["pipeline"] for s in states]


async def test_registry_shares_by_pachd_token_and_interval_and_stops_with_the_last_lease():
    a, b = ("default", "a"), ("default", "b")
    hook = FakeHook(token="t1")
    first = await join(hook, [a, b])
    checked_at, states = await first.next_round()  # the first lease: a round at once
    assert names(states) == ["a", "b"] and hook.asked == [[a, b]]
    # same pachd, token and interval: shared; the last round covers it, handed at once
    second = await join(FakeHook(token="t1"), [b])
    assert await second.next_round() == (checked_at, [states[1]])
    assert len(loop_checks()) == 1 and hook.asked == [[a, b]]
    # another token, port or interval, or sharing off: a check of its own
    others = [
        await join(FakeHook(token="t2"), [a]),
        await join(FakeHook(token="t1", port=1), [a]),
        await join(FakeHook(token="t1"), [a], interval=60),
        await join(FakeHook(token="t1"), [a], shared=False),
    ]
    assert len(loop_checks()) == 5
    for lease in others:
        lease.leave()
    first.leave()
    assert len(loop_checks()) == 1  # still held by `second`
    [check] = loop_checks().values()
    task = check._task
    second.leave()
    assert loop_checks() == {}
    with pytest.raises(asyncio.CancelledError):
        await task  # stopped: nobody waits


async def test_registry_rounds_ask_each_pipeline_once_and_hand_each_lease_its_own():
    a, b, c, gone = (("default", n) for n in ("a", "b", "c", "gone"))
    hook = FakeHook(paced=True)
    pending_1, pending_2 = [a, b], [b, c, gone]
    lease_1 = await join(hook, pending_1, interval=0.001)
    hook.answer()
    assert names((await lease_1.next_round())[1]) == ["a", "b"]
    lease_2 = await join(hook, pending_2, interval=0.001)  # not covered: the next round
    hook.answer()
    _, states_1 = await lease_1.next_round()
    _, states_2 = await lease_2.next_round()
    assert hook.asked == [[a, b], [a, b, c, gone]]  # once each, whatever the leases
    assert names(states_1) == ["a", "b"]
    assert names(states_2) == ["b", "c"]  # a pipeline pachd no longer has is left out
    # a failed round hands every lease the error; the next one works again
    hook.answer(ok=False)
    assert isinstance((await lease_1.next_round())[1], PachydermUnavailable)
    assert isinstance((await lease_2.next_round())[1], PachydermUnavailable)
    pending_2.clear()  # nothing left to check for lease 2: told so (None)
    hook.answer()
    assert names((await lease_1.next_round())[1]) == ["a", "b"]
    assert (await lease_2.next_round())[1] is None
    assert hook.asked[-1] == [a, b]
    lease_2.leave()
    lease_1.leave()
    assert loop_checks() == {}


async def test_a_round_older_than_the_wait_is_not_its_first_check():
    a = ("default", "a")
    hook = FakeHook(paced=True)
    lease_1 = await join(hook, [a], interval=0.001)
    hook.answer()
    checked_at, _ = await lease_1.next_round()
    lease_2 = await join(hook, [a], interval=0.001, since=checked_at + 1e-9)
    hook.answer()
    later, states = await lease_2.next_round()  # the next round's, not the one before it
    assert later > checked_at and names(states) == ["a"]
    lease_1.leave()
    lease_2.leave()
