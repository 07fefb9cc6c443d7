"""The Airflow plugin that adds "CPSign models" to the UI's navigation.

The package registers it through its ``airflow.plugins`` entry point, so
installing it is enough. The api-server mounts :data:`app` at ``/cpsign-models``;
the UI shows that page inside Airflow at ``/plugin/cpsign-models``. The nav
entry's links are relative, so they follow Airflow's base URL.

Plugins are imported by every Airflow component (scheduler, workers, DAG
processor), so this module imports nothing heavy: :class:`LazyApp` builds the
FastAPI app (Jinja2, SQLAlchemy, matplotlib on demand) at its first request, in
the api-server only. If that fails, the reason goes to the api-server's log, the
page says so, and the api-server carries on.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from cpsign_airflow.config import MODELS_PAGE_PREFIX

log = logging.getLogger(__name__)

URL_PREFIX = MODELS_PAGE_PREFIX
URL_ROUTE = "cpsign-models"


class LazyApp:
    """An ASGI app that builds :func:`~cpsign_airflow.models_page.app.create_app` on first use."""

    def __init__(self) -> None:
        self._app: Any = None

    def __repr__(self) -> str:
        return "cpsign_airflow.models_page.app:create_app()"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if self._app is None:
            try:
                from cpsign_airflow.models_page.app import create_app

                self._app = create_app()
            except Exception:  # noqa: BLE001 - logged with the reason; the server lives on
                log.exception("the CPSign models page could not be loaded")
                if scope["type"] == "http":
                    from starlette.responses import PlainTextResponse

                    from cpsign_airflow.models_page.security import SecurityHeaders

                    # answered before any login check: the reason stays in the log
                    reason = "The CPSign models page could not be loaded; see the api-server's log."
                    answer = SecurityHeaders(PlainTextResponse(reason, status_code=500))
                    await answer(scope, receive, send)
                return
        await self._app(scope, receive, send)


app = LazyApp()


class CpsignModelsPlugin(AirflowPlugin):
    """Workflows, their models' validity and efficiency over runs, and each run's record."""

    name = "cpsign_models"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "CPSign models"}]
    external_views = [
        {
            "name": "CPSign models",
            # relative: resolved against Airflow's base URL (<base href>), so a proxy path works
            "href": f"{URL_PREFIX.lstrip('/')}/",
            "destination": "nav",
            "url_route": URL_ROUTE,
            "icon": f"{URL_PREFIX.lstrip('/')}/icon.svg",
            "nav_top_level": True,
        }
    ]
