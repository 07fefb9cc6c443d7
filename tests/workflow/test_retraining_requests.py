"""What cpsign_retraining records as its trigger kind: how the DAG run came about."""

from __future__ import annotations

import pytest

from cpsign_airflow.bookkeeping.hook import BookkeepingHook
from cpsign_airflow.cpsign.configuration import load_example
from cpsign_airflow.workflow.retraining import retraining_requests


class _DagRun:
    def __init__(self, run_type: str) -> None:
        self.run_type, self.run_id = run_type, f"{run_type}__2026-12-01"


@pytest.mark.parametrize(
    "run_type, kind",
    [("manual", "manual"), ("scheduled", "scheduled"), ("asset_triggered", "asset")],
)
def test_trigger_kind_is_recorded_as_it_happened(bookkeeping_conn_id, run_type, kind):
    with BookkeepingHook(bookkeeping_conn_id).get_ledger() as ledger:
        ledger.upgrade_schema()
        run_id = ledger.record_pending_run("LogD", load_example("logd-flat"))
        ledger.mark_committed(run_id, "a" * 32)
        ledger.finish_run(run_id, "succeeded")
    [request] = retraining_requests({"dag_run": _DagRun(run_type)}, bookkeeping_conn_id)
    assert request["trigger_kind"] == kind
    assert request["configuration"]["workflow_name"] == "LogD"
