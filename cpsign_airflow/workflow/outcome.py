"""The training group's record of what a commit set produced: jobs, models, verdicts.

:func:`record_outcome` (one task) records the jobs, the model(s) that
:func:`find_models` locates with their validation metrics (:func:`read_metrics`),
each model's quality verdict (:func:`judge_models`), and marks the run succeeded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from airflow.sdk import Asset, task

from cpsign_airflow.workflow.callbacks import run_facts
from cpsign_airflow.workflow.model_identity import model_content_sha256

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics.json"
#: Updated by every successful training run; the event's extra names the
#: workflow, the commit id and the model locations. (A per-workflow Asset would
#: have to be declared at parse time, before any workflow is known.)
MODELS_ASSET = Asset(name="cpsign-models")


def find_models(
    workflow: str,
    commit_set_id: str,
    pachyderm_conn_id: str,
    project: str | None,
    context: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Locate the aggregated model of this commit set and describe it for bookkeeping.

    Each model carries ``metrics``: ``/metrics.json`` of ``<workflow>-validate`` at
    the same commit set, or None (logged) when there is none. Sets the extra of
    the task's ``cpsign-models`` Asset event: the workflow, the commit id and the
    model locations.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from cpsign_airflow.exceptions import PachydermNotFound
    from cpsign_airflow.hooks.pachyderm import PachydermHook

    hook = PachydermHook(pachyderm_conn_id=pachyderm_conn_id, project=project)
    metrics = read_metrics(hook, workflow, commit_set_id)
    repo = f"{workflow}-aggregate"
    try:
        listed = hook.list_files(repo, commit_set_id, "/model/")
    except PachydermNotFound as err:  # the commit set has finished: a retry finds nothing more
        raise AirflowFailException(f"Commit set {commit_set_id} produced no model: {err}") from None
    files = [f for f in listed if f["path"].endswith(".jar")]
    if not files:
        raise AirflowFailException(
            f"Commit set {commit_set_id} produced no model: no .jar under {repo}@{commit_set_id}:/model/"
        )
    artifacts = []
    for entry in files:
        data = hook.read_file(repo, commit_set_id, entry["path"])
        name = entry["path"].rsplit("/", 1)[-1].removesuffix(".jar")
        artifacts.append(
            {
                "model_name": name,
                "location": f"{repo}@{commit_set_id}:{entry['path']}",
                "size_bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "content_sha256": model_content_sha256(data),
                "metrics": metrics,
            }
        )
        log.info(
            "Model %s: %s (%d bytes, sha256 %s, content sha256 %s)",
            name,
            artifacts[-1]["location"],
            len(data),
            artifacts[-1]["sha256"],
            artifacts[-1]["content_sha256"],
        )
    context["outlet_events"][MODELS_ASSET].extra = {
        "workflow": workflow,
        "commit_id": commit_set_id,
        "models": [a["location"] for a in artifacts],
        "sha256": [a["sha256"] for a in artifacts],
    }
    return artifacts


def read_metrics(hook: Any, workflow: str, commit_set_id: str) -> dict[str, Any] | None:
    """``metrics.json`` of ``<workflow>-validate`` at the commit set, or None (and why, logged)."""
    from cpsign_airflow.exceptions import PachydermNotFound

    repo = f"{workflow}-validate"
    where = f"{repo}@{commit_set_id}:{METRICS_PATH}"
    try:
        data = hook.read_file(repo, commit_set_id, METRICS_PATH)
    except PachydermNotFound as err:
        log.warning("No validation metrics: %s not found (%s); the model is not gated", where, err)
        return None
    try:
        metrics = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        log.warning("No validation metrics: %s is not JSON (%s)", where, err)
        return None
    if not isinstance(metrics, dict):
        log.warning("No validation metrics: %s is not a JSON object", where)
        return None
    log.info("Validation metrics from %s: %s", where, json.dumps(metrics, sort_keys=True))
    return metrics


def judge_models(
    ledger: Any,
    training_run_id: int,
    artifacts: list[dict[str, Any]],
    workflow: str,
    tolerance: float,
    margin: float,
) -> dict[str, dict[str, Any]]:
    """Decide each model's verdict, once per distinct model; ``{model_name: {quality,
    reason, carried_from}}``.

    Decided in one place, :meth:`~cpsign_airflow.bookkeeping.ledger.TrainingLedger.decide_quality`,
    under the workflow's lock, so concurrent runs decide one after the other. A model
    whose identity (content hash, or sha256) is already recorded for the workflow
    carries that verdict, naming the run (``carried_from``): ``unchanged`` for an
    accepted one (neither judged nor deployed again), ``held_back`` for a held-back
    one (and not alerted again). Otherwise its metrics are judged against the last
    accepted model in commit order, among runs finished before this one was committed.
    A held-back model only stops deployment. A retry returns the recorded verdicts.
    """
    from cpsign_airflow.cpsign.quality import HELD_BACK, quality_verdict, unchanged_verdict

    verdicts: dict[str, dict[str, Any]] = {}
    for artifact in artifacts:
        name = artifact["model_name"]
        if name in verdicts:
            continue

        def decide(own: Any, earlier: Any, baseline: Any, artifact=artifact) -> tuple[str, str]:
            identity = {"sha256": own.sha256, "content_sha256": own.content_sha256}
            same = unchanged_verdict(identity, earlier)
            if same is not None:
                return same
            return quality_verdict(artifact.get("metrics"), baseline, tolerance, margin)

        recorded = ledger.decide_quality(training_run_id, name, decide)
        quality, reason = recorded.quality, recorded.quality_reason
        verdicts[name] = {
            "quality": quality,
            "reason": reason,
            "carried_from": recorded.verdict_run_id,
        }
        log.log(
            logging.WARNING if quality == HELD_BACK else logging.INFO,
            "Quality gate: model %s of run %s %s: %s",
            name,
            training_run_id,
            {HELD_BACK: "HELD BACK"}.get(quality, quality),
            reason,
        )
    return verdicts


@task(outlets=[MODELS_ASSET], multiple_outputs=True)
def record_outcome(
    training_run_id: int,
    jobs: list[Mapping[str, Any]],
    workflow: str,
    commit_set_id: str,
    pachyderm_conn_id: str,
    project: str | None,
    bookkeeping_conn_id: str,
    tolerance: float,
    margin: float,
    **context: Any,
) -> dict[str, Any]:
    """Record what the commit set produced, judge it, and mark the run succeeded.

    In order: the jobs (first, so a commit set without a model still has its
    jobs on record); the model(s) with size, sha256, content hash and validation
    metrics (and the ``cpsign-models`` Asset event); each model's quality verdict,
    decided once per distinct model (:func:`judge_models`; a model held back here, not
    one carrying an earlier verdict, is alerted ``on_held_back``); the run ``succeeded``. Every write is
    keyed, so a retry redoes them without doubling a record. Returns
    ``{"models": [...], "verdicts": {model_name: {quality, reason}}}``.
    """
    from cpsign_airflow.bookkeeping.hook import BookkeepingHook
    from cpsign_airflow.bookkeeping.operators import job_records
    from cpsign_airflow.cpsign.quality import HELD_BACK

    hook = BookkeepingHook(bookkeeping_conn_id)
    with hook.get_ledger() as ledger:
        recorded = ledger.record_jobs(training_run_id, job_records(jobs))
    log.info("Recorded %d job(s) of run %s", len(recorded), training_run_id)
    models = find_models(workflow, commit_set_id, pachyderm_conn_id, project, context)
    with hook.get_ledger() as ledger:
        ledger.record_artifacts(training_run_id, models)
        verdicts = judge_models(ledger, training_run_id, models, workflow, tolerance, margin)
        finished = ledger.get_run(training_run_id).status == "succeeded"  # by an earlier try
    outlet = (context.get("outlet_events") or {}).get(MODELS_ASSET)
    if outlet is not None:  # consumers can tell a held-back model from a passed one
        outlet.extra = {**(outlet.extra or {}), "verdicts": verdicts}
    held_back = {  # a verdict carried from an earlier run was alerted by that run
        n: v["reason"]
        for n, v in verdicts.items()
        if v["quality"] == HELD_BACK and v.get("carried_from") is None
    }
    if held_back and not finished:  # alerted once, before the run is marked succeeded
        from cpsign_airflow.notifications import send_alert

        facts = {
            **run_facts(context),
            "workflow": workflow,
            "held_back": held_back,
            "models": models,
            "verdicts": verdicts,
            "training_run_id": training_run_id,
        }
        send_alert({**context, **facts}, "held_back")
    with hook.get_ledger() as ledger:  # last: the run is succeeded only once all is recorded
        run = ledger.finish_run(training_run_id, "succeeded")
    log.info("Run %s finished: %s", run.id, run.status)
    return {"models": models, "verdicts": verdicts}
