"""A local-pachd pipeline whose jobs block until the test opens a gate: no sleeping, no polling."""

from __future__ import annotations

import threading

from cpsign_airflow.testing.pachd import JobContext, PipelineFailure

#: Seconds a blocked job waits at most, so a failing test cannot hang pachd's shutdown.
LIMIT = 120.0


class JobGate:
    """``pachd.configure_pipeline(name, handler=gate.handler)``; use as a context manager.

    A job of the pipeline announces itself (``started``, ``jobs``) and blocks until
    :meth:`open`. By default the job a new pipeline runs on its input's empty first
    commit passes straight through; ``block_empty=True`` blocks it too. Leaving the
    ``with`` block opens the gate.
    """

    def __init__(self, *, block_empty: bool = False) -> None:
        self.block_empty = block_empty
        self.started = threading.Event()
        self.opened = threading.Event()
        self.jobs: list[str] = []

    def handler(self, ctx: JobContext) -> None:
        if not ctx.inputs and not self.block_empty:
            return
        self.jobs.append(ctx.job_id)
        self.started.set()
        if not self.opened.wait(LIMIT):
            raise PipelineFailure("the test never opened the gate")

    def wait_started(self) -> None:
        assert self.started.wait(LIMIT), "no job of the gated pipeline started"

    def open(self) -> None:
        self.opened.set()

    def __enter__(self) -> JobGate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.open()
