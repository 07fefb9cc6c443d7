"""Waiting and notification, shared by the services' backends; the save-after-change hook.

Everything here is touched only from the server's asyncio loop, so no locks are
needed. Waiting is event driven (no polling) and targeted: a waiter registers a
future under the records its predicate reads (commits, repos, jobs), and a
mutation wakes only the futures registered under the records it changed, so
with 1,000 open streams finishing one job does not wake 1,000 of them. Rare,
structural mutations (repos, branches, pipelines) and a restart wake everyone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import grpc

from .errors import PachdError

RESTARTING = "pachd is restarting; retry"


class Events:
    """The waiters of every service, the restart flag, and the hook that saves changes."""

    def __init__(self) -> None:
        # every pending waiter, and the same futures keyed by the records they watch
        self._waiters: set[asyncio.Future[None]] = set()
        self._watching: dict[object, set[asyncio.Future[None]]] = {}
        self.restarting = False
        # set by the server with persistence: called (debounced) after mutations
        self.on_dirty: Callable[[], None] | None = None

    def mark_dirty(self) -> None:
        if self.on_dirty is not None:
            self.on_dirty()

    def notify(self, *changed: object) -> None:
        """Wake the waiters watching any of ``changed``; with no argument, every waiter.

        Waiters re-check their predicate when woken (loop thread only).
        """
        if not changed:
            woken, self._waiters = self._waiters, set()
            self._watching.clear()
        else:
            woken = set()
            for record in changed:
                futures = self._watching.pop(record, None)
                if futures:
                    woken |= futures
        for fut in woken:
            if not fut.done():
                fut.set_result(None)

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        watch: Callable[[], Iterable[object]],
        *,
        abort_on_restart: bool = True,
    ) -> None:
        """Block until ``predicate()`` holds.

        ``watch()`` names the records whose changes can make it true (evaluated
        at each wait, so it may follow the records' current links); a notify of
        any of them, or a notify of everything, re-checks the predicate. A
        restart aborts the wait with UNAVAILABLE when ``abort_on_restart`` (RPC
        streams); job tasks pass False and keep waiting through a restart.
        """
        loop = asyncio.get_running_loop()
        while True:
            if abort_on_restart and self.restarting:
                raise PachdError(grpc.StatusCode.UNAVAILABLE, RESTARTING)
            if predicate():
                return
            fut: asyncio.Future[None] = loop.create_future()
            records = list(watch())
            self._waiters.add(fut)
            for record in records:
                self._watching.setdefault(record, set()).add(fut)
            try:
                await fut
            finally:
                self._waiters.discard(fut)
                for record in records:
                    futures = self._watching.get(record)
                    if futures is not None:
                        futures.discard(fut)
                        if not futures:
                            del self._watching[record]
