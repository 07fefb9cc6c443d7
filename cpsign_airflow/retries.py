"""The one retry policy: pachd calls (the hook), the trigger's reopened wait and
bookkeeping transactions all retry through :class:`RetryPolicy`, on tenacity.

A policy is ``attempts`` in all (None: no limit), a first pause of ``backoff`` seconds
that doubles each retry, and a ceiling ``max_backoff`` on every pause. What is worth
another try is the caller's ``reason`` function: the reason for the log, or None for
an error to raise at once. Each retry is handed to the caller's ``on_retry`` with its
number, that reason and the pause, so each caller logs it in its own words (and scrubs
its secrets from the reason first). When the attempts run out, the last error is
raised, or what the caller's ``on_give_up`` makes of it and the number of attempts.

Pauses go through ``time.sleep`` / ``asyncio.sleep`` looked up at each pause, so a test
that patches them patches the retries too. tenacity is imported when a policy first
runs: importing this module (DAG files do, through the operators) costs nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tenacity import AsyncRetrying, RetryCallState, Retrying

T = TypeVar("T")

#: Why an error is worth another try (for the log), or None when it is not.
ReasonFn = Callable[[BaseException], str | None]
#: Told of each retry: ``(retry number, reason, pause in seconds)``, before the pause.
OnRetry = Callable[[int, str, float], None]
#: Told of the last error when the attempts ran out: ``(error, attempts)``; returns
#: the exception to raise instead (``raise ... from error``), or None to raise the error.
OnGiveUp = Callable[[BaseException, int], BaseException | None]


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up now: tests may patch time.sleep


def _asleep(seconds: float) -> Awaitable[None]:
    return asyncio.sleep(seconds)  # looked up now: tests may patch asyncio.sleep


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and the pause before each retry.

    :param attempts: attempts in all, the first included; None: retry without limit.
    :param backoff: pause before the first retry, in seconds; doubled for each next one.
    :param max_backoff: ceiling of every pause.
    """

    attempts: int | None = 5
    backoff: float = 0.5
    max_backoff: float = 5.0

    @classmethod
    def from_retries(cls, max_retries: int, backoff: float, max_backoff: float) -> RetryPolicy:
        """The policy of ``max_retries`` retries after the first attempt."""
        return cls(attempts=max_retries + 1, backoff=backoff, max_backoff=max_backoff)

    def pause(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first)."""
        return min(self.max_backoff, self.backoff * 2 ** (retry - 1))

    def _options(self, reason: ReasonFn, on_retry: OnRetry | None) -> dict[str, Any]:
        import tenacity

        def before_sleep(state: RetryCallState) -> None:
            if on_retry is not None:
                error = state.outcome.exception() if state.outcome else None
                assert error is not None  # only failed attempts are retried
                on_retry(
                    state.attempt_number, reason(error) or "", self.pause(state.attempt_number)
                )

        return {
            "stop": (
                tenacity.stop_never
                if self.attempts is None
                else tenacity.stop_after_attempt(max(1, self.attempts))
            ),
            "wait": lambda state: self.pause(state.attempt_number),
            "retry": tenacity.retry_if_exception(lambda error: reason(error) is not None),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def retrying(self, reason: ReasonFn, on_retry: OnRetry | None = None) -> Retrying:
        """A tenacity ``Retrying`` on this policy, for ``for attempt in ...: with attempt:``."""
        import tenacity

        return tenacity.Retrying(sleep=_sleep, **self._options(reason, on_retry))

    def async_retrying(self, reason: ReasonFn, on_retry: OnRetry | None = None) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying`` on this policy, for ``async for attempt in ...``.
        ``restart(attempt)`` inside an attempt makes the next retry the first again."""
        import tenacity

        return tenacity.AsyncRetrying(sleep=_asleep, **self._options(reason, on_retry))

    async def acall(
        self,
        fn: Callable[[Callable[[], None]], Awaitable[T]],
        reason: ReasonFn,
        on_retry: OnRetry | None = None,
    ) -> T:
        """``await fn(progress)``, tried again while ``reason`` names one and attempts are
        left; the last error is raised. ``fn`` calls ``progress()`` when it made headway
        (a stream delivered something): the next failure is retry 1 again, after the
        first pause.

        For attempts that may last hours, such as a streaming wait: the first attempt runs
        before tenacity's machinery is built, so a wait that never breaks holds none of it
        (~3 KB each, so ~3 MB for the 1,000 waits a triggerer may hold). Its failure is
        then tenacity's first attempt, so the numbering, pauses and logs are the same.
        """
        try:
            return await fn(_no_progress)
        except Exception as error:
            if reason(error) is None:
                raise
            first: BaseException | None = error
        async for attempt in self.async_retrying(reason, on_retry):
            with attempt:
                if first is not None:
                    failed, first = first, None
                    raise failed
                return await fn(lambda attempt=attempt: restart(attempt))
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover

    def call(
        self,
        fn: Callable[[], T],
        reason: ReasonFn,
        on_retry: OnRetry | None = None,
        on_give_up: OnGiveUp | None = None,
    ) -> T:
        """``fn()``, tried again while ``reason`` names one and attempts are left.

        An error ``reason`` has no reason for is raised at once; the last retryable one,
        once the attempts ran out, goes through ``on_give_up`` when given.
        """
        retrying = self.retrying(reason, on_retry)
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    return fn()
        except Exception as error:
            if on_give_up is None or reason(error) is None:
                raise
            replacement = on_give_up(error, attempts)
            if replacement is None:
                raise
            raise replacement from error
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover


def _no_progress() -> None:
    """``progress()`` of a first attempt: its failure is retry 1 whatever it did."""


def restart(attempt: Any) -> None:
    """Inside a tenacity attempt: count the retries anew (the next failure is retry 1, after
    the first pause). For a long wait whose progress makes a broken stream a fresh start."""
    attempt.retry_state.attempt_number = 1
