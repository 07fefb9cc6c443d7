"""Find pachd's gRPC address from its Kubernetes Service.

Replaces the original workflow's ``export ADDRESS=<pachd IP>`` /
``pachctl port-forward``. The Pachyderm Helm chart's ``pachd`` Service names
its gRPC port ``api-grpc-port``: port 30650 for a ClusterIP/LoadBalancer
Service, port 1650 with nodePort 30650 for a NodePort Service.

Resolution order:

* Inside the cluster (Airflow runs in a pod): Kubernetes' service environment
  variables ``<SERVICE>_SERVICE_HOST`` / ``<SERVICE>_SERVICE_PORT_<PORT_NAME>``
  (upper-cased, ``-`` -> ``_``; injected only for Services in the pod's own
  namespace), else the cluster DNS name ``<service>.<namespace>.svc.cluster.local``
  with the port read from the Service.
* Outside the cluster: the Service read through ``KubernetesHook``: a
  LoadBalancer's ingress IP/hostname and port; a NodePort on ``node_host`` (or
  the API server's host, right for single-node clusters such as minikube,
  kind with port mappings, Docker Desktop); else the clusterIP, which is
  reachable only from the cluster network (logged as a warning).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from cpsign_airflow.kubernetes import errors
from cpsign_airflow.kubernetes.client import KubeClient

log = logging.getLogger(__name__)

#: Port names tried in order when none is given (Helm chart first).
GRPC_PORT_NAMES = ("api-grpc-port", "grpc", "api-grpc", "grpc-port")
#: Port numbers pachd's gRPC API listens on in its Service variants.
GRPC_PORT_NUMBERS = (30650, 1650)
POD_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
CLUSTER_DOMAIN = "cluster.local"


def _env_prefix(service: str) -> str:
    return service.upper().replace("-", "_").replace(".", "_")


def _pod_namespace() -> str | None:
    try:
        with open(POD_NAMESPACE_FILE, encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def running_in_cluster(environ: Mapping[str, str] | None = None) -> bool:
    """True in a Kubernetes pod (the kubelet sets ``KUBERNETES_SERVICE_HOST`` in every pod)."""
    return bool((os.environ if environ is None else environ).get("KUBERNETES_SERVICE_HOST"))


def from_service_env(
    service: str,
    namespace: str,
    port_name: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, int] | None:
    """The address from service environment variables, or ``None`` when they do not apply."""
    env = os.environ if environ is None else environ
    pod_ns = _pod_namespace()
    if pod_ns is not None and pod_ns != namespace:
        return None  # the variables describe Services of the pod's namespace only
    prefix = _env_prefix(service)
    host = env.get(f"{prefix}_SERVICE_HOST")
    if not host:
        return None
    names = (port_name,) if port_name else GRPC_PORT_NAMES
    for name in names:
        value = env.get(f"{prefix}_SERVICE_PORT_{_env_prefix(name)}")
        if value:
            return host, int(value)
    if port_name:
        return None
    value = env.get(f"{prefix}_SERVICE_PORT")  # the first port of the Service
    if value and int(value) in GRPC_PORT_NUMBERS:
        return host, int(value)
    return None


def pick_port(ports: list[dict[str, Any]], port_name: str | None, where: str) -> dict[str, Any]:
    """The Service port that carries pachd's gRPC API."""
    if port_name:
        for port in ports:
            if port.get("name") == port_name:
                return port
        raise errors.PachdDiscoveryError(
            f"{where} has no port named {port_name!r} (ports: {_describe(ports)})"
        )
    for name in GRPC_PORT_NAMES:
        for port in ports:
            if port.get("name") == name:
                return port
    for number in GRPC_PORT_NUMBERS:
        for port in ports:
            if number in (port.get("port"), port.get("nodePort"), port.get("targetPort")):
                return port
    if len(ports) == 1:
        return ports[0]
    raise errors.PachdDiscoveryError(
        f"{where}: cannot tell which port is pachd's gRPC API (ports: {_describe(ports)}); "
        "set the connection extra 'k8s_port_name'"
    )


def _describe(ports: list[dict[str, Any]]) -> str:
    return ", ".join(f"{p.get('name') or '?'}={p.get('port')}" for p in ports) or "none"


def resolve_pachd_address(
    namespace: str,
    service: str = "pachd",
    kubernetes_conn_id: str = "kubernetes_default",
    port_name: str | None = None,
    *,
    in_cluster: bool | None = None,
    node_host: str | None = None,
    client: KubeClient | None = None,
) -> tuple[str, int]:
    """``(host, port)`` of pachd's gRPC API, from Service ``namespace/service``.

    :param in_cluster: whether Airflow's workers run inside the cluster; by
        default detected from ``KUBERNETES_SERVICE_HOST``.
    :param node_host: address of a node, for NodePort Services reached from outside.
    :raises PachdDiscoveryError: naming the namespace and service tried.
    """
    where = f"Service {namespace}/{service}"
    if in_cluster is None:
        in_cluster = running_in_cluster()
    if in_cluster:
        found = from_service_env(service, namespace, port_name)
        if found:
            log.info("pachd at %s:%d (service environment variables of %s)", *found, where)
            return found
    client = client or KubeClient(kubernetes_conn_id)
    try:
        svc = client.get("services", namespace, service)
    except errors.KubernetesError as exc:
        raise errors.PachdDiscoveryError(
            f"cannot resolve pachd from {where} (connection {kubernetes_conn_id!r}): {exc}"
        ) from None
    if svc is None:
        raise errors.PachdDiscoveryError(
            f"cannot resolve pachd: {where} not found (connection {kubernetes_conn_id!r}); "
            "check the Pachyderm connection's extras 'k8s_namespace' and 'k8s_service'"
        )
    spec = svc.get("spec") or {}
    port = pick_port(spec.get("ports") or [], port_name, where)
    if in_cluster:
        host = f"{service}.{namespace}.svc.{CLUSTER_DOMAIN}"
        log.info("pachd at %s:%d (cluster DNS of %s)", host, port["port"], where)
        return host, int(port["port"])
    svc_type = spec.get("type") or "ClusterIP"
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    for entry in ingress:
        host = entry.get("ip") or entry.get("hostname")
        if host:
            log.info("pachd at %s:%d (load balancer of %s)", host, port["port"], where)
            return host, int(port["port"])
    if svc_type in ("NodePort", "LoadBalancer") and port.get("nodePort"):
        host = node_host or urlparse(client.server).hostname
        if host:
            log.info(
                "pachd at %s:%d (nodePort of %s on %s)",
                host,
                port["nodePort"],
                where,
                "the given node" if node_host else "the API server's host",
            )
            return host, int(port["nodePort"])
    cluster_ip = spec.get("clusterIP")
    if cluster_ip and cluster_ip != "None":
        log.warning(
            "pachd at %s:%d: the clusterIP of %s (type %s), reachable only from inside the "
            "cluster network; expose pachd (LoadBalancer/NodePort) or run Airflow in the cluster",
            cluster_ip,
            port["port"],
            where,
            svc_type,
        )
        return cluster_ip, int(port["port"])
    raise errors.PachdDiscoveryError(
        f"cannot resolve pachd from {where}: type {svc_type} with no load-balancer ingress, "
        "node port or cluster IP"
    )


def resolve_from_connection(conn: Any) -> tuple[str, int] | None:
    """pachd's address for a Pachyderm connection that names a Kubernetes Service.

    Applies when the connection has no host and its extras set ``k8s_namespace``
    (plus optionally ``k8s_service`` (default ``pachd``), ``k8s_port_name``,
    ``k8s_node_host``, ``kubernetes_conn_id`` (default ``kubernetes_default``),
    ``k8s_in_cluster`` (default: detected)); returns ``None`` otherwise, so the
    caller falls back to host/port.
    """
    extra = conn.extra_dejson or {}
    namespace = (extra.get("k8s_namespace") or "").strip()
    if (conn.host or "").strip() or not namespace:
        return None
    in_cluster = extra.get("k8s_in_cluster")
    if isinstance(in_cluster, str):
        in_cluster = in_cluster.strip().lower() in ("1", "true", "yes", "on")
    return resolve_pachd_address(
        namespace,
        (extra.get("k8s_service") or "pachd").strip(),
        extra.get("kubernetes_conn_id") or "kubernetes_default",
        extra.get("k8s_port_name") or None,
        in_cluster=in_cluster,
        node_host=extra.get("k8s_node_host") or None,
    )
