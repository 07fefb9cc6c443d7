"""A bookkeeping store with a realistic history, written through the ledger's own API.

What the models page's tests and its README screenshot show: a regression
workflow retrained over several weeks, with a failed run, a rejected
configuration, a model the quality gate held back, an unchanged retraining and
published models; and a classification workflow beside it. Times come from a
clock the writer advances (the ledger stamps rows with ``records.utcnow``), so
runs are spread over weeks and have durations.

``python -m cpsign_airflow.testing.model_history sqlite:////tmp/history.db``
writes it into a new store.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

from cpsign_airflow.bookkeeping import records
from cpsign_airflow.bookkeeping.ledger import TrainingLedger
from cpsign_airflow.cpsign.versions import CPSIGN_VERSION

START = datetime(2026, 9, 7, 2, 0, tzinfo=timezone.utc)
STAGES = ("ingest", "precompute", "train", "aggregate", "validate", "publish")


@dataclass
class RunFact:
    """What was written for one run: what the page must show."""

    id: int
    workflow: str
    status: str
    trigger_kind: str
    quality: str | None = None
    sha256: str | None = None
    validity: dict[float, float] = field(default_factory=dict)
    commit_set_id: str | None = None
    error: str | None = None
    jobs: int = 0


@dataclass
class History:
    runs: list[RunFact] = field(default_factory=list)

    def of(self, workflow: str) -> list[RunFact]:
        return [run for run in self.runs if run.workflow == workflow]


class _Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@contextmanager
def _clocked(start: datetime) -> Iterator[_Clock]:
    clock = _Clock(start)
    with mock.patch.object(records, "utcnow", clock):
        yield clock


def _hex(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def _configuration(workflow: str, ptype: int, cost: float, model: str) -> dict[str, Any]:
    return {
        "workflow_name": workflow,
        "database": {"host": "chembl-mysql", "user": "chembl_reader", "db_name": "chembl_24"},
        "query": {"database_query": "SELECT smiles, value FROM training_data{}"},
        "cpsign-version": CPSIGN_VERSION,
        "cpsign": {"ptype": ptype, "impl": "liblinear", "nr-models": 5, "cost": cost,
                   "model-name": model},
        "validation": {"confidences": [0.8, 0.9]},
    }  # fmt: skip


def _metrics(ptype: int, error: dict[float, float], efficiency: dict[float, float]) -> dict:
    kind = "median_interval_width" if ptype == 2 else "single_label_share"
    by_key = {str(c): v for c, v in efficiency.items()}
    return {
        "ptype": ptype,
        "confidences": sorted(error),
        "test_molecules": 128,
        "predicted": 128,
        "error_rate": {str(c): v for c, v in error.items()},
        kind: by_key,
        "efficiency": by_key,
    }


def write_history(ledger: TrainingLedger, *, start: datetime = START) -> History:
    """Write the history into a migrated store; returns what it wrote."""
    history = History()
    with _clocked(start) as clock:
        _write_runs(ledger, clock, history, start)
    return history


def _train(
    ledger: TrainingLedger,
    clock: _Clock,
    history: History,
    *,
    workflow: str,
    ptype: int,
    cost: float,
    trigger: str,
    outcome: str,
    error: dict[float, float] | None = None,
    efficiency: dict[float, float] | None = None,
    quality: str | None = None,
    reason: str | None = None,
    same_model_as: RunFact | None = None,
    publish_version: str | None = None,
    minutes: float = 14,
) -> RunFact:
    model = f"{workflow}_model"
    configuration = _configuration(workflow, ptype, cost, model)
    if outcome == "rejected":
        why = "cpsign.cost: -1 is less than the minimum of 0"
        configuration["cpsign"]["cost"] = -1
        rid = ledger.record_rejected_run(workflow, configuration, why, trigger_kind=trigger)
        fact = RunFact(rid, workflow, "rejected", trigger, error=why)
        history.runs.append(fact)
        return fact
    rid = ledger.record_pending_run(
        workflow, configuration, trigger_kind=trigger, project="cpsign", config_repo="config"
    )
    clock.advance(seconds=20)
    commit_set = _hex("commit-set", workflow, rid)[:32]
    ledger.mark_committed(rid, commit_set, commit_set)
    ledger.mark_running(rid)
    fact = RunFact(rid, workflow, outcome, trigger, commit_set_id=commit_set)
    jobs = []
    stages = STAGES if outcome == "succeeded" else STAGES[:3]
    for index, stage in enumerate(stages):
        began = clock.now
        clock.advance(minutes=minutes / len(STAGES))
        failed = outcome == "failed" and index == len(stages) - 1
        jobs.append(
            {
                "pipeline": f"{workflow}-{stage}",
                "job_id": _hex("job", rid, stage)[:32],
                "state": "JOB_FAILURE" if failed else "JOB_SUCCESS",
                "reason": "datum 3f1c… failed" if failed else None,
                "log_tail": "cpsign train: java.lang.OutOfMemoryError: Java heap space"
                if failed
                else None,
                "data_processed": 0 if failed else 1,
                "data_skipped": 0,
                "data_failed": 1 if failed else 0,
                "data_total": 1,
                "started": began,
                "finished": clock.now,
            }
        )
    ledger.record_jobs(rid, jobs)
    fact.jobs = len(jobs)
    if outcome == "failed":
        fact.error = f"pipeline {workflow}-train failed: java.lang.OutOfMemoryError"
        ledger.finish_run(rid, "failed", fact.error)
        history.runs.append(fact)
        return fact
    assert error is not None and efficiency is not None
    sha = same_model_as.sha256 if same_model_as else _hex("model", workflow, rid)
    ledger.record_artifacts(
        rid,
        [
            {
                "model_name": model,
                "location": f"{workflow}-aggregate@{commit_set}:/{model}.jar",
                "sha256": sha,
                "size_bytes": 2_400_000 + 1000 * rid,
                "metrics": _metrics(ptype, error, efficiency),
            }
        ],
    )
    if quality:
        ledger.record_quality(rid, model, quality, reason)
    if publish_version:
        ledger.record_publication(
            rid,
            model,
            status="published",
            target="model_store",
            url=f"https://models.example.org/{workflow}/{publish_version}",
            version=publish_version,
        )
    ledger.finish_run(rid, "succeeded")
    fact.quality, fact.sha256 = quality, sha
    fact.validity = {c: 1 - e for c, e in error.items()}
    history.runs.append(fact)
    return fact


PASSED_2 = "valid at 2 confidence(s)"
#: (workflow, ptype, time since the previous run, what the run does), oldest first.
#: ``same_model_as`` is the index of an earlier run whose model an unchanged run has.
RUNS: list[tuple[str, int, dict[str, float], dict[str, Any]]] = [
    ("LogD", 2, {}, dict(cost=1, trigger="manual", outcome="succeeded",
        error={0.8: 0.19, 0.9: 0.09}, efficiency={0.8: 2.41, 0.9: 3.12},
        quality="passed", reason=PASSED_2, publish_version="1")),
    ("LogD", 2, {"days": 7}, dict(cost=1, trigger="scheduled", outcome="succeeded",
        error={0.8: 0.18, 0.9: 0.085}, efficiency={0.8: 2.22, 0.9: 2.95}, quality="passed",
        reason=f"{PASSED_2}; efficiency 2.22 <= bound 2.65", publish_version="2")),
    ("LogD", 2, {"days": 7}, dict(cost=1, trigger="scheduled", outcome="failed")),
    ("LogD", 2, {"days": 1}, dict(cost=1, trigger="manual", outcome="rejected")),
    ("LogD", 2, {"hours": 2}, dict(cost=10, trigger="manual", outcome="succeeded",
        error={0.8: 0.29, 0.9: 0.16}, efficiency={0.8: 1.71, 0.9: 2.2}, quality="held_back",
        reason="error rate 0.29 at confidence 0.8 exceeds the bound 0.25")),
    ("LogD", 2, {"days": 7}, dict(cost=1, trigger="scheduled", outcome="succeeded",
        error={0.8: 0.18, 0.9: 0.085}, efficiency={0.8: 2.22, 0.9: 2.95},
        quality="unchanged", same_model_as=1)),
    ("LogD", 2, {"days": 7}, dict(cost=2, trigger="asset", outcome="succeeded",
        error={0.8: 0.17, 0.9: 0.08}, efficiency={0.8: 2.05, 0.9: 2.81}, quality="passed",
        reason=f"{PASSED_2}; efficiency 2.05 <= bound 2.44", publish_version="3", minutes=17)),
    ("hERG", 1, {}, dict(cost=1, trigger="manual", outcome="succeeded",
        error={0.8: 0.18, 0.9: 0.09}, efficiency={0.8: 0.71, 0.9: 0.48},
        quality="passed", reason=PASSED_2, publish_version="1")),
    ("hERG", 1, {"days": 14}, dict(cost=1, trigger="scheduled", outcome="succeeded",
        error={0.8: 0.19, 0.9: 0.1}, efficiency={0.8: 0.74, 0.9: 0.5},
        quality="passed", reason=PASSED_2, publish_version="2")),
]  # fmt: skip


def _write_runs(ledger: TrainingLedger, clock: _Clock, history: History, start: datetime) -> None:
    written: list[RunFact] = []
    for workflow, ptype, after, run in RUNS:
        if written and workflow != written[-1].workflow:
            clock.now = start + timedelta(days=1, hours=5)  # the second workflow, in parallel
        clock.advance(**after)
        spec = dict(run)
        if "same_model_as" in spec:
            earlier = written[spec["same_model_as"]]
            spec["same_model_as"] = earlier
            spec["reason"] = f"same model as run {earlier.id} (no new rows)"
        written.append(_train(ledger, clock, history, workflow=workflow, ptype=ptype, **spec))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m cpsign_airflow.testing.model_history <sqlalchemy-url>")
        return 2
    with TrainingLedger.from_url(args[0]) as ledger:
        ledger.upgrade_schema()
        history = write_history(ledger)
    print(f"wrote {len(history.runs)} runs to {args[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
