"""``dag.test()`` on Airflow 3.2: what its in-process Execution API needs (3.3 needs none of it).

Used by the demo and the test suite's DAG runner, which run DAGs through ``dag.test()``.
On Airflow 3.2 every task of such a run otherwise fails with a 500 from the in-process API
("'State' object has no attribute 'svcs_registry'"), for two reasons inside Airflow 3.2:

- The API's lifespan builds a token validator from ``[api_auth] jwt_secret`` and raises
  without one (3.3 stubs the validator out in process). A random secret is set when none is.
- ``airflow.sdk.execution_time.supervisor.in_process_api_server()`` makes one API per task
  and keeps only its transport; the API object, which holds the lifespan's context, is
  garbage-collected, the lifespan exits, and svcs (26.2 on) then detaches its registry from
  the app (3.3 ties the lifespan to the transport). The recent APIs are kept here.

And its in-process runner calls a failed task's ``on_failure_callback`` without
``context["exception"]`` (3.3 sets it, as the task runner does in a worker): it is set here.
"""

from __future__ import annotations

import secrets
from collections import deque
from typing import Any

#: The in-process APIs of the latest tasks: dag.test() runs one task at a time.
_KEPT: deque[Any] = deque(maxlen=64)


def prepare_dag_test() -> None:
    """Make Airflow 3.2's ``dag.test()`` run its tasks; nothing on Airflow 3.3 or newer.

    Idempotent; affects this process only.
    """
    import airflow

    if tuple(int(part) for part in airflow.__version__.split(".")[:2]) >= (3, 3):
        return
    from airflow.configuration import conf
    from airflow.sdk.execution_time import supervisor

    if not conf.get("api_auth", "jwt_secret", fallback=None):
        conf.set("api_auth", "jwt_secret", secrets.token_urlsafe(32))
    original = supervisor.in_process_api_server
    if getattr(original, "_cpsign_keeps_apis", False):
        return
    from airflow.sdk.execution_time import task_runner

    finalize = task_runner.finalize

    def finalize_with_exception(ti: Any, state: Any, context: Any, log: Any, error: Any = None):
        if error is not None and context.get("exception") is None:
            context["exception"] = error
        return finalize(ti, state, context, log, error)

    task_runner.finalize = finalize_with_exception

    def in_process_api_server() -> Any:
        api = original()
        _KEPT.append(api)
        return api

    in_process_api_server._cpsign_keeps_apis = True  # type: ignore[attr-defined]
    supervisor.in_process_api_server = in_process_api_server
