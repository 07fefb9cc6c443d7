"""What the models page shows, read from the bookkeeping store through a read-only session.

The page never writes: :func:`open_reader` asks :class:`BookkeepingHook` for an
engine whose every database session is read-only, and the ledger's schema check
applies (an outdated store is reported, never migrated from here).

"Live" is what is served: the newest *published* model of the workflow (model
store or prediction service). A workflow that never recorded a publication shows
its newest *accepted* model instead (of a succeeded run, passed by the quality
gate or not gated), labelled as such. A held-back model is never either; an
``unchanged`` model is the earlier one already. Both are looked for among the
newest :data:`HISTORY_LIMIT` runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from cpsign_airflow.cpsign.quality import by_confidence as _by_confidence

if TYPE_CHECKING:
    from cpsign_airflow.bookkeeping.ledger import TrainingLedger
    from cpsign_airflow.bookkeeping.records import (
        ArtifactRecord,
        JobRecord,
        RunRecord,
        WorkflowRecord,
    )

#: Quality verdicts a model can go live with (None: the run had no gate).
LIVE_VERDICTS = ("passed", None)
#: Runs shown in a workflow's history (newest first).
HISTORY_LIMIT = 200
#: The largest run id the store can hold: its ids are INTEGER columns, a signed 32-bit
#: INT on MySQL/MariaDB. A larger id names no run (SQLite would fail to bind one
#: beyond 64 bits rather than find nothing).
MAX_RUN_ID = 2**31 - 1


class WorkflowNotFound(LookupError):
    """No workflow of that name is recorded."""


@dataclass(frozen=True)
class RunView:
    run: RunRecord
    models: list[ArtifactRecord] = field(default_factory=list)

    @property
    def duration(self) -> timedelta | None:
        end = self.run.finished_at
        return end - self.run.started_at if end is not None else None

    @property
    def held_back(self) -> bool:
        return any(m.quality == "held_back" for m in self.models)


@dataclass(frozen=True)
class WorkflowSummary:
    workflow: WorkflowRecord
    latest: RunRecord | None
    live: ArtifactRecord | None


@dataclass(frozen=True)
class WorkflowHistory:
    workflow: WorkflowRecord
    runs: list[RunView]  # newest first
    live: ArtifactRecord | None


@dataclass(frozen=True)
class RunDetail:
    run: RunRecord
    workflow: WorkflowRecord | None
    jobs: list[JobRecord]
    models: list[ArtifactRecord]


@dataclass(frozen=True)
class HistoryPoint:
    """One model on the history plot: validity (coverage) and efficiency at one confidence."""

    run_id: int
    validity: float | None
    efficiency: float | None
    held_back: bool


class ModelsReader:
    """Read-only queries of the page, over a ledger."""

    def __init__(self, ledger: TrainingLedger) -> None:
        self.ledger = ledger

    def workflows(self) -> list[WorkflowSummary]:
        out = []
        for wf in self.ledger.list_workflows():
            history = self.history(wf.name, limit=HISTORY_LIMIT)
            latest = history.runs[0].run if history.runs else None
            out.append(WorkflowSummary(wf, latest, history.live))
        return out

    def history(self, workflow: str, *, limit: int = HISTORY_LIMIT) -> WorkflowHistory:
        record = self.ledger.get_workflow(workflow)
        if record is None:
            raise WorkflowNotFound(f"no workflow named {workflow!r} in the bookkeeping store")
        runs = self.ledger.list_runs(workflow, limit=limit)
        models = self.ledger.artifacts_of_runs(run.id for run in runs)
        views = [RunView(run, models.get(run.id, [])) for run in runs]
        return WorkflowHistory(record, views, live_model(views))

    def run(self, run_id: int) -> RunDetail:
        if isinstance(run_id, int) and run_id > MAX_RUN_ID:
            from cpsign_airflow.bookkeeping.errors import RunNotFound

            raise RunNotFound(f"No training run {run_id} in the bookkeeping store")
        run = self.ledger.get_run(run_id)
        return RunDetail(
            run,
            self.ledger.get_workflow(run.workflow),
            self.ledger.list_jobs(run.id),
            self.ledger.list_artifacts(run.id),
        )


def live_model(runs: Sequence[RunView]) -> ArtifactRecord | None:
    """The newest published model, else the newest accepted one (``runs`` newest first)."""
    accepted = [
        model
        for view in runs
        if view.run.status == "succeeded"
        for model in view.models
        if model.quality in LIVE_VERDICTS
    ]
    published = [m for m in accepted if m.publication_status == "published"]
    return (published or accepted or [None])[0]


@contextmanager
def open_reader(bookkeeping_conn_id: str) -> Iterator[ModelsReader]:
    """A reader on the connection's store, read-only, failing fast (one attempt)."""
    from cpsign_airflow.bookkeeping.engine import RetryPolicy
    from cpsign_airflow.bookkeeping.hook import BookkeepingHook

    hook = BookkeepingHook(bookkeeping_conn_id, retry=RetryPolicy(attempts=1), read_only=True)
    try:
        with hook.get_ledger() as ledger:
            yield ModelsReader(ledger)
    finally:
        hook.close()


# --------------------------------------------------------------------------- metrics
# (a model's metrics by confidence are read by cpsign_airflow.cpsign.quality)


def confidences(runs: Sequence[RunView]) -> list[float]:
    """Every confidence some model of ``runs`` has an error rate at, ascending."""
    found: set[float] = set()
    for view in runs:
        for model in view.models:
            found.update(_by_confidence((model.metrics or {}).get("error_rate")))
    return sorted(found)


def default_confidence(runs: Sequence[RunView]) -> float | None:
    """The newest model's first configured confidence: what its validation targeted first."""
    for view in runs:
        for model in view.models:
            metrics = model.metrics or {}
            rates = _by_confidence(metrics.get("error_rate"))
            for c in metrics.get("confidences") or []:
                try:
                    if round(float(c), 9) in rates:
                        return round(float(c), 9)
                except (TypeError, ValueError):
                    continue
            if rates:
                return min(rates)
    return None


def history_points(runs: Sequence[RunView], confidence: float) -> list[HistoryPoint]:
    """Oldest first: each run's first model with metrics at ``confidence``."""
    points = []
    for view in reversed(runs):
        for model in view.models:
            metrics = model.metrics or {}
            rates = _by_confidence(metrics.get("error_rate"))
            if confidence not in rates:
                continue
            efficiency = _by_confidence(metrics.get("efficiency")).get(confidence)
            points.append(
                HistoryPoint(
                    run_id=view.run.id,
                    validity=1.0 - rates[confidence],
                    efficiency=efficiency,
                    held_back=model.quality == "held_back",
                )
            )
            break
    return points


def efficiency_label(runs: Sequence[RunView]) -> str:
    """What efficiency means for the workflow's predictor type."""
    for view in runs:
        for model in view.models:
            metrics = model.metrics or {}
            if "median_interval_width" in metrics:
                return "median interval width (smaller is better)"
            if "single_label_share" in metrics:
                return "single-label share (larger is better)"
    return "efficiency"
