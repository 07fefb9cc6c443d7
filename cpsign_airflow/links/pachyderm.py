"""Operator extra link to the Pachyderm Console.

Operators push the URL of the commit or pipeline they touched to XCom when the
connection has a ``console_url``; the link reads it back, so rendering the task
page needs no connection lookup and no call to pachd. The hook builds the URL
with every id percent-encoded (:func:`cpsign_airflow.hooks.pachyderm.console_link`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey

CONSOLE_URL_XCOM_KEY = "pachyderm_console_url"


class PachydermConsoleLink(BaseOperatorLink):
    """ "Pachyderm Console" button on task instances that touched a commit or pipeline."""

    name = "Pachyderm Console"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        url = XCom.get_value(key=CONSOLE_URL_XCOM_KEY, ti_key=ti_key) or ""
        # the UI makes it a link: only a web URL (the hook's, with encoded segments)
        return url if isinstance(url, str) and urlparse(url).scheme in ("http", "https") else ""
