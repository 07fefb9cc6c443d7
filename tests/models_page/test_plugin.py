"""The plugin: installed with the package, light to import, never breaking the api-server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cpsign_airflow.models_page import plugin

LIST_PLUGINS = """
import json, sys
from airflow import plugins_manager
apps, _ = plugins_manager.get_fastapi_plugins()
views, _ = plugins_manager._get_ui_plugins()
print(json.dumps({
    "apps": [{"prefix": a["url_prefix"], "name": a["name"]} for a in apps],
    "views": views,
    "errors": plugins_manager._get_plugins()[1],
    "matplotlib_imported": "matplotlib" in sys.modules,
}))
"""


def test_airflow_finds_the_page_through_the_installed_package(tmp_path: Path) -> None:
    # run where a deployment runs: outside the source tree
    out = subprocess.run(
        [sys.executable, "-c", LIST_PLUGINS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"prefix": plugin.URL_PREFIX, "name": "CPSign models"} in found["apps"]
    [view] = [v for v in found["views"] if v["name"] == "CPSign models"]
    assert view["url_route"] == plugin.URL_ROUTE and view["destination"] == "nav"
    # relative: the UI resolves it against Airflow's base URL
    assert view["href"] == "cpsign-models/" and view["icon"] == "cpsign-models/icon.svg"
    assert found["errors"] == {}
    assert found["matplotlib_imported"] is False  # built lazily, on the first request


def test_a_page_that_cannot_load_logs_the_reason_and_the_server_lives_on(
    monkeypatch: pytest.MonkeyPatch, cpsign_caplog: pytest.LogCaptureFixture
) -> None:
    caplog = cpsign_caplog
    from cpsign_airflow.models_page import app as page_app

    def broken() -> None:
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(page_app, "create_app", broken)
    server = FastAPI()

    @server.get("/health")
    def health() -> dict:
        return {"ok": True}

    server.mount(plugin.URL_PREFIX, plugin.LazyApp())
    client = TestClient(server)
    page = client.get(f"{plugin.URL_PREFIX}/")
    assert page.status_code == 500
    assert page.text == "The CPSign models page could not be loaded; see the api-server's log."
    assert "No module named 'matplotlib'" in caplog.text  # the reason: logged, not shown
    assert client.get("/health").json() == {"ok": True}
