"""Kubernetes tests run against the fake API server (no cluster on these machines)."""

from __future__ import annotations

import pytest

from cpsign_airflow.testing.kube_apiserver import pytest_plugin as _kube_plugin

# The root conftest owns pytest_plugins; expose the plugin's fixtures to this folder.
kube_apiserver = _kube_plugin.kube_apiserver
kube_conn = _kube_plugin.kube_conn

NAMESPACE = "pachyderm"


@pytest.fixture
def fake(kube_apiserver):
    """The fake server, with the ``pachyderm`` namespace created."""
    kube_apiserver.server.create_namespace(NAMESPACE)
    return kube_apiserver.server
