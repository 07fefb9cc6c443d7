"""A fake Kubernetes API server: the REST endpoints this provider uses, on loopback.

No Kubernetes API server can run on the test machines, so tests point the
unmodified ``kubernetes`` Python client at this one through a kubeconfig, the
same way :class:`~airflow.providers.cncf.kubernetes.hooks.kubernetes.KubernetesHook`
loads one (connection extra ``kube_config_path``). It is a stdlib
``ThreadingHTTPServer`` on ``127.0.0.1`` (port 0 by default) with its state in
plain dicts. Entry points: :class:`FakeKubeApiServer`,
``python -m cpsign_airflow.testing.kube_apiserver``, and the ``kube_apiserver``
/ ``kube_conn`` fixtures in ``cpsign_airflow.testing.kube_apiserver.pytest_plugin``.

Reproduced:

* ``/version``, ``/api``, ``/apis``, ``/api/v1``, ``/apis/apps/v1`` discovery.
* core/v1 ``secrets`` and ``services``, apps/v1 ``deployments``, namespaced:
  get, list (equality label selectors), create (201), update/PUT (optimistic
  concurrency on ``metadata.resourceVersion``: 409 Conflict), patch with
  ``application/merge-patch+json`` (RFC 7386) or
  ``application/strategic-merge-patch+json`` (approximated, see below), delete.
* Status objects with Kubernetes' codes, reasons and message texts: 401
  Unauthorized (bearer token from the kubeconfig is checked), 403 Forbidden (the
  RBAC text ``secrets "x" is forbidden: User "..." cannot get resource "secrets"
  in API group "" in the namespace "ns"``, switched on with
  :meth:`FakeKubeApiServer.deny`), 404 NotFound (object, or namespace on write),
  409 AlreadyExists / Conflict, 422 Invalid with ``details.causes``.
* ``metadata.resourceVersion`` is bumped only when a write really changes the
  stored object (a no-op PUT/PATCH keeps it, as an API server does);
  ``metadata.generation`` on deployments starts at 1 and is bumped on spec
  changes only; ``uid``/``creationTimestamp`` are set on create.
* Server-side defaults callers read back: Secret ``type`` Opaque and
  ``stringData`` folded into ``data``; Service ``type`` ClusterIP, allocated
  ``clusterIP`` (immutable), port ``protocol``/``targetPort``, allocated
  ``nodePort`` for NodePort/LoadBalancer (kept across updates); Deployment
  ``replicas``, ``strategy``, ``revisionHistoryLimit``, ``progressDeadlineSeconds``,
  pod ``restartPolicy``/``dnsPolicy``, container ``imagePullPolicy``.
* Validation (422): object names (DNS-1123 subdomain; DNS-1035 label for
  services), label keys/values, Secret keys and base64 data, 1 MiB Secret size,
  immutable Secret ``type``, Service ports, immutable ``clusterIP``, Deployment
  selector present / matching the template labels / immutable, containers with
  name and image, volume mounts naming a volume.
* ``status`` is not writable through the main endpoint (the subresource rule);
  :meth:`FakeKubeApiServer.put_object` seeds objects with a status (e.g. a
  LoadBalancer ingress). With ``auto_ready`` (default) the deployment
  controller's end state (all replicas updated/ready/available,
  ``observedGeneration`` = ``generation``) is written with every spec change.
* Every request reaching a resource endpoint is recorded in ``calls`` as
  ``(verb, group, resource, namespace, name, code)``, so tests can compare the
  verbs used with an RBAC manifest.

Not reproduced / simplified (known differences):

* No TLS, no client certificates, no in-cluster service-account config: only a
  bearer token over HTTP. No authorization model beyond :meth:`deny` switches
  (no Roles are evaluated; everything not denied is allowed).
* Only the three resource kinds above; no namespaces API (namespaces are a set
  managed from Python), no pods, replica sets, endpoints, nodes, events,
  subresources (``/status``, ``/scale``), cluster-scoped or all-namespace lists.
* No watch, no field selectors, no set-based label selectors, no pagination
  (``limit``/``continue``), no ``dryRun``, no server-side apply
  (``application/apply-patch+yaml``), no JSON patch (415), no protobuf/CBOR.
* Strategic merge patch merges lists by key only for containers, initContainers,
  volumes, volumeMounts, env, ports and imagePullSecrets, and ignores the
  ``$patch``/``$retainKeys``/``$setElementOrder`` directives.
* No controllers: pods never run, readiness probes are never executed, the
  deployment status jumps to "rolled out" (or stays as seeded with
  ``auto_ready=False``); services get no endpoints and LoadBalancers no ingress
  unless seeded. resourceVersions are one global counter but the status write
  happens in the same write as the spec change.
* Defaulting and validation cover what is listed above, not the full OpenAPI
  schema: unknown fields are stored as sent, not pruned or rejected.
* No finalizers, owner references or garbage collection; delete is immediate.
"""

from __future__ import annotations

from .server import Call, FakeKubeApiServer

__all__ = ["Call", "FakeKubeApiServer"]
