"""Operator extra link to the Pachyderm Console.

Operators push the URL of the commit or pipeline they touched to XCom when the
connection has a ``console_url``; the link reads it back, so rendering the task
page needs no connection lookup and no call to pachd.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.models.taskinstancekey import TaskInstanceKey

CONSOLE_URL_XCOM_KEY = "pachyderm_console_url"


class PachydermConsoleLink(BaseOperatorLink):
    """ "Pachyderm Console" button on task instances that touched a commit or pipeline."""

    name = "Pachyderm Console"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return XCom.get_value(key=CONSOLE_URL_XCOM_KEY, ti_key=ti_key) or ""
