"""Errors raised by the Kubernetes helpers and operators.

Messages name the namespace, kind and object involved and carry the API
server's own ``message`` (which never contains secret data); the client's
``ApiException`` is not chained, since its text includes response headers and
bodies.
"""

from __future__ import annotations

from airflow.exceptions import AirflowException


class KubernetesError(AirflowException):
    """Base class for this provider's Kubernetes errors."""


class KubernetesApiError(KubernetesError):
    """The API server answered with an error Status."""

    def __init__(self, message: str, *, code: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason


class KubernetesForbidden(KubernetesApiError):
    """403: the service account lacks an RBAC permission (see ``deploy/rbac.yaml``)."""


class KubernetesNotFound(KubernetesApiError):
    """404: the object (or its namespace) does not exist."""


class KubernetesAlreadyExists(KubernetesApiError):
    """409 AlreadyExists: a create raced with another writer."""


class KubernetesConflict(KubernetesApiError):
    """409 Conflict: the object changed since it was read."""


class KubernetesInvalid(KubernetesApiError, ValueError):
    """The API server, or a check before the request, rejected the object.

    Both 422 Invalid (validation) and 400 BadRequest: a real API server answers
    400 when the body does not even decode (bad base64 in a Secret's ``data``, a
    malformed quantity such as ``cpu: "1 core"``).
    """


class KubernetesUnavailable(KubernetesError):
    """The API server could not be reached."""


class SecretSourceError(KubernetesError, ValueError):
    """A connection, Variable or field a secret is built from is missing or malformed."""


class ObjectNotManaged(KubernetesError):
    """An object of that name exists and was not created by this provider."""


class SecretNotManaged(ObjectNotManaged):
    """A secret of that name exists and was not created by this provider."""


class MissingPipelineSecrets(KubernetesError):
    """Secrets named in pipeline specs' ``transform.secrets`` do not exist."""

    def __init__(self, message: str, missing: list[dict[str, str]]):
        super().__init__(message)
        self.missing = missing


class PachdDiscoveryError(KubernetesError):
    """pachd's address could not be resolved from its Kubernetes Service."""
