"""Plain-dict access to secrets, services and deployments through ``KubernetesHook``.

Objects go in and come out as the API's JSON (dicts), not the client's model
classes, so they compare and hash directly. Responses are read with
``_preload_content=False``: the ``kubernetes`` client logs every preloaded
response body at DEBUG level, and a Secret's body is its data.
"""

from __future__ import annotations

import json
import logging
from functools import cached_property
from typing import TYPE_CHECKING, Any

from cpsign_airflow.kubernetes import errors

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

log = logging.getLogger(__name__)

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "cpsign-airflow"

#: resource -> (hook attribute with the API object, method suffix, Kind, API group)
RESOURCES: dict[str, tuple[str, str, str, str]] = {
    "secrets": ("core_v1_client", "namespaced_secret", "Secret", ""),
    "services": ("core_v1_client", "namespaced_service", "Service", ""),
    "deployments": ("apps_v1_client", "namespaced_deployment", "Deployment", "apps"),
}
_SINGULAR = {"secrets": "secret", "services": "service", "deployments": "deployment"}
_ERRORS: dict[tuple[int, str | None], type[errors.KubernetesApiError]] = {
    # A real kube-apiserver answers 400 BadRequest for a body that does not decode
    # ("Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data ...",
    # "... quantities must match the regular expression ..."), 422 for validation.
    (400, None): errors.KubernetesInvalid,
    (403, None): errors.KubernetesForbidden,
    (404, None): errors.KubernetesNotFound,
    (409, "AlreadyExists"): errors.KubernetesAlreadyExists,
    (409, None): errors.KubernetesConflict,
    (422, None): errors.KubernetesInvalid,
}


def is_managed(obj: dict[str, Any] | None) -> bool:
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY


def _status_of(exc: Any) -> tuple[int, str | None, str]:
    """(code, reason, message) of an ApiException, from its Status body when there is one."""
    code = int(getattr(exc, "status", 0) or 0)
    try:
        body = json.loads(exc.body or b"{}")
    except (TypeError, ValueError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    reason = body.get("reason") or getattr(exc, "reason", None)
    message = body.get("message") or str(getattr(exc, "reason", "") or "")
    return code, reason, message


def translate_api_exception(exc: Any, action: str) -> errors.KubernetesApiError:
    """A typed error for an ``ApiException``; never includes request or response bodies."""
    code, reason, message = _status_of(exc)
    cls = _ERRORS.get((code, reason)) or _ERRORS.get((code, None)) or errors.KubernetesApiError
    text = (
        f"{action}: {message} ({code} {reason})" if message else f"{action}: HTTP {code} {reason}"
    )
    if code == 403:
        text += (
            "; the Airflow service account needs this permission: see deploy/rbac.yaml "
            "(Role cpsign-airflow) and bind it in this namespace"
        )
    return cls(text, code=code, reason=reason)


class KubeClient:
    """Secrets, services and deployments as dicts, over one ``KubernetesHook``.

    :param kubernetes_conn_id: cncf-kubernetes connection (in-cluster, kubeconfig
        path or inline kubeconfig, as that provider supports).
    """

    def __init__(self, kubernetes_conn_id: str = "kubernetes_default") -> None:
        self.kubernetes_conn_id = kubernetes_conn_id

    @cached_property
    def hook(self) -> KubernetesHook:
        from cpsign_airflow.extras import require

        hooks = require("airflow.providers.cncf.kubernetes.hooks.kubernetes", "kubernetes")
        return hooks.KubernetesHook(conn_id=self.kubernetes_conn_id)

    @property
    def is_in_cluster(self) -> bool:
        return bool(self.hook.is_in_cluster)

    @property
    def server(self) -> str:
        """The API server URL the hook's client talks to."""
        return str(self.hook.api_client.configuration.host)

    def _call(self, resource: str, op: str, action: str, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        attr, suffix, _, _ = RESOURCES[resource]
        method = getattr(getattr(self.hook, attr), f"{op}_{suffix}")
        try:
            response = method(*args, _preload_content=False, **kwargs)
            return json.loads(response.data or b"null")
        except ApiException as exc:
            raise translate_api_exception(exc, action) from None
        except HTTPError as exc:
            raise errors.KubernetesUnavailable(
                f"{action}: cannot reach the Kubernetes API server "
                f"(connection {self.kubernetes_conn_id!r}): {type(exc).__name__}"
            ) from None

    @staticmethod
    def _what(resource: str, namespace: str, name: str | None = None) -> str:
        return f"{_SINGULAR[resource]} {namespace}/{name}" if name else f"{resource} in {namespace}"

    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or ``None`` if it does not exist."""
        try:
            return self._call(
                resource, "read", f"get {self._what(resource, namespace, name)}", name, namespace
            )
        except errors.KubernetesNotFound:
            return None

    def create(self, resource: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        return self._call(
            resource, "create", f"create {self._what(resource, namespace, name)}", namespace, body
        )

    def replace(self, resource: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT (verb ``update``); pass ``metadata.resourceVersion`` for optimistic locking."""
        name = body["metadata"]["name"]
        return self._call(
            resource,
            "replace",
            f"update {self._what(resource, namespace, name)}",
            name,
            namespace,
            body,
        )

    def merge_patch(
        self, resource: str, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """PATCH with ``application/merge-patch+json`` (verb ``patch``)."""
        return self._call(
            resource,
            "patch",
            f"patch {self._what(resource, namespace, name)}",
            name,
            namespace,
            patch,
            _content_type="application/merge-patch+json",
        )
