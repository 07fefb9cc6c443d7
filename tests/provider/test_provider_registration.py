"""The provider is discoverable by Airflow, and its connection form needs no hook import (3.3+)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cpsign_airflow.get_provider_info import get_provider_info


def test_provider_info_declares_modules_and_connection_type():
    info = get_provider_info()
    assert info["package-name"] == "cpsign-airflow"
    modules = {
        m
        for section in ("hooks", "operators", "sensors", "triggers")
        for entry in info[section]
        for m in entry["python-modules"]
    }
    for module in modules:
        __import__(module)  # every declared module exists
    [conn] = info["connection-types"]
    assert conn["connection-type"] == "pachyderm"
    assert conn["hook-class-name"] == "cpsign_airflow.hooks.pachyderm.PachydermHook"
    assert {"tls", "root_certs", "project", "console_url"} <= set(conn["conn-fields"])


FORM_CODE = """
import json, sys
from airflow.providers_manager import ProvidersManager
pm = ProvidersManager()
providers = list(pm.providers)
metadata_only = hasattr(pm, "iter_connection_type_hook_ui_metadata")
if metadata_only:  # Airflow >= 3.3: what the connection UI reads, "without importing every hook"
    widgets = pm._connection_form_widgets_from_metadata
    behaviours = pm._field_behaviours_from_metadata
    names = {m.connection_type: m.hook_name for m in pm.iter_connection_type_hook_ui_metadata()}
else:  # Airflow 3.2: what its connection UI reads (HookMetaService), importing every hook
    widgets = pm.connection_form_widgets
    behaviours = pm.field_behaviours
    names = {key: hook.hook_name for key, hook in pm.hooks.items() if hook}
print(json.dumps({"providers": providers, "metadata_only": metadata_only,
                  "widgets": sorted(k for k in widgets if k.startswith("extra__pachyderm__")),
                  "behaviour": behaviours.get("pachyderm"), "name": names.get("pachyderm"),
                  "grpc": "grpc" in sys.modules, "hook": "cpsign_airflow.hooks.pachyderm" in sys.modules}))
"""


@pytest.fixture(scope="module")
def connection_form() -> dict:
    out = subprocess.run([sys.executable, "-c", FORM_CODE], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_airflow_lists_the_provider_and_its_connection_form(connection_form):
    result = connection_form
    assert "cpsign-airflow" in result["providers"]
    assert (
        "extra__pachyderm__tls" in result["widgets"]
        and "extra__pachyderm__console_url" in result["widgets"]
    )
    assert result["behaviour"]["relabeling"]["password"] == "Auth token"
    assert result["name"] == "Pachyderm"


def test_the_connection_form_imports_neither_the_hook_nor_grpc(connection_form):
    import airflow

    if not connection_form["metadata_only"]:
        pytest.skip(
            f"Airflow {airflow.__version__} < 3.3: its connection form imports every hook "
            "(HookMetaService); from 3.3 on it reads provider metadata only"
        )
    assert connection_form["grpc"] is False and connection_form["hook"] is False


def test_airflow_cli_lists_the_provider():
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = [p["package_name"] for p in json.loads(out.stdout[out.stdout.index("[") :])]
    assert "cpsign-airflow" in names


def test_asset_uris_register_the_pachyderm_scheme_for_openlineage():
    """provider.yaml's asset-uris: Airflow's handler, factory and OpenLineage converter for
    pachyderm:// Assets (what the hook reports to the hook-lineage collector)."""
    from airflow.sdk.module_loading import import_string

    try:  # what OpenLineage reads on Airflow 3.2+
        from airflow.sdk.plugins_manager import ProvidersManagerTaskRuntime as ProvidersManager
    except ImportError:
        from airflow.providers_manager import ProvidersManager

    [entry] = get_provider_info()["asset-uris"]
    assert entry["schemes"] == ["pachyderm"]
    for key in ("handler", "factory", "to_openlineage_converter"):
        assert callable(import_string(entry[key])), key
    manager = ProvidersManager()
    assert manager.asset_uri_handlers["pachyderm"] is import_string(entry["handler"])
    assert manager.asset_to_openlineage_converters["pachyderm"] is import_string(
        entry["to_openlineage_converter"]
    )
