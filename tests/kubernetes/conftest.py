"""Kubernetes tests: against the fake API server, or a real one given by kubeconfig.

By default every test gets a fresh :class:`~cpsign_airflow.testing.kube_apiserver.FakeKubeApiServer`.
Set ``CPSIGN_TEST_KUBECONFIG=/path/to/kubeconfig`` to run them against the API
server of that kubeconfig's current context instead (e.g. a kube-apiserver
with etcd on loopback). Its user must be able to create namespaces and to
create, read, patch and delete secrets, services and deployments in
``CPSIGN_TEST_KUBE_NAMESPACE`` (default ``cpsign-airflow-test``): the tests
own that namespace and empty it before each test - never point it at one
holding anything of value.

* ``kube`` - the API server under test, read and seeded through the
  ``kubernetes`` client (works on both);
* ``kube_conn`` - the ``kubernetes_default`` connection pointing at it;
* ``fake`` - the fake's test-only controls (seeding objects with a status,
  RBAC denials, the request log, playing the deployment controller, failure
  injection): a test that asks for it is skipped against a real server, with
  that reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kube_target import FAKE_ONLY, KUBECONFIG, NAMESPACE, REAL  # noqa: E402,F401

_METHODS = {
    "secrets": ("core", "namespaced_secret"),
    "services": ("core", "namespaced_service"),
    "deployments": ("apps", "namespaced_deployment"),
}


@dataclass
class KubeTarget:
    """The API server under test, through the ``kubernetes`` client (plain dicts)."""

    kubeconfig_path: Path
    namespace: str
    fake: Any = None  # the FakeKubeApiServer, or None for a real server
    _clients: dict[str, Any] = field(default_factory=dict)

    @property
    def is_real(self) -> bool:
        return self.fake is None

    def _api(self, group: str) -> Any:
        if not self._clients:
            from kubernetes import client, config

            configuration = client.Configuration()
            config.load_kube_config(
                config_file=str(self.kubeconfig_path), client_configuration=configuration
            )
            api_client = client.ApiClient(configuration)
            self._clients.update(
                core=client.CoreV1Api(api_client),
                apps=client.AppsV1Api(api_client),
                api_client=api_client,
            )
        return self._clients[group]

    @property
    def core(self) -> Any:
        return self._api("core")

    @property
    def apps(self) -> Any:
        return self._api("apps")

    def _call(self, resource: str, op: str, *args: Any, **kwargs: Any) -> Any:
        group, suffix = _METHODS[resource]
        method = getattr(self._api(group), f"{op}_{suffix}")
        response = method(*args, _preload_content=False, **kwargs)
        return json.loads(response.data or b"null")

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict | None:
        """The object as the API returns it, or None (404)."""
        from kubernetes.client.exceptions import ApiException

        try:
            return self._call(resource, "read", name, namespace or self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, resource: str, obj: dict[str, Any]) -> dict:
        """Create ``obj`` through the API (validated as any client's object is)."""
        namespace = (obj.get("metadata") or {}).get("namespace") or self.namespace
        return self._call(resource, "create", namespace, obj)

    def list(self, resource: str, namespace: str | None = None) -> list[dict]:
        return self._call(resource, "list", namespace or self.namespace)["items"]

    def empty(self, namespace: str | None = None) -> None:
        for resource in ("deployments", "services", "secrets"):
            for obj in self.list(resource, namespace):
                if obj["metadata"]["name"] == "kubernetes":  # default/kubernetes
                    continue
                self._call(resource, "delete", obj["metadata"]["name"], namespace or self.namespace)

    def ensure_namespace(self, name: str) -> None:
        """Create namespace ``name`` (the fake keeps a set; a real server has the API)."""
        if self.fake is not None:
            self.fake.create_namespace(name)
            return
        from kubernetes.client.exceptions import ApiException

        try:
            self.core.create_namespace({"metadata": {"name": name}})
        except ApiException as exc:
            # 409: it exists. 403/404: this user may not create namespaces (or the server
            # has no namespaces API); it must exist already, else the first write says so.
            if exc.status not in (403, 404, 409):
                raise


@pytest.fixture
def kube(request, tmp_path_factory) -> KubeTarget:
    """The API server under test, with namespace ``NAMESPACE`` present and empty."""
    if REAL:
        target = KubeTarget(Path(KUBECONFIG), NAMESPACE)
        target.ensure_namespace(NAMESPACE)
        target.empty()
        return target
    api = request.getfixturevalue("kube_apiserver")
    target = KubeTarget(api.kubeconfig_path, NAMESPACE, fake=api.server)
    target.ensure_namespace(NAMESPACE)
    return target


@pytest.fixture
def kube_conn(kube: KubeTarget, monkeypatch) -> str:
    """``AIRFLOW_CONN_KUBERNETES_DEFAULT`` with the kubeconfig of the server under test."""
    conn = {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kube.kubeconfig_path)}}
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(conn))
    return "kubernetes_default"


@pytest.fixture
def fake(kube: KubeTarget):
    """The fake server's test-only controls (namespace ``NAMESPACE`` created); skips the
    test when CPSIGN_TEST_KUBECONFIG points at a real API server."""
    if kube.fake is None:
        pytest.skip(FAKE_ONLY)
    return kube.fake
