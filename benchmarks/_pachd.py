"""Benchmark-only: a LocalPachd in a child process, steered over a pipe.

``python -m cpsign_airflow.testing.pachd`` cannot take a Python pipeline
handler, and the benchmarks need jobs that finish at a moment they choose. So
the child configures *gated* pipelines itself: each job's handler blocks on a
``threading.Event`` in the child until the parent sends ``release``, then the
job finishes at once (duration 0). The child is started with the ``spawn``
method, so it shares no gRPC state with the measuring process.
"""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

from benchmarks import _common


def _serve(conn: Any, host: str) -> None:
    from cpsign_airflow.testing.pachd import LocalPachd

    gates: dict[str, threading.Event] = {}
    pachd = LocalPachd(host=host, port=0).start()
    try:
        conn.send(pachd.address)
        while True:
            try:
                command, *args = conn.recv()
            except EOFError:
                return
            if command == "stop":
                conn.send(None)
                return
            if command == "gate":
                # A new gate per call: jobs started after this block until released.
                (pipeline,) = args
                gate = gates[pipeline] = threading.Event()

                def handler(ctx: Any, gate: threading.Event = gate) -> None:
                    gate.wait()

                pachd.configure_pipeline(pipeline, duration=0, handler=handler)
                conn.send(None)
            elif command == "release":
                (pipeline,) = args
                gates[pipeline].set()
                conn.send(None)
            elif command == "configure":
                pipeline, kwargs = args
                pachd.configure_pipeline(pipeline, **kwargs)
                conn.send(None)
            elif command == "counts":
                conn.send(dict(pachd.call_counts()))
            else:
                conn.send(ValueError(f"unknown command {command!r}"))
    finally:
        pachd.stop()


class PachdProcess:
    """A LocalPachd in a spawned child process. Thread-safe (one request at a time)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._lock = threading.Lock()
        self.process = ctx.Process(
            target=_serve, args=(child, host), name="bench-local-pachd", daemon=True
        )
        self.process.start()
        child.close()
        if not self._conn.poll(60):
            raise RuntimeError("local pachd process did not start within 60 s")
        self.address: str = self._conn.recv()

    def _ask(self, *message: Any) -> Any:
        with self._lock:
            self._conn.send(message)
            answer = self._conn.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    def gate(self, pipeline: str) -> None:
        """Make ``pipeline``'s jobs from now on wait for :meth:`release`."""
        self._ask("gate", pipeline)

    def release(self, pipeline: str) -> None:
        self._ask("release", pipeline)

    def configure(self, pipeline: str, **kwargs: Any) -> None:
        self._ask("configure", pipeline, kwargs)

    def counts(self) -> dict[str, int]:
        """RPCs served so far, by method name."""
        return self._ask("counts")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the pachd process has used so far."""
        return _common.process_cpu_seconds(self.process.pid)

    def total_calls(self) -> int:
        return sum(self.counts().values())

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self._ask("stop")
            except (EOFError, BrokenPipeError, OSError):
                pass
            self.process.join(30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)

    def __enter__(self) -> PachdProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
