"""Fault injection: failing calls, added latency and cut streams."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import grpc


@dataclass
class _PendingFailure:
    remaining: int
    code: grpc.StatusCode
    message: str
    methods: frozenset[str] | None

    def matches(self, short: str, full: str) -> bool:
        return self.methods is None or short in self.methods or full in self.methods


class Faults:
    """Thread-safe fault configuration consulted by every served call.

    ``methods`` entries may be short names (``"InspectCommit"``) or qualified ones
    (``"pfs_v2.API/InspectCommit"``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[_PendingFailure] = []
        self._stream_cuts: list[int] = []
        self.latency: float = 0.0

    def fail_next(
        self,
        n: int = 1,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        methods: Iterable[str] | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``n`` calls (of ``methods``, if given) with ``code``."""
        with self._lock:
            self._failures.append(
                _PendingFailure(
                    remaining=n,
                    code=code,
                    message=message or f"injected fault: {code.name}",
                    methods=frozenset(methods) if methods is not None else None,
                )
            )

    def cut_next_stream(self, after: int = 0) -> None:
        """Abort the next server-streaming response with UNAVAILABLE after ``after`` messages."""
        with self._lock:
            self._stream_cuts.append(after)

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._stream_cuts.clear()
            self.latency = 0.0

    def take_failure(self, short: str, full: str) -> tuple[grpc.StatusCode, str] | None:
        with self._lock:
            for failure in self._failures:
                if failure.remaining > 0 and failure.matches(short, full):
                    failure.remaining -= 1
                    if failure.remaining == 0:
                        self._failures.remove(failure)
                    return failure.code, failure.message
        return None

    def take_stream_cut(self) -> int | None:
        with self._lock:
            return self._stream_cuts.pop(0) if self._stream_cuts else None
