"""Kubernetes tests run against the fake API server (no cluster on these machines)."""

from __future__ import annotations

import pytest

# The root conftest owns pytest_plugins; take the fixtures from the plugin module here.
from cpsign_airflow.testing.kube_apiserver.pytest_plugin import (  # noqa: F401
    kube_apiserver,
    kube_conn,
)

NAMESPACE = "pachyderm"


@pytest.fixture
def fake(kube_apiserver):
    """The fake server, with the ``pachyderm`` namespace created."""
    kube_apiserver.server.create_namespace(NAMESPACE)
    return kube_apiserver.server


@pytest.fixture
def kube(kube_conn, fake):
    """A KubeClient on ``kubernetes_default`` -> the fake, through KubernetesHook."""
    from cpsign_airflow.kubernetes.client import KubeClient

    return KubeClient(kube_conn)
