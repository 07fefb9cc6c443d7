"""The provider is discoverable by Airflow, and its connection form needs no hook import."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_airflow_lists_the_provider_and_its_form_without_importing_grpc():
    code = """
import json, sys
from airflow.providers_manager import ProvidersManager
pm = ProvidersManager()
providers = list(pm.providers)
# What the connection UI reads: metadata only, "without importing every hook".
widgets = sorted(k for k in pm._connection_form_widgets_from_metadata if k.startswith("extra__pachyderm__"))
behaviour = pm._field_behaviours_from_metadata.get("pachyderm")
names = {m.connection_type: m.hook_name for m in pm.iter_connection_type_hook_ui_metadata()}
print(json.dumps({"providers": providers, "widgets": widgets, "behaviour": behaviour, "name": names.get("pachyderm"),
                  "grpc": "grpc" in sys.modules, "hook": "cpsign_airflow.hooks.pachyderm" in sys.modules}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "cpsign-airflow" in result["providers"]
    assert (
        "extra__pachyderm__tls" in result["widgets"]
        and "extra__pachyderm__console_url" in result["widgets"]
    )
    assert result["behaviour"]["relabeling"]["password"] == "Auth token"
    assert result["name"] == "Pachyderm"
    assert result["grpc"] is False and result["hook"] is False


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
