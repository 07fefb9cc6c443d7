"""The one retry policy's async call (``RetryPolicy.acall``), which the commit-set
trigger's streaming wait runs on: numbering, pauses, progress and give-up, and that a
first attempt holds none of tenacity's machinery."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from cpsign_airflow.retries import RetryPolicy


class Broken(Exception):
    pass


class Fatal(Exception):
    pass


def reason(err: BaseException) -> str | None:
    return f"broken: {err}" if isinstance(err, Broken) else None


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses asked for, without pausing (the policy looks asyncio.sleep up each time)."""
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return asked


def run(
    policy: RetryPolicy,
    script: list[str],
    retries: list[tuple[int, str, float]],
) -> tuple[str, int]:
    """``policy.acall`` of an attempt that follows ``script``, one entry per attempt:
    "ok", "broken", "fatal", or "progress+broken" (headway, then a break)."""
    calls = 0

    async def attempt(progress: Callable[[], None]) -> str:
        nonlocal calls
        step = script[calls]
        calls += 1
        if step.startswith("progress+"):
            progress()
            step = step.removeprefix("progress+")
        if step == "broken":
            raise Broken(f"attempt {calls}")
        if step == "fatal":
            raise Fatal(f"attempt {calls}")
        return f"done after {calls}"

    result = asyncio.run(
        policy.acall(attempt, reason, lambda n, why, pause: retries.append((n, why, pause)))
    )
    return result, calls


def test_retries_are_numbered_and_paused_by_the_policy(pauses: list[float]) -> None:
    retries: list[tuple[int, str, float]] = []
    policy = RetryPolicy(attempts=None, backoff=0.5, max_backoff=1.5)
    result, calls = run(policy, ["broken", "broken", "broken", "ok"], retries)
    assert (result, calls) == ("done after 4", 4)
    assert retries == [
        (1, "broken: attempt 1", 0.5),
        (2, "broken: attempt 2", 1.0),
        (3, "broken: attempt 3", 1.5),
    ]
    assert pauses == [0.5, 1.0, 1.5]


def test_progress_makes_the_next_failure_retry_one_again(pauses: list[float]) -> None:
    retries: list[tuple[int, str, float]] = []
    policy = RetryPolicy(attempts=None, backoff=0.5, max_backoff=5.0)
    script = ["broken", "broken", "progress+broken", "ok"]
    result, calls = run(policy, script, retries)
    assert (result, calls) == ("done after 4", 4)
    assert [n for n, _, _ in retries] == [1, 2, 1]
    assert pauses == [0.5, 1.0, 0.5]


def test_an_error_without_a_reason_is_raised_at_once(pauses: list[float]) -> None:
    retries: list[tuple[int, str, float]] = []
    with pytest.raises(Fatal, match="attempt 1"):
        run(RetryPolicy(attempts=None), ["fatal"], retries)
    with pytest.raises(Fatal, match="attempt 2"):
        run(RetryPolicy(attempts=None), ["broken", "fatal"], retries)
    assert [n for n, _, _ in retries] == [1]


def test_the_last_error_is_raised_when_the_attempts_run_out(pauses: list[float]) -> None:
    retries: list[tuple[int, str, float]] = []
    with pytest.raises(Broken, match="attempt 3"):
        run(RetryPolicy(attempts=3, backoff=0.5), ["broken"] * 5, retries)
    assert [n for n, _, _ in retries] == [1, 2]
    assert pauses == [0.5, 1.0]


def test_a_first_attempt_builds_no_retry_machinery(
    pauses: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wait that never breaks holds nothing of tenacity (1,000 waits held at once)."""
    built: list[int] = []
    original = RetryPolicy.async_retrying

    def counting(self: RetryPolicy, *args: object) -> object:
        built.append(1)
        return original(self, *args)

    monkeypatch.setattr(RetryPolicy, "async_retrying", counting)
    assert run(RetryPolicy(attempts=None), ["ok"], [])[0] == "done after 1"
    assert built == []
    assert run(RetryPolicy(attempts=None), ["broken", "ok"], [])[0] == "done after 2"
    assert built == [1]
