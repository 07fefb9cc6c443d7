"""A fake Kubernetes API server: the REST endpoints this provider uses, on loopback.

No Kubernetes API server can run on the test machines, so tests point the
unmodified ``kubernetes`` Python client at this one through a kubeconfig, the
same way :class:`~airflow.providers.cncf.kubernetes.hooks.kubernetes.KubernetesHook`
loads one (connection extra ``kube_config_path``). It is a stdlib
``ThreadingHTTPServer`` on ``127.0.0.1`` (port 0 by default) with its state in
plain dicts. Entry points: :class:`FakeKubeApiServer`,
``python -m cpsign_airflow.testing.kube_apiserver``, and the ``kube_apiserver``
/ ``kube_conn`` fixtures in ``tests/fixture_plugins/kube_apiserver.py``.

Reproduced:

* ``/version``, ``/api``, ``/apis``, ``/api/v1``, ``/apis/apps/v1`` discovery.
* core/v1 ``secrets`` and ``services``, apps/v1 ``deployments``, namespaced:
  get, list (equality label selectors), create (201), update/PUT (optimistic
  concurrency on ``metadata.resourceVersion``: 409 Conflict), patch with
  ``application/merge-patch+json`` (RFC 7386), ``application/json-patch+json``
  (RFC 6902), ``application/strategic-merge-patch+json`` or server-side apply
  ``application/apply-patch+yaml`` (both approximated, see below), delete.
* Status objects with Kubernetes' codes, reasons and message texts: 401
  Unauthorized (bearer token from the kubeconfig is checked), 403 Forbidden (the
  RBAC text ``secrets "x" is forbidden: User "..." cannot get resource "secrets"
  in API group "" in the namespace "ns"``, switched on with
  :meth:`FakeKubeApiServer.deny`), 404 NotFound (object, or namespace on write),
  409 AlreadyExists / Conflict, 422 Invalid with ``details.causes`` (message
  ``<Kind>.<group> "name" is invalid: ...``), and 400 BadRequest for a body that
  does not decode, as a real 1.36 server answers: bad base64 in a Secret
  (``Secret in version "v1" cannot be handled as a Secret: illegal base64 data at
  input byte N``) or a bad quantity in a container's ``resources``
  (``... quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'``,
  ``unable to parse quantity's suffix``); the same through a patch is 422
  ``"" is invalid: patch: Invalid value: "<patched object>": ...``.
* Unknown fields of a container's ``resources`` (anything but ``limits``,
  ``requests``, ``claims``) are dropped with a ``Warning: 299 - "unknown field
  \"spec.template.spec.containers[0].resources.limit\""`` header, as the real
  server does with its default ``fieldValidation=Warn``.
* ``metadata.resourceVersion`` is bumped only when a write really changes the
  stored object (a no-op PUT/PATCH keeps it, as an API server does);
  ``metadata.generation`` on deployments starts at 1 and is bumped on spec
  changes only; ``uid``/``creationTimestamp`` are set on create.
* Server-side defaults callers read back: Secret ``type`` Opaque and
  ``stringData`` folded into ``data``; Service ``type`` ClusterIP, allocated
  ``clusterIP`` (immutable), port ``protocol``/``targetPort``, allocated
  ``nodePort`` for NodePort/LoadBalancer (the lowest free one of 30000-32767;
  a port sent without one keeps the nodePort of the old port of the same name,
  even when its number changed, as ``patchAllocatedValues`` does); Deployment
  ``replicas``, ``strategy``, ``revisionHistoryLimit``, ``progressDeadlineSeconds``,
  pod ``restartPolicy``/``dnsPolicy``, container ``imagePullPolicy``.
* Validation (422): object names (DNS-1123 subdomain; DNS-1123 label for
  services, so ``1st-model`` is accepted as a 1.36 server with
  RelaxedServiceNameValidation does), label keys/values, annotations (256 KiB
  in total: ``metadata.annotations: Too long: may not be more than 262144
  bytes``), Secret keys, 1 MiB Secret size, immutable Secret ``type``, the keys
  typed Secrets require (``data[.dockerconfigjson]: Required value``,
  ``.dockercfg``, basic-auth ``username`` or ``password``, ``ssh-privatekey``,
  ``tls.crt``/``tls.key``, the service-account-name annotation) and JSON in
  docker configs, Service ports, nodePorts (``provided port is not in the valid
  range. The range of valid ports is 30000-32767``, ``provided port is already
  allocated``), immutable ``clusterIP``, Deployment selector present / matching
  the template labels / immutable, containers with name and image, volume
  mounts naming a volume.
* ``status`` is not writable through the main endpoint (the subresource rule);
  :meth:`FakeKubeApiServer.put_object` seeds objects with a status (e.g. a
  LoadBalancer ingress). A new Deployment's status is ``{}`` and stays so, as
  on a real API server without a controller manager (the provider's
  ``wait_for_ready`` ends at its timeout). Fake-only controls play the
  deployment controller: :meth:`FakeKubeApiServer.complete_rollout` writes the
  end state of a rollout (all replicas updated/ready/available,
  ``observedGeneration`` = ``generation``) once; ``auto_ready=True`` writes it
  with every spec change.
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
  (``limit``/``continue``), no ``dryRun``, no protobuf/CBOR. Server-side apply
  needs ``fieldManager`` and creates or merges the applied configuration like a
  strategic merge patch: no ``managedFields``, no ownership conflicts, no
  removal of fields a manager stopped applying.
* Strategic merge patch merges lists by key only for containers, initContainers,
  volumes, volumeMounts, env, ports and imagePullSecrets, and ignores the
  ``$patch``/``$retainKeys``/``$setElementOrder`` directives.
* No controllers: pods never run, readiness probes are never executed, a
  Deployment stays progressing unless a fake-only control rolls it out;
  services get no endpoints and LoadBalancers no ingress unless seeded. No
  ``/status`` or ``/scale`` subresources, no Endpoints or EndpointSlices.
* Defaulting and validation cover what is listed above, not the full OpenAPI
  schema: unknown fields other than those of container ``resources`` are
  stored as sent, where a real server drops them with a warning.
* No finalizers, owner references or garbage collection; delete is immediate.
"""

from __future__ import annotations

from .server import Call, FakeKubeApiServer

__all__ = ["Call", "FakeKubeApiServer"]
