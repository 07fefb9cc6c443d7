"""One CPSign training run as an Airflow task group.

validate (schema, then the pre-flight query) → record pending run → put
configuration.json (one commit, even on retry) → mark committed → wait for the
commit set (deferrable) → record the outcome (jobs, the model with its
validation metrics and an Asset event, the quality verdict, the run succeeded)
→ optional prediction service. A model the quality gate holds back is recorded
as such and not deployed; the run still succeeds.

Each task costs a run about one scheduler loop (1 s with Airflow's defaults:
benchmarks/orchestration_overhead.py), so steps that always run together and
are each keyed in bookkeeping share a task: a retry redoes them without
doubling a record.

The same group serves ``cpsign_training`` (one run from the trigger form) and
``cpsign_retraining`` (mapped over workflows). Any task failure marks the run
``failed`` in bookkeeping with the error and sends the configured alerts.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import Asset, task, task_group

from cpsign_airflow.workflow.settings import Settings

log = logging.getLogger(__name__)

CONFIG_PATH = "/configuration.json"
METRICS_PATH = "/metrics.json"
#: Updated by every successful training run; the event's extra names the
#: workflow, the commit id and the model locations. (A per-workflow Asset would
#: have to be declared at parse time, before any workflow is known.)
MODELS_ASSET = Asset(name="cpsign-models")


#: Tasks of the group whose results an alert quotes (ids within the group).
VALIDATE_TASK = "validate"
CONSOLE_URL_TASKS = ("wait_for_training", "put_config")
PENDING_TASK = "record_pending_run"
OUTCOME_TASK = "record_outcome"


def run_facts(context: Mapping[str, Any]) -> dict[str, Any]:
    """What an alert about this task's training run quotes, from the group's own tasks:
    ``workflow`` (the validate task's result; per map index in a mapped retraining),
    ``console_url`` (pushed by the wait or the put), ``training_run_id`` (the
    bookkeeping run, for the models page link) and, once ``record_outcome`` has run,
    its ``models`` and ``verdicts``. Missing facts are left out."""
    from cpsign_airflow.links.pachyderm import CONSOLE_URL_XCOM_KEY

    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        return {}
    group = ti.task_id.rsplit(".", 1)[0] + "." if "." in ti.task_id else ""
    map_index = getattr(ti, "map_index", -1)
    indexes = {"map_indexes": map_index} if isinstance(map_index, int) and map_index >= 0 else {}

    def pull(task_id: str, key: str, one: bool = True) -> Any:
        try:
            value = ti.xcom_pull(task_ids=f"{group}{task_id}", key=key, **indexes)
        except Exception:  # an alert must go out even when XCom cannot be read
            return None
        return value[0] if one and isinstance(value, list) and value else value or None

    facts: dict[str, Any] = {}
    workflow = pull(VALIDATE_TASK, "workflow")
    if isinstance(workflow, str):
        facts["workflow"] = workflow
    for task_id in CONSOLE_URL_TASKS:
        url = pull(task_id, CONSOLE_URL_XCOM_KEY)
        if url:
            facts["console_url"] = url
            break
    run_id = pull(PENDING_TASK, "return_value")
    if isinstance(run_id, int) and not isinstance(run_id, bool):
        facts["training_run_id"] = run_id
    models = pull(OUTCOME_TASK, "models", one=False)
    if isinstance(models, list) and models:
        facts["models"] = models
    verdicts = pull(OUTCOME_TASK, "verdicts")
    if isinstance(verdicts, Mapping):
        facts["verdicts"] = dict(verdicts)
    return facts


#: Seconds a failure callback waits for ``cpsign_setup`` to record that its pipeline
#: update killed the run's jobs (its ``record_killed_runs`` task runs just after the
#: update), so that the record and the alert name the setup run.
KILL_RECORD_WAIT = 15.0


def _await_kill_record(
    context: Mapping[str, Any], bookkeeping_conn_id: str, timeout: float = KILL_RECORD_WAIT
) -> None:
    """When a pipeline update killed the failed jobs, wait (at most ``timeout`` s) until
    the setup run has failed their training runs; never raises."""
    import time

    exc = context.get("exception")
    killed = {
        job.get("job_id")
        for job in getattr(exc, "failed_jobs", None) or []
        if isinstance(job, Mapping)
        and job.get("state") == "JOB_KILLED"
        and "updated" in (job.get("reason") or "")
    }
    ti = context.get("ti") or context.get("task_instance")
    if not killed or ti is None:
        return
    from cpsign_airflow.bookkeeping.hook import BookkeepingHook

    deadline = time.monotonic() + timeout
    try:
        with BookkeepingHook(bookkeeping_conn_id).get_ledger() as ledger:
            while True:
                runs = [
                    run
                    for run in ledger.runs_for_airflow_run(ti.dag_id, ti.run_id)
                    if run.commit_set_id in killed
                ]
                if all(run.status == "failed" for run in runs) or time.monotonic() > deadline:
                    return
                time.sleep(0.5)
    except Exception as err:  # the run is failed (and alerted) all the same
        log.warning("Could not wait for the record of the setup run that killed jobs: %s", err)


def training_failure_callback(bookkeeping_conn_id: str):
    """``on_failure_callback``: mark the DAG run's open training runs failed (recording
    the commit set's jobs), then alert."""

    def callback(context: Mapping[str, Any]) -> None:
        from cpsign_airflow.bookkeeping.operators import mark_runs_failed
        from cpsign_airflow.notifications import send_alert

        _await_kill_record(context, bookkeeping_conn_id)
        mark_runs_failed(context, bookkeeping_conn_id=bookkeeping_conn_id)
        send_alert({**context, **run_facts(context)}, "failure")

    return callback


def training_success_callback(context: Mapping[str, Any]) -> None:
    """``on_success_callback`` of a run's last bookkeeping step: the ``on_success`` alert,
    naming each model with its verdict. A run whose model was held back in this run has
    had its one mail (``held_back``, from ``record_outcome``) and gets no second; a run
    that only carried an earlier held-back verdict (the same model again) was not alerted
    as held back, so it gets its success mail, which names the carried verdict."""
    from cpsign_airflow.cpsign.quality import HELD_BACK
    from cpsign_airflow.notifications import send_alert

    facts = run_facts(context)
    held_back = [
        name
        for name, verdict in (facts.get("verdicts") or {}).items()
        if isinstance(verdict, Mapping)
        and verdict.get("quality") == HELD_BACK
        and not verdict.get("carried_from")
    ]
    if held_back:
        log.info("Model(s) %s held back: alerted as held back, not as a success", held_back)
        return
    send_alert({**context, **facts}, "success")


def default_args(settings: Settings) -> dict[str, Any]:
    """default_args of the DAGs that run training: retries, and failure -> record + alert."""
    return {
        "owner": "cpsign",
        "retries": settings.task_retries,
        "retry_delay": settings.retry_delay,
        "on_failure_callback": training_failure_callback(settings.bookkeeping_conn_id),
    }


def request_from_run(context: Mapping[str, Any]) -> dict[str, Any]:
    """What to train in a ``cpsign_training`` run: a whole configuration from the run's
    conf, else the trigger form's fields."""
    from cpsign_airflow.cpsign.params import configuration_from_params

    conf = getattr(context.get("dag_run"), "conf", None) or {}
    params = context.get("params") or {}
    return {
        "configuration": conf.get("configuration") or configuration_from_params(params),
        "config_repo": conf.get("config_repo"),
        "trigger_kind": conf.get("trigger_kind"),
        "preflight": conf.get("preflight", params.get("preflight", True)),
    }


@task(multiple_outputs=True)
def validate(
    request: Mapping[str, Any] | None,
    bookkeeping_conn_id: str,
    cpsign_version: str,
    source_db_conn_id: str | Sequence[str] | None = None,
    source_sqlite_dir: str | None = None,
    **context: Any,
) -> dict[str, Any]:
    """Check the configuration against the schema, then its query; nothing is committed before.

    A refused configuration is recorded as a ``rejected`` run with every
    reason (when it names a usable workflow), then fails the task without retries.
    With ``source_db_conn_id`` (one id or the allow-list), the configuration's
    ``preprocessing.database`` must name one of those connections field by field (a
    configuration without it, as the form makes, gets the first connection's); with
    the request's ``preflight`` (default on), the source query then runs with LIMIT 0
    in a read-only transaction (:mod:`~cpsign_airflow.workflow.preflight`). The query
    is checked to be one SELECT whatever ``preflight`` says.
    ``request`` None: the run's own (:func:`request_from_run`).
    """
    from airflow.sdk.exceptions import AirflowFailException

    from cpsign_airflow.cpsign.configuration import (
        ConfigurationError,
        canonical_json,
        configuration_sha256,
    )
    from cpsign_airflow.cpsign.configuration import validate_configuration as check

    if request is None:
        request = request_from_run(context)
    problems: list[str] = []
    try:
        if request.get("configuration") is None:
            raise ConfigurationError(["configuration: missing from the request"])
        submitted = request["configuration"]
        if source_db_conn_id is not None:
            submitted = _with_source_database(submitted, source_db_conn_id)
        configuration = check(submitted)
        if source_db_conn_id is not None:
            from cpsign_airflow.workflow.preflight import PreflightError, resolve_source

            try:
                resolve_source(configuration, source_db_conn_id, source_sqlite_dir)
            except PreflightError as err:
                problems.append(str(err))
        wanted = (configuration.get("cpsign") or {}).get("version")
        if wanted and wanted != cpsign_version:
            problems.append(
                f"cpsign.version: the configuration asks for CPSign {wanted}, but the stages run "
                f"CPSign {cpsign_version} ([cpsign] cpsign_version); change one of them"
            )
        workflow = configuration["workflow_name"]
        if request.get("workflow_name") and request["workflow_name"] != workflow:
            problems.append(
                f"workflow_name: the request names {request['workflow_name']!r} but the "
                f"configuration's workflow_name is {workflow!r}"
            )
    except ConfigurationError as err:
        problems.append(str(err))
    if problems:  # retrying cannot fix any of them
        problem = "\n".join(problems)
        _record_rejection(request, problem, bookkeeping_conn_id, context)
        raise AirflowFailException(problem)
    config_repo = request.get("config_repo")
    if not config_repo:
        from cpsign_airflow.bookkeeping.hook import BookkeepingHook

        with BookkeepingHook(bookkeeping_conn_id).get_ledger() as ledger:
            record = ledger.get_workflow(workflow)
        config_repo = (record.config_repo if record else None) or f"{workflow}-config"
    text = json.dumps(configuration, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    log.info(
        "Configuration of %s is valid (sha256 %s)", workflow, configuration_sha256(configuration)
    )
    if source_db_conn_id is not None:
        if request.get("preflight", True):
            from cpsign_airflow.workflow.preflight import check_source_query

            check_source_query(configuration, source_db_conn_id, source_sqlite_dir)
        else:
            log.warning("Pre-flight check of the source query skipped (preflight=false)")
    return {
        "workflow": workflow,
        "configuration": configuration,
        "configuration_json": text,
        "canonical_json": canonical_json(configuration),
        "config_repo": config_repo,
        "trigger_kind": request.get("trigger_kind") or "",
    }


def _with_source_database(configuration: Any, conn_ids: str | Sequence[str]) -> Any:
    """A sectioned configuration without ``preprocessing.database`` (as the form makes it)
    gets the first allowed source connection's coordinates; anything else is unchanged."""
    from cpsign_airflow.cpsign.configuration import is_flat_configuration
    from cpsign_airflow.workflow.preflight import allowed_conn_ids, source_connection

    if not isinstance(configuration, Mapping) or is_flat_configuration(configuration):
        return configuration
    preprocessing = configuration.get("preprocessing")
    if not isinstance(preprocessing, Mapping) or "database" in preprocessing:
        return configuration
    ids = allowed_conn_ids(conn_ids)
    if not ids:
        return configuration
    source, _conn = source_connection(ids[0])
    return {
        **configuration,
        "preprocessing": {**preprocessing, "database": source.as_configuration()},
    }


def _record_rejection(
    request: Mapping[str, Any], problem: str, bookkeeping_conn_id: str, context: Mapping[str, Any]
) -> int | None:
    """Record the refused configuration as a ``rejected`` run; None (logged) when it cannot be.

    The row needs a workflow: the configuration's ``workflow_name``, else the
    request's. A refusal without any usable name is only logged (and alerted).
    """
    from cpsign_airflow.bookkeeping.errors import BookkeepingInputError
    from cpsign_airflow.bookkeeping.hook import BookkeepingHook
    from cpsign_airflow.bookkeeping.records import TaskKey, trigger_kind_from_context
    from cpsign_airflow.cpsign.configuration import without_secrets

    configuration = request.get("configuration")
    names = [
        configuration.get("workflow_name") if isinstance(configuration, Mapping) else None,
        request.get("workflow_name"),
    ]
    kind = request.get("trigger_kind") or trigger_kind_from_context(context)
    task = TaskKey.from_context(context) if context.get("ti") is not None else None
    for name in names:
        if not isinstance(name, str):
            continue
        try:
            with BookkeepingHook(bookkeeping_conn_id).get_ledger() as ledger:
                run_id = ledger.record_rejected_run(
                    name,
                    without_secrets(
                        configuration
                        if isinstance(configuration, Mapping)
                        else {"configuration": configuration}
                    ),
                    problem,
                    trigger_kind=kind,
                    task=task,
                )
        except BookkeepingInputError as err:  # e.g. the name itself is what was refused
            log.warning("Rejected configuration not recorded under %r: %s", name, err)
            continue
        except Exception as err:  # the refusal itself must still be what the task reports
            log.warning("Rejected configuration not recorded (bookkeeping: %s)", err)
            return None
        log.info("Configuration rejected; recorded as run %s of %s", run_id, name)
        return run_id
    log.warning("Rejected configuration not recorded: it names no usable workflow")
    return None


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


#: Build metadata a model jar changes on every build of the same model: the manifest
#: header (build time in ``Bundle-Version``) and ``cpsign.json`` keys left out of its
#: content hash (zip entry times are never hashed).
MANIFEST_BUILD_HEADERS = frozenset({"bundle-version"})
CPSIGN_JSON_BUILD_KEYS = frozenset({"modelVersion", "buildTimestamp"})


def model_content_sha256(data: bytes) -> str:
    """The model's identity: sha256 of its jar's entries without build metadata.

    Entries in name order, each as its name and content: ``META-INF/MANIFEST.MF``
    without ``Bundle-Version`` (it carries the build time), ``cpsign.json`` without
    ``modelVersion`` and ``buildTimestamp`` at any depth (as canonical JSON), every
    other entry byte for byte; entry times and compression are left out. Two
    trainings on the same data with the same seed have different sha256 and the same
    content hash. Data that is not a zip: the sha256 of its bytes.
    """
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as jar:
            entries = [(info.filename, jar.read(info)) for info in jar.infolist()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256(b"cpsign-model-content/1\0")
    for name, content in sorted(entries, key=lambda entry: entry[0]):
        if name == "META-INF/MANIFEST.MF":
            content = _without_build_headers(content)
        elif name == "cpsign.json":
            content = _without_build_keys(content)
        encoded = name.encode("utf-8")
        for part in (encoded, content):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


def _without_build_headers(manifest: bytes) -> bytes:
    """The manifest without its build headers (continuation lines included), lines
    joined by LF."""
    lines: list[str] = []
    for line in manifest.decode("utf-8", "replace").splitlines():
        if line.startswith(" ") and lines:  # a continuation of the previous header
            lines[-1] += line[1:]
        else:
            lines.append(line)
    kept = [
        line
        for line in lines
        if line.split(":", 1)[0].strip().lower() not in MANIFEST_BUILD_HEADERS
    ]
    return "\n".join(kept).encode("utf-8")


def _without_build_keys(text: bytes) -> bytes:
    """``cpsign.json`` as canonical JSON without its build keys; unreadable JSON as is."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in CPSIGN_JSON_BUILD_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    try:
        parsed = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return text
    return json.dumps(strip(parsed), sort_keys=True, separators=(",", ":")).encode("utf-8")


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


def _deploy_wanted(context: Mapping[str, Any]) -> bool:
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    params = context.get("params") or {}
    return bool(
        conf.get("deploy_prediction_service", params.get("deploy_prediction_service", False))
    )


@task(multiple_outputs=True)
def deployment_request(
    models: list[dict[str, Any]],
    configuration: Mapping[str, Any],
    commit_set_id: str,
    verdicts: Mapping[str, Mapping[str, str]] | None = None,
    **context: Any,
) -> dict[str, Any]:
    """What the prediction service serves: the run's (first) model, its predictor type, its commit.

    Skipped, with the deployment after it, unless the run asked for a
    prediction service (``deploy_prediction_service``, off by default), or
    when the quality gate held the model back (the reason is in the skip message).
    """
    from airflow.sdk.exceptions import AirflowSkipException

    from cpsign_airflow.cpsign.quality import HELD_BACK, UNCHANGED

    if not _deploy_wanted(context):
        raise AirflowSkipException(
            "No prediction service requested (deploy_prediction_service is off)"
        )
    model = models[0]
    verdict = (verdicts or {}).get(model["model_name"]) or {}
    if verdict.get("quality") == HELD_BACK:
        raise AirflowSkipException(
            f"Model {model['model_name']} held back by the quality gate, not deployed: "
            f"{verdict.get('reason')}"
        )
    if verdict.get("quality") == UNCHANGED:
        raise AirflowSkipException(
            f"Model {model['model_name']} unchanged, not deployed again: {verdict.get('reason')}"
        )
    return {
        "model_name": model["model_name"],
        "location": model["location"],
        "predictor_type": int(configuration["train"]["ptype"]),
        "version": commit_set_id,
    }


@task_group(group_id="training_run")
def training_run(request: Any, settings: Settings) -> None:
    """The chain for one workflow's run; ``request`` is ``{"configuration", ...}``, or None
    for the DAG run's own (its conf, else its trigger form)."""
    from cpsign_airflow.bookkeeping.operators import (
        MarkRunCommittedOperator,
        RecordPendingRunOperator,
        RecordPublicationOperator,
    )
    from cpsign_airflow.kubernetes.operators import CPSignPredictionServiceOperator
    from cpsign_airflow.operators.pachyderm import PachydermPutFileOperator
    from cpsign_airflow.sensors.pachyderm import PachydermCommitSetSensor

    conns = {"bookkeeping_conn_id": settings.bookkeeping_conn_id}
    checked = validate(
        request,
        settings.bookkeeping_conn_id,
        settings.cpsign_version,
        list(settings.source_conn_ids),
        settings.source_sqlite_dir,
    )
    pending = RecordPendingRunOperator(
        task_id="record_pending_run",
        workflow=checked["workflow"],
        configuration=checked["canonical_json"],
        trigger_kind=checked["trigger_kind"],
        config_repo=checked["config_repo"],
        project=settings.project,
        **conns,
    )
    put = PachydermPutFileOperator(
        task_id="put_config",
        repo=checked["config_repo"],
        path=CONFIG_PATH,
        content=checked["configuration_json"],
        pachyderm_conn_id=settings.pachyderm_conn_id,
        project=settings.project,
    )
    committed = MarkRunCommittedOperator(
        task_id="mark_committed",
        run_id=pending.output,
        commit_id=put.output,
        commit_set_id=put.output,
        **conns,
    )
    wait = PachydermCommitSetSensor(
        task_id="wait_for_training",
        commit_set_id=put.output,
        pachyderm_conn_id=settings.pachyderm_conn_id,
        project=settings.project,
        deferrable=settings.deferrable,
        timeout=settings.wait_timeout.total_seconds(),
        poke_interval=settings.poke_interval,
        mode=settings.sensor_mode,
        pipeline_grace_period=settings.pipeline_grace.total_seconds() or None,
        pipeline_check_interval=settings.pipeline_check_interval,
    )
    outcome = record_outcome.override(on_success_callback=training_success_callback)(
        pending.output,
        wait.output,
        checked["workflow"],
        put.output,
        settings.pachyderm_conn_id,
        settings.project,
        settings.bookkeeping_conn_id,
        settings.validity_tolerance,
        settings.efficiency_margin,
    )
    checked >> pending >> put >> committed >> wait >> outcome

    target = deployment_request(
        outcome["models"], checked["configuration"], put.output, outcome["verdicts"]
    )
    deploy = CPSignPredictionServiceOperator(
        task_id="deploy_prediction_service",
        namespace=settings.prediction_namespace,
        model_name=target["model_name"],
        predictor_type=target["predictor_type"],
        model_location=target["location"],
        model_version=target["version"],
        pachyderm_namespace=settings.pachyderm_namespace,
        pachyderm_token_secret=settings.prediction_token_secret,
        kubernetes_conn_id=settings.kubernetes_conn_id,
    )
    published = RecordPublicationOperator(
        task_id="record_publication",
        run_id=pending.output,
        model_name=target["model_name"],
        location=target["location"],
        deployment=deploy.output,
        **conns,
    )
    target >> deploy >> published
