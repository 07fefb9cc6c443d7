"""pachd address discovery from its Kubernetes Service."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlparse

import pytest
from kube_target import FAKE_ONLY, NAMESPACE

from cpsign_airflow.kubernetes import discovery, errors
from cpsign_airflow.kubernetes.discovery import resolve_pachd_address

# The Pachyderm Helm chart's pachd Service ports (ClusterIP/LoadBalancer form).
PACHD_PORTS = [
    {"name": "api-grpc-port", "port": 30650, "targetPort": "api-grpc-port"},
    {"name": "s3gateway-port", "port": 30600, "targetPort": "s3gateway-port"},
    {"name": "oidc-port", "port": 30657, "targetPort": "oidc-port"},
]


def pachd_service(kube, svc_type="ClusterIP", ports=None, status=None, name="pachd"):
    """Create (or replace) pachd's Service through the API; a status (a LoadBalancer's
    ingress, written by controllers) can only be seeded in the fake."""
    obj = {
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "pachd"}},
        "spec": {"type": svc_type, "selector": {"app": "pachd"}, "ports": ports or PACHD_PORTS},
    }
    if status:
        if kube.fake is None:
            pytest.skip(FAKE_ONLY + " (a Service's status is written by controllers)")
        obj["status"] = status
        return kube.fake.put_object("services", obj)
    if kube.get("services", name) is not None:
        kube.core.delete_namespaced_service(name, NAMESPACE)
    return kube.create("services", obj)


@pytest.fixture(autouse=True)
def outside_any_pod(monkeypatch, tmp_path):
    """Tests decide whether Airflow is 'in the cluster'; the host may itself be a pod."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(discovery, "POD_NAMESPACE_FILE", str(tmp_path / "no-such-file"))


def test_load_balancer_ingress(kube_conn, kube, fake):
    pachd_service(
        kube, "LoadBalancer", status={"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}
    )
    assert resolve_pachd_address(NAMESPACE) == ("203.0.113.7", 30650)
    pachd_service(
        kube, "LoadBalancer", status={"loadBalancer": {"ingress": [{"hostname": "pachd.example"}]}}
    )
    assert resolve_pachd_address(NAMESPACE, kubernetes_conn_id=kube_conn) == (
        "pachd.example",
        30650,
    )
    assert [(c.verb, c.resource, c.namespace, c.name) for c in fake.calls] == [
        ("get", "services", NAMESPACE, "pachd")
    ] * 2


def test_node_port_on_given_node_or_api_server_host(kube_conn, kube):
    pachd_service(
        kube,
        "NodePort",
        ports=[
            {"name": "api-grpc-port", "port": 1650, "nodePort": 30650},
            {"name": "s3gateway-port", "port": 1600, "nodePort": 30600},
        ],
    )
    assert resolve_pachd_address(NAMESPACE, node_host="10.0.0.5") == ("10.0.0.5", 30650)
    # No node given: the API server's host (single-node clusters: minikube, Docker Desktop).
    host = urlparse(kube.core.api_client.configuration.host).hostname
    assert resolve_pachd_address(NAMESPACE) == (host, 30650)


def test_cluster_ip_from_outside_warns(kube_conn, kube, caplog):
    svc = pachd_service(kube)
    with caplog.at_level(logging.WARNING, logger="cpsign_airflow.kubernetes.discovery"):
        assert resolve_pachd_address(NAMESPACE) == (svc["spec"]["clusterIP"], 30650)
    assert "reachable only from inside the cluster network" in caplog.text


def test_in_cluster_uses_service_environment_variables(kube_conn, kube, monkeypatch):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("PACHD_SERVICE_HOST", "10.96.7.7")
    monkeypatch.setenv("PACHD_SERVICE_PORT", "30650")
    monkeypatch.setenv("PACHD_SERVICE_PORT_API_GRPC_PORT", "30650")
    monkeypatch.setenv("PACHD_SERVICE_PORT_S3GATEWAY_PORT", "30600")
    assert resolve_pachd_address(NAMESPACE) == ("10.96.7.7", 30650)
    if kube.fake is not None:
        assert kube.fake.calls == []  # no API call needed
    # A service in another namespace: the variables do not describe it; DNS + API port.
    pod_ns = discovery.POD_NAMESPACE_FILE
    with open(pod_ns, "w") as fh:
        fh.write("airflow")
    pachd_service(kube)
    calls = len(kube.fake.calls) if kube.fake is not None else 0
    assert resolve_pachd_address(NAMESPACE) == (f"pachd.{NAMESPACE}.svc.cluster.local", 30650)
    if kube.fake is not None:
        assert len(kube.fake.calls) == calls + 1


def test_in_cluster_dns_with_named_port_and_custom_service(kube_conn, kube):
    pachd_service(
        kube,
        name="pachyderm-pachd",
        ports=[{"name": "metrics", "port": 9091}, {"name": "grpc", "port": 31650}],
    )
    found = resolve_pachd_address(NAMESPACE, "pachyderm-pachd", in_cluster=True)
    assert found == (f"pachyderm-pachd.{NAMESPACE}.svc.cluster.local", 31650)
    assert (
        resolve_pachd_address(NAMESPACE, "pachyderm-pachd", port_name="metrics", in_cluster=True)[1]
        == 9091
    )


def test_missing_service_names_namespace_and_service(kube_conn, kube):
    with pytest.raises(errors.PachdDiscoveryError) as exc:
        resolve_pachd_address(NAMESPACE, "pachd-nope")
    assert f"Service {NAMESPACE}/pachd-nope not found" in str(exc.value)
    assert "connection 'kubernetes_default'" in str(exc.value)


def test_ambiguous_ports_are_explained(kube_conn, kube):
    pachd_service(kube, ports=[{"name": "a", "port": 1}, {"name": "b", "port": 2}])
    with pytest.raises(
        errors.PachdDiscoveryError,
        match=rf"Service {NAMESPACE}/pachd: cannot tell which port .*a=1, b=2",
    ):
        resolve_pachd_address(NAMESPACE)
    with pytest.raises(
        errors.PachdDiscoveryError, match=f"Service {NAMESPACE}/pachd has no port named 'grpc'"
    ):
        resolve_pachd_address(NAMESPACE, port_name="grpc")


def test_forbidden_is_explained(kube_conn, kube, fake):
    pachd_service(kube)
    fake.deny("get", "services", NAMESPACE)
    with pytest.raises(errors.PachdDiscoveryError) as exc:
        resolve_pachd_address(NAMESPACE)
    message = str(exc.value)
    assert message.startswith(f"cannot resolve pachd from Service {NAMESPACE}/pachd")
    assert (
        f'cannot get resource "services" in API group "" in the namespace "{NAMESPACE}"' in message
    )
    assert "(403 Forbidden)" in message


def test_unreachable_api_server(monkeypatch, fake, kube_apiserver):

    cfg = fake.kubeconfig()
    fake.stop()  # nothing listens on that port any more
    path = kube_apiserver.kubeconfig_path
    path.write_text(json.dumps(cfg))
    monkeypatch.setenv(
        "AIRFLOW_CONN_KUBERNETES_DEFAULT",
        json.dumps({"conn_type": "kubernetes", "extra": {"kube_config_path": str(path)}}),
    )
    with pytest.raises(errors.PachdDiscoveryError, match="cannot reach the Kubernetes API server"):
        resolve_pachd_address(NAMESPACE)


def test_resolve_from_pachyderm_connection(kube_conn, kube, fake, monkeypatch):
    from airflow.sdk import BaseHook

    from cpsign_airflow.kubernetes.discovery import resolve_from_connection

    pachd_service(
        kube, "LoadBalancer", status={"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}}
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_PACHYDERM_K8S",
        json.dumps({"conn_type": "pachyderm", "extra": {"k8s_namespace": NAMESPACE}}),
    )
    assert resolve_from_connection(BaseHook.get_connection("pachyderm_k8s")) == (
        "203.0.113.9",
        30650,
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_PACHYDERM_K8S",
        json.dumps(
            {
                "conn_type": "pachyderm",
                "extra": {
                    "k8s_namespace": NAMESPACE,
                    "k8s_service": "nope",
                    "k8s_in_cluster": "true",
                },
            }
        ),
    )
    with pytest.raises(errors.PachdDiscoveryError, match=f"Service {NAMESPACE}/nope not found"):
        resolve_from_connection(BaseHook.get_connection("pachyderm_k8s"))
    monkeypatch.setenv("AIRFLOW_CONN_PACHYDERM_K8S", "pachyderm://pachd.example:30650")
    assert resolve_from_connection(BaseHook.get_connection("pachyderm_k8s")) is None


def test_pachyderm_hook_finds_pachd_through_kubernetes(
    kube_conn, kube, fake, local_pachd, monkeypatch
):
    """The hook, given only a namespace, reaches a real (local) pachd found via its Service."""
    from cpsign_airflow.hooks.pachyderm import PachydermHook

    ports = [{"name": "api-grpc-port", "port": local_pachd.port, "targetPort": 1650}]
    pachd_service(
        kube,
        "LoadBalancer",
        ports=ports,
        status={"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}},
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_PACHYDERM_DEFAULT",
        json.dumps({"conn_type": "pachyderm", "extra": {"k8s_namespace": NAMESPACE}}),
    )
    hook = PachydermHook(max_retries=0)
    ok, message = hook.test_connection()
    assert ok, message
    assert f"127.0.0.1:{local_pachd.port}" in message
    assert hook.ensure_repo("found-by-discovery")["created"] is True
    monkeypatch.setenv(
        "AIRFLOW_CONN_PACHYDERM_DEFAULT",
        json.dumps({"conn_type": "pachyderm", "extra": {"k8s_namespace": "elsewhere"}}),
    )
    with pytest.raises(errors.PachdDiscoveryError, match="elsewhere/pachd"):
        _ = PachydermHook().address
    ok, message = PachydermHook().test_connection()
    assert not ok and "elsewhere/pachd" in message
