"""What scheduled retraining re-commits: each workflow's latest successful configuration."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)


def retraining_seed(run_id: str) -> int:
    """A seed that differs per DAG run but is the same on a retry of that run."""
    return int(hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:8], 16) & 0x7FFFFFFF


def retraining_requests(
    context: Mapping[str, Any], bookkeeping_conn_id: str
) -> list[dict[str, Any]]:
    """Requests for the training task group; skips the DAG run when there is nothing to retrain."""
    from airflow.sdk.exceptions import AirflowSkipException

    from cpsign_airflow.bookkeeping.hook import BookkeepingHook
    from cpsign_airflow.bookkeeping.records import trigger_kind_from_context
    from cpsign_airflow.cpsign.configuration import with_new_seed

    kind = trigger_kind_from_context(context)
    seed = retraining_seed(context["dag_run"].run_id)
    requests = []
    with BookkeepingHook(bookkeeping_conn_id).get_ledger() as ledger:
        for workflow in ledger.list_workflows():
            configuration = ledger.latest_successful_configuration(workflow.name)
            if configuration is None:
                log.info("Workflow %s has no succeeded run yet; not retrained", workflow.name)
                continue
            requests.append(
                {
                    "configuration": with_new_seed(configuration, seed),
                    "config_repo": workflow.config_repo,
                    "trigger_kind": kind,  # manual, scheduled or asset: as it happened
                    "preflight": True,
                }
            )
            log.info("Retraining %s (%s)", workflow.name, kind)
    if not requests:
        raise AirflowSkipException("No workflow has a succeeded training run to retrain")
    return requests
