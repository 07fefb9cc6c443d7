"""The training group's first task: what to train, checked before anything is committed.

:func:`validate` checks the configuration against the schema, then (with source
connections) its query (:mod:`~cpsign_airflow.workflow.preflight`); a refused
configuration is recorded as a ``rejected`` run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import task

log = logging.getLogger(__name__)


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
