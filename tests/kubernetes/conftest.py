"""Kubernetes tests run against the fake API server (no cluster on these machines)."""

from __future__ import annotations

import pytest

# kube_apiserver and kube_conn come from cpsign_airflow.testing.kube_apiserver.pytest_plugin,
# loaded by the root conftest.
NAMESPACE = "pachyderm"


@pytest.fixture
def fake(kube_apiserver):
    """The fake server, with the ``pachyderm`` namespace created."""
    kube_apiserver.server.create_namespace(NAMESPACE)
    return kube_apiserver.server
