"""``airflow connections test`` of a ``pachyderm://`` connection, against the pachd under
test, through Airflow's own CLI in a subprocess (issue #25: the documented ``grpc://`` URI
failed there)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cpsign_airflow.hooks.pachyderm import connection_uri


def airflow_connections_test(uri: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AIRFLOW_CONN_PACHYDERM_DEFAULT": uri,
        # Airflow 3 disables connection tests (UI, API and CLI) unless this says Enabled.
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
    }
    return subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "test", "pachyderm_default"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def failed_exit_code() -> int:
    """Airflow 3.2's ``airflow connections test`` exits 0 on a failed test; 3.3 exits 1."""
    import airflow

    return 1 if tuple(int(p) for p in airflow.__version__.split(".")[:2]) >= (3, 3) else 0


def test_airflow_connections_test_passes(pachd):
    uri = connection_uri(pachd.address, getattr(pachd, "token", None))
    assert uri.startswith("pachyderm://")
    result = airflow_connections_test(uri)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Connection success!" in result.stdout


def test_a_wrong_token_fails_without_showing_it(local_pachd):
    local_pachd.require_auth("the-real-token-4e8b")
    host_port = local_pachd.address.split("://", 1)[1]
    result = airflow_connections_test(f"pachyderm://:a-wrong-token-91c2@{host_port}")
    output = result.stdout + result.stderr
    assert result.returncode == failed_exit_code(), output
    assert "Connection failed!" in output and "token is missing or wrong" in output
    assert "a-wrong-token-91c2" not in output and "the-real-token-4e8b" not in output


@pytest.mark.parametrize("scheme", ["grpc", "grpcs"])
def test_a_grpc_uri_is_another_providers_type(scheme):
    """Why every example says pachyderm://: the scheme is the connection type."""
    result = airflow_connections_test(f"{scheme}://pachd.example.org:30650")
    assert result.returncode == failed_exit_code()
    assert f'Unknown hook type "{scheme}"' in result.stdout + result.stderr


def test_a_project_not_created_yet_still_passes(pachd, monkeypatch):
    from cpsign_airflow.hooks.pachyderm import PachydermHook

    uri = connection_uri(pachd.address, getattr(pachd, "token", None))
    sep = "&" if "?" in uri else "?"
    monkeypatch.setenv("AIRFLOW_CONN_PACHYDERM_DEFAULT", f"{uri}{sep}project=not-yet-7d2a")
    ok, message = PachydermHook().test_connection()
    assert ok, message
    assert "project 'not-yet-7d2a' not created yet" in message


def test_connection_uri_of_a_pachd_address():
    assert connection_uri("grpc://127.0.0.1:30650") == "pachyderm://127.0.0.1:30650"
    assert (
        connection_uri("grpcs://pachd.example.org:443", "a/b c")
        == "pachyderm://:a%2Fb%20c@pachd.example.org:443?tls=true"
    )
    assert connection_uri("pachd:30650") == "pachyderm://pachd:30650"
