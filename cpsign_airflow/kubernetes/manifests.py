"""Manifests of a CPSign prediction service: one Deployment and one Service.

The CPSign prediction servers (``ghcr.io/arosbio/cpsign-*-server``) are Jetty
applications on port 8080 serving one model jar, read from ``MODEL_FILE`` or
``/var/lib/jetty/model.jar``; ``/api/v2/health`` answers 200 once the model
is loaded.

How the model jar gets into the pod
-----------------------------------
An init container downloads it into an ``emptyDir`` volume that the server
container mounts at ``/var/lib/jetty/model.jar`` (``MODEL_FILE`` names the
same path), so the server image is used unmodified. Two sources:

* **Pachyderm (default)**: through pachd's S3 gateway (``s3gateway-port``,
  30600 on the ``pachd`` Service) as
  ``<commit>.<branch>.<repo>.<project>/<path>`` - addressed by commit id, so
  the pod serves exactly the trained version even after the branch moves.
  This is the route that respects Pachyderm's access controls: with auth
  enabled the gateway authenticates each request with a Pachyderm token given
  as both S3 access key and secret key (signature v4), and checks it like any
  PFS call. Use a robot token with ``repoReader`` on the model repo only,
  stored in a Kubernetes Secret (e.g. with
  ``KubernetesSecretFromConnectionOperator``) and named by
  ``pachyderm_token_secret``; it reaches the init container as an environment
  variable from that Secret and is handed to curl on stdin, never in the pod
  spec, the logs or XCom. Without auth, leave the secret unset.
* **URL**: any HTTP(S) URL (``model_url``), e.g. a pre-signed object-store
  link; nothing Pachyderm-specific.

The init image is ``curlimages/curl`` (``--aws-sigv4`` needs curl >= 7.75).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from cpsign_airflow.kubernetes import errors
from cpsign_airflow.kubernetes.client import MANAGED_BY, MANAGED_BY_LABEL

IMAGE_REGISTRY = "ghcr.io/arosbio"
#: Server image per kind of predictor.
SERVER_IMAGES = {
    "clf": f"{IMAGE_REGISTRY}/cpsign-cp-clf-server",
    "reg": f"{IMAGE_REGISTRY}/cpsign-cp-reg-server",
    "vap": f"{IMAGE_REGISTRY}/cpsign-vap-clf-server",
}
#: CPSign ``--ptype``: 1 ACP classification, 2 ACP regression, 3 TCP classification,
#: 5 Venn-ABERS classification.
PTYPE_SERVER = {1: "clf", 2: "reg", 3: "clf", 5: "vap"}
DEFAULT_IMAGE_TAG = "latest"
FETCH_IMAGE = "curlimages/curl:8.8.0"
MODEL_PATH = "/var/lib/jetty/model.jar"
MODEL_VOLUME = "model"
SERVER_PORT = 8080
HEALTH_PATH = "/api/v2/health"
S3_GATEWAY_PORT = 30600
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

VERSION_LABEL = "cpsign-airflow/model-version"
LOCATION_ANNOTATION = "cpsign-airflow/model-location"
SPEC_HASH_ANNOTATION = "cpsign-airflow/spec-hash"
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
APP_NAME = "cpsign-prediction-service"

_LOCATION = re.compile(
    r"^(?:(?P<project>[^/@:]+)/)?(?P<repo>[^/@:]+)@(?:(?P<branch>[^=:@]+)=)?(?P<commit>[^=:@]+):(?P<path>/.*)\Z"
)
_COMMIT_ID = re.compile(r"^[0-9a-f]{32}\Z")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")

#: Keys of a container's ``resources`` (Kubernetes ``ResourceRequirements``).
RESOURCE_SECTIONS = ("limits", "requests")
#: Resource names a container may set without a domain prefix.
STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
#: A Kubernetes quantity (``resource.Quantity``): ``<signedNumber><suffix>``.
QUANTITY = re.compile(
    r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?\Z"
)
_HUGEPAGES = re.compile(r"^hugepages-[0-9]+(?:[KMGTPE]i|[kMGTPE])?\Z")
_QUALIFIED_RESOURCE = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    r"/([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z"
)


@dataclass(frozen=True)
class ModelLocation:
    """``[project/]repo@[branch=]commit:/path`` - a file at one Pachyderm commit."""

    repo: str
    commit: str
    path: str
    branch: str = "master"
    project: str = "default"

    @classmethod
    def parse(cls, text: str) -> ModelLocation:
        match = _LOCATION.match(text.strip()) if isinstance(text, str) else None
        if not match:
            raise ValueError(
                f"model location {text!r}: expected '[project/]repo@[branch=]commit:/path'"
            )
        if not _COMMIT_ID.match(match["commit"]):
            raise ValueError(
                f"model location {text!r}: {match['commit']!r} is not a commit id (32 hex "
                "characters); a branch would change under the service - give the commit"
            )
        return cls(
            repo=match["repo"],
            commit=match["commit"],
            path=match["path"],
            branch=match["branch"] or "master",
            project=match["project"] or "default",
        )

    def __str__(self) -> str:
        prefix = f"{self.project}/" if self.project != "default" else ""
        return f"{prefix}{self.repo}@{self.branch}={self.commit}:{self.path}"

    @property
    def s3_bucket(self) -> str:
        return f"{self.commit}.{self.branch}.{self.repo}.{self.project}"

    @property
    def s3_key(self) -> str:
        return self.path.lstrip("/")


def server_kind(predictor_type: int | str) -> str:
    """``clf``/``reg``/``vap`` for a CPSign ptype (1, 2, 3, 5) or one of those names."""
    if isinstance(predictor_type, str) and predictor_type in SERVER_IMAGES:
        return predictor_type
    try:
        return PTYPE_SERVER[int(predictor_type)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"predictor type {predictor_type!r}: expected ptype 1, 2, 3 or 5, or one of "
            f"{sorted(SERVER_IMAGES)}"
        ) from None


def service_name_for(model_name: str) -> str:
    """A DNS-1035 label (valid Service and Deployment name) from a model name."""
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)
    if not name or not name[0].isalpha():
        name = f"cpsign-{name}".rstrip("-")
    return name[:63].rstrip("-")


def validate_container_resources(resources: Any) -> dict[str, dict[str, Any]]:
    """The server container's ``resources``, checked before any request is made.

    A real API server drops fields it does not know (only a ``Warning`` header,
    which the client ignores, says so): ``{"limit": {...}}`` would deploy with
    no limits at all. So only ``limits`` and ``requests`` are taken, each
    mapping a resource name (``cpu``, ``memory``, ``ephemeral-storage``,
    ``hugepages-<size>`` or a domain-prefixed extended resource such as
    ``nvidia.com/gpu``) to a quantity (``"500m"``, ``"1Gi"``, ``2``).
    ``claims`` (dynamic resource allocation) needs pod-level
    ``resourceClaims``, which this operator does not set, so it is refused too.

    :raises errors.KubernetesInvalid: naming the offending key or value.
    """

    def invalid(text: str) -> errors.KubernetesInvalid:
        return errors.KubernetesInvalid(f"container_resources: {text}", code=None, reason="Invalid")

    if resources is None:
        return {}
    if not isinstance(resources, dict):
        raise invalid(
            f"expected a dict like {{'requests': {{'cpu': '500m'}}, 'limits': {{'memory': "
            f"'1Gi'}}}}, got {type(resources).__name__}"
        )
    out: dict[str, dict[str, Any]] = {}
    for section, values in resources.items():
        if section == "claims":
            raise invalid(
                "'claims' (dynamic resource allocation) needs pod-level resourceClaims, which "
                "this operator does not set; use 'limits' and 'requests'"
            )
        if section not in RESOURCE_SECTIONS:
            raise invalid(
                f"unknown key {section!r}: only 'limits' and 'requests' are allowed "
                "(a Kubernetes API server silently drops unknown fields)"
            )
        if not isinstance(values, dict):
            raise invalid(f"{section!r} must map resource names to quantities")
        for name, quantity in values.items():
            if not isinstance(name, str) or not (
                name in STANDARD_CONTAINER_RESOURCES
                or _HUGEPAGES.match(name)
                or (_QUALIFIED_RESOURCE.match(name) and len(name) <= 253)
            ):
                raise invalid(
                    f"{section}: unknown resource {name!r}: expected cpu, memory, "
                    "ephemeral-storage, hugepages-<size> or an extended resource with a domain "
                    "prefix (e.g. nvidia.com/gpu)"
                )
            text = str(quantity).strip() if not isinstance(quantity, bool) else ""
            if (
                isinstance(quantity, bool)
                or not isinstance(quantity, (str, int, float))
                or (not QUANTITY.match(text))
            ):
                raise invalid(
                    f"{section}.{name}: {quantity!r} is not a Kubernetes quantity "
                    "(e.g. '500m', '2', '1Gi', '512Mi')"
                )
        out[section] = dict(values)
    return out


def spec_hash(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _fetch_script(signed: bool) -> str:
    auth = ""
    if signed:
        # Credentials go to curl on stdin (-K -), so they never appear in argv.
        auth = 'TOKEN="${PACH_TOKEN:-anonymous}"; printf \'user = "%s:%s"\\n\' "$TOKEN" "$TOKEN" | '
    sigv4 = (
        '-K - --aws-sigv4 "aws:amz:us-east-1:s3" '
        f'-H "x-amz-content-sha256: {EMPTY_SHA256}" '  # GET: the hash of an empty payload
        if signed
        else ""
    )
    return (
        "set -eu; "
        f"{auth}curl --fail --silent --show-error --location --retry 5 --retry-connrefused "
        f'{sigv4}--output /model/model.jar.part "$MODEL_SOURCE_URL" '
        "&& mv /model/model.jar.part /model/model.jar "
        '&& echo "model fetched: $(wc -c < /model/model.jar) bytes"'
    )


def build_prediction_service(
    *,
    name: str,
    namespace: str,
    image: str,
    model_version: str,
    model_url: str,
    model_location: str | None = None,
    pachyderm_token_secret: str | None = None,
    pachyderm_token_key: str = "auth-token",
    signed_fetch: bool = True,
    fetch_image: str = FETCH_IMAGE,
    replicas: int = 1,
    service_type: str = "ClusterIP",
    service_port: int = 80,
    container_resources: dict[str, Any] | None = None,
    extra_labels: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Deployment and Service (as API dicts), each carrying its spec hash.

    ``model_url`` is where the init container downloads the jar from (the S3
    gateway URL for Pachyderm locations, signed when ``signed_fetch``).
    """
    if not _LABEL_VALUE.match(model_version) or len(model_version) > 63:
        raise ValueError(
            f"model version {model_version!r} must be a valid label value (<= 63 characters: "
            "letters, digits, '-', '_', '.')"
        )
    selector = {NAME_LABEL: APP_NAME, INSTANCE_LABEL: name}
    labels = {
        **(extra_labels or {}),
        **selector,
        "app.kubernetes.io/component": "predictor",
        MANAGED_BY_LABEL: MANAGED_BY,
        VERSION_LABEL: model_version,
    }
    annotations = {LOCATION_ANNOTATION: model_location or model_url}
    fetch_env: list[dict[str, Any]] = [{"name": "MODEL_SOURCE_URL", "value": model_url}]
    if pachyderm_token_secret:
        fetch_env.append(
            {
                "name": "PACH_TOKEN",
                "valueFrom": {
                    "secretKeyRef": {"name": pachyderm_token_secret, "key": pachyderm_token_key}
                },
            }
        )
    server: dict[str, Any] = {
        "name": "cpsign-server",
        "image": image,
        "env": [{"name": "MODEL_FILE", "value": MODEL_PATH}],
        "ports": [{"name": "http", "containerPort": SERVER_PORT, "protocol": "TCP"}],
        "volumeMounts": [
            {
                "name": MODEL_VOLUME,
                "mountPath": MODEL_PATH,
                "subPath": "model.jar",
                "readOnly": True,
            }
        ],
        "readinessProbe": {
            "httpGet": {"path": HEALTH_PATH, "port": "http"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
    }
    resources = validate_container_resources(container_resources)
    if resources:
        server["resources"] = resources
    pod_spec = {
        "initContainers": [
            {
                "name": "fetch-model",
                "image": fetch_image,
                "command": ["sh", "-c", _fetch_script(signed_fetch)],
                "env": fetch_env,
                "volumeMounts": [{"name": MODEL_VOLUME, "mountPath": "/model"}],
            }
        ],
        "containers": [server],
        "volumes": [{"name": MODEL_VOLUME, "emptyDir": {}}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": dict(annotations),
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": dict(labels), "annotations": dict(annotations)},
                "spec": pod_spec,
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {k: v for k, v in labels.items() if k != VERSION_LABEL},
            "annotations": {},
        },
        "spec": {
            "type": service_type,
            "selector": selector,
            "ports": [
                {"name": "http", "port": service_port, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }
    for obj in (deployment, service):
        obj["metadata"]["annotations"][SPEC_HASH_ANNOTATION] = spec_hash(
            {"metadata": obj["metadata"], "spec": obj["spec"]}
        )
    return deployment, service


def deployment_status(obj: dict[str, Any]) -> str:
    """``ready``, ``progressing`` or ``failed``, from a Deployment's status."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == (
            "ProgressDeadlineExceeded"
        ):
            return "failed"
    wanted = spec.get("replicas", 1)
    if (
        status.get("observedGeneration", 0) >= meta.get("generation", 1)
        and status.get("updatedReplicas", 0) == wanted
        and status.get("availableReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted
    ):
        return "ready"
    return "progressing"
