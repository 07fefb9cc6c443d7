"""The models page: a FastAPI app the api-server mounts at ``/cpsign-models``.

Pages are rendered on the server (Jinja2, with autoescaping) and the history
plot is inline SVG, so the page works without any script and fetches nothing
from the internet. Every route requires what Airflow's own DAG views require:
a logged-in user (Airflow's JWT cookie or a bearer token) whom the auth manager
lets read DAGs. A browser without a session is sent to Airflow's login page.

Every response carries a Content-Security-Policy (no script, nothing fetched,
framed only by Airflow's own origin), ``X-Content-Type-Options: nosniff`` and a
``Referrer-Policy``: see :mod:`cpsign_airflow.models_page.security`.

Whatever goes wrong with the bookkeeping store (no connection, database down,
an outdated schema) is shown on the page; it never reaches the api-server.
Routes are plain functions, run in FastAPI's thread pool, so a slow database
never blocks the api-server's event loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

# FastAPI reads the routes' annotations at run time, so these are module imports: this
# module is only imported by the plugin's LazyApp, in the api-server.
from airflow.api_fastapi.core_api.security import GetUserDep
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cpsign_airflow.models_page.security import SecurityHeaders

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The nav entry's icon (a bar chart), in Airflow's blue.
ICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="#017cee" '
    'stroke-width="2" stroke-linecap="round"><path d="M4 20h16M7 16v-5M12 16V6M17 16v-8"/></svg>'
)


class PageApp(FastAPI):
    """The page's FastAPI app, wrapped in :class:`SecurityHeaders` outside all of its
    middleware: every response (pages, error pages, the icon, the server's own 500,
    whatever a future route returns) carries the security headers."""

    def build_middleware_stack(self) -> Any:
        return SecurityHeaders(super().build_middleware_stack())


def _settings() -> tuple[str, str]:
    from cpsign_airflow.workflow import settings

    loaded = settings.load()
    return loaded.bookkeeping_conn_id, loaded.pachyderm_conn_id


def _console_base(pachyderm_conn_id: str) -> str | None:
    """Pachyderm Console's URL from the connection's extra, if it names one."""
    try:
        from airflow.sdk import BaseHook

        from cpsign_airflow.hooks.pachyderm import console_url_from_connection

        return console_url_from_connection(BaseHook.get_connection(pachyderm_conn_id))
    except Exception:  # noqa: BLE001 - a missing link never breaks the page
        log.debug("no Pachyderm Console URL from %r", pachyderm_conn_id, exc_info=True)
        return None


#: Run statuses in which the run waits for its commit set.
WAITING_STATUSES = ("committed", "running")


#: Seconds a run's page waits for pachd's answer on its pipelines' health; past this
#: the page is shown without it (the question goes on in its thread, and is dropped).
PIPELINE_HEALTH_TIMEOUT = 3.0
_HEALTH_THREADS: Any = None


def _within_timeout(ask: Callable[[], T], what: str) -> T | None:
    """``ask()``, or None if it has not answered within :data:`PIPELINE_HEALTH_TIMEOUT`.

    In a small pool of its own, so a pachd that does not answer (a host that drops
    packets; gRPC's connect can take 20 s) holds at most two threads, not every request."""
    global _HEALTH_THREADS
    from concurrent.futures import ThreadPoolExecutor
    from concurrent.futures import TimeoutError as FutureTimeout

    if _HEALTH_THREADS is None:
        _HEALTH_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cpsign-page")
    future = _HEALTH_THREADS.submit(ask)
    try:
        return future.result(timeout=PIPELINE_HEALTH_TIMEOUT)
    except FutureTimeout:
        future.cancel()  # if still queued behind a hung question
        log.info("%s: no answer within %.0f s; shown without it", what, PIPELINE_HEALTH_TIMEOUT)
        return None


def _unhealthy_pipelines(
    pachyderm_conn_id: str, commit_set_id: str, project: str | None
) -> list[dict[str, Any]] | None:
    """The pipelines a waiting run's commit set waits on that pachd reports unhealthy
    (CRASHING: workers cannot start; FAILURE), each with pachd's reason; None when pachd
    cannot be asked. One try, no retries: the page is not the place to wait for pachd."""
    try:
        from cpsign_airflow.hooks.pachyderm import PachydermHook
        from cpsign_airflow.hooks.pachyderm_outcome import UNHEALTHY_PIPELINE_STATES

        hook = PachydermHook(pachyderm_conn_id, project=project, max_retries=0)
        try:
            jobs = hook.list_jobs(commit_set_id)
            waiting = sorted({(j["project"], j["pipeline"]) for j in jobs if not j["finished"]})
            states = hook.pipeline_states(waiting) if waiting else []
        finally:
            hook.close()
    except Exception:  # noqa: BLE001 - pachd's health is a hint; the record is the page
        log.info("Pipelines of commit set %s not checked", commit_set_id, exc_info=True)
        return None
    return [s for s in states if s["state"] in UNHEALTHY_PIPELINE_STATES]


def _duration(value: timedelta | None) -> str:
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""


def _metric(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "" if value is None else str(value)


def _redact(value: Any) -> str:
    """Recorded text (an error, a reason, a log line) with every secret Airflow knows masked."""
    from airflow.sdk.log import redact

    return "" if value is None else str(redact(str(value)))


def _web_url(value: str | None) -> str | None:
    """Only http(s) URLs become links: a recorded URL is data, not markup."""
    from urllib.parse import urlparse

    return value if value and urlparse(value).scheme in ("http", "https") else None


def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("cpsign_airflow.models_page", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        web_url=_web_url,
        redact=_redact,
        duration=_duration,
        when=_when,
        metric=_metric,
        short=lambda s: (s or "")[:12],
    )
    from cpsign_airflow.cpsign.quality import metric_rows
    from cpsign_airflow.hooks.pachyderm import console_link

    env.globals.update(console_link=console_link, metric_rows=metric_rows)
    return env


def create_app(
    *,
    settings: Callable[[], tuple[str, str]] = _settings,
    console_base: Callable[[str], str | None] = _console_base,
    authorize: Callable[..., None] | None = None,
    pipeline_health: Callable[
        [str, str, str | None], list[dict[str, Any]] | None
    ] = _unhealthy_pipelines,
) -> FastAPI:
    """The page's app.

    ``settings`` gives the (bookkeeping, pachyderm) connection ids; ``authorize``
    is the dependency every route needs (default: Airflow's DAG read access).
    ``pipeline_health(pachyderm_conn_id, commit_set_id, project)`` lists the
    unhealthy pipelines a waiting run's commit set waits on (asked of pachd when a
    run's page is shown while it waits: bookkeeping records a run's jobs when it ends).
    """
    from cpsign_airflow.cpsign.configuration import without_secrets
    from cpsign_airflow.models_page import charts, reader

    env = _environment()
    app = PageApp(title="CPSign models", docs_url=None, redoc_url=None, openapi_url=None)

    def render(request: Request, template: str, status_code: int = 200, **values: Any) -> Any:
        # links are relative to where the api-server mounted the app (a base_url too)
        prefix = request.scope.get("root_path", "").rstrip("/")
        body = env.get_template(template).render(prefix=prefix, **values)
        return HTMLResponse(body, status_code=status_code)

    def problem(request: Request, title: str, message: str, status_code: int) -> Any:
        return render(request, "message.html", status_code, title=title, message=message)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Any:
        fields = "; ".join(
            f"{'.'.join(str(part) for part in err.get('loc', ())[1:]) or 'request'}: "
            f"{err.get('msg', 'invalid')}"
            for err in exc.errors()
        )
        return problem(request, "Bad request", fields, 400)

    @app.exception_handler(StarletteHTTPException)  # FastAPI's, and unknown routes
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Any:
        if exc.status_code == 401:
            return RedirectResponse(_login_url(request), status_code=303)
        if exc.status_code == 403:
            return problem(
                request,
                "Not allowed",
                "Your Airflow user may not read DAGs, so it may not see the CPSign models.",
                403,
            )
        return problem(request, "CPSign models", str(exc.detail), exc.status_code)

    def with_reader(request: Request, what: str, page: Callable[[Any], Any]) -> Any:
        """Run ``page`` with a reader; the store's failures become a page, never a 500."""
        from sqlalchemy.exc import SQLAlchemyError

        from cpsign_airflow.bookkeeping.engine import error_summary
        from cpsign_airflow.bookkeeping.errors import (
            BookkeepingConfigError,
            BookkeepingError,
            BookkeepingInputError,
            RunNotFound,
        )

        bookkeeping_conn_id = "(unknown)"
        try:
            bookkeeping_conn_id, _ = settings()
            with reader.open_reader(bookkeeping_conn_id) as models:
                return page(models)
        except (RunNotFound, reader.WorkflowNotFound, BookkeepingInputError) as err:
            # a run or workflow that does not exist, or an id no record can have
            return problem(request, "Not found", str(err), 404)
        except BookkeepingConfigError as err:
            return problem(
                request,
                "Bookkeeping is not configured",
                f"{err} The models page reads the bookkeeping store of the connection "
                f"named by [cpsign] bookkeeping_conn_id ({bookkeeping_conn_id!r}).",
                503,
            )
        except BookkeepingError as err:
            return problem(request, "Bookkeeping is unavailable", str(err), 503)
        except SQLAlchemyError as err:  # e.g. a SQLite file that cannot be opened
            return problem(request, "Bookkeeping is unavailable", error_summary(err), 503)
        except Exception as err:  # noqa: BLE001 - the page says what failed; the server lives on
            log.exception("CPSign models page: %s failed", what)
            return problem(request, "The page failed", f"{what} failed: {error_summary(err)}", 500)

    guard = [Depends(authorize or requires_dag_read)]

    @app.get("/icon.svg")
    def icon() -> Response:
        # no data in it: served to the navigation without a session
        return Response(ICON_SVG, media_type="image/svg+xml")

    @app.get("/", dependencies=guard, response_class=HTMLResponse)
    def workflows(request: Request) -> Any:
        return with_reader(
            request,
            "listing workflows",
            lambda models: render(request, "workflows.html", summaries=models.workflows()),
        )

    @app.get("/workflows/{name}", dependencies=guard, response_class=HTMLResponse)
    def workflow(request: Request, name: str, confidence: float | None = None) -> Any:
        def page(models: Any) -> Any:
            history = models.history(name)
            choices = reader.confidences(history.runs)
            chosen = (
                confidence if confidence is not None else reader.default_confidence(history.runs)
            )
            if chosen is not None:
                chosen = round(chosen, 9)
            if confidence is not None and chosen not in choices:
                shown = ", ".join(f"{c:g}" for c in choices) or "none"
                return problem(
                    request,
                    "Unknown confidence",
                    f"confidence: no model of {name} has metrics at {confidence:g} "
                    f"(it has: {shown})",
                    404,
                )
            points = reader.history_points(history.runs, chosen) if chosen is not None else []
            svg = (
                charts.history_svg(points, chosen, reader.efficiency_label(history.runs))
                if points
                else None
            )
            _, pachyderm_conn_id = settings()
            return render(
                request,
                "workflow.html",
                history=history,
                confidence=chosen,
                confidences=choices,
                plot=svg,
                plot_note=charts.UNAVAILABLE_NOTE if points and svg is None else None,
                points=points,
                console=console_base(pachyderm_conn_id),
            )

        return with_reader(request, f"reading the history of {name!r}", page)

    @app.get("/runs/{run_id}", dependencies=guard, response_class=HTMLResponse)
    def run(request: Request, run_id: int) -> Any:
        def page(models: Any) -> Any:
            detail = models.run(run_id)
            _, pachyderm_conn_id = settings()
            unhealthy = None
            if detail.run.status in WAITING_STATUSES and detail.run.commit_set_id:
                project = detail.workflow.project if detail.workflow else None
                commit_set = detail.run.commit_set_id
                unhealthy = _within_timeout(
                    lambda: pipeline_health(pachyderm_conn_id, commit_set, project),
                    f"Pipelines of commit set {commit_set}",
                )
            return render(
                request,
                "run.html",
                detail=detail,
                configuration=json.dumps(
                    without_secrets(detail.run.configuration), indent=2, sort_keys=True
                ),
                console=console_base(pachyderm_conn_id),
                unhealthy=unhealthy,
            )

        return with_reader(request, f"reading run {run_id}", page)

    return app


def requires_dag_read(user: GetUserDep) -> None:
    """The user may read DAGs, all of them: the page shows every workflow's records.

    Airflow's logged-in user (JWT cookie or bearer token, as its own API), asked of
    the auth manager without a DAG id. Not ``requires_access_dag``, which would
    check whatever ``dag_id`` the query string names.
    """
    from airflow.api_fastapi.app import get_auth_manager

    if not get_auth_manager().is_authorized_dag(method="GET", user=user):
        raise HTTPException(status_code=403, detail="Forbidden")


def _login_url(request: Request) -> str:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().get_url_login(next_url=str(request.url))
