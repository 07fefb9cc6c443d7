"""Pytest plugin: ``pytest_plugins = ["fixture_plugins.kube_apiserver"]`` (tests/conftest.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cpsign_airflow.testing.kube_apiserver.server import FakeKubeApiServer


@dataclass
class KubeApi:
    """A started fake API server and a kubeconfig file that points at it."""

    server: FakeKubeApiServer
    kubeconfig_path: Path


@pytest.fixture
def kube_apiserver(tmp_path_factory) -> Iterator[KubeApi]:
    """A started :class:`FakeKubeApiServer` on a free loopback port, and its kubeconfig."""
    with FakeKubeApiServer() as server:
        path = server.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
        yield KubeApi(server=server, kubeconfig_path=path)


@pytest.fixture
def kube_conn(kube_apiserver: KubeApi, monkeypatch) -> str:
    """``AIRFLOW_CONN_KUBERNETES_DEFAULT`` using the fake's kubeconfig (``kube_config_path``)."""
    conn = {
        "conn_type": "kubernetes",
        "extra": {"kube_config_path": str(kube_apiserver.kubeconfig_path)},
    }
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(conn))
    return "kubernetes_default"
