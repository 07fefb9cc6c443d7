"""Deploy a trained CPSign model as a prediction service (Deployment + Service).

Idempotent: each object carries a hash of the spec it was written from
(annotation ``cpsign-airflow/spec-hash``). The same model version with the
same settings writes nothing; a new model version merge-patches the
Deployment, whose pod template changes (label ``cpsign-airflow/model-version``,
the download URL), so Kubernetes rolls the pods; a settings-only change patches
in place. See :mod:`cpsign_airflow.kubernetes.manifests` for the pod layout and
how the model jar is fetched.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cpsign_airflow.kubernetes import errors, manifests
from cpsign_airflow.kubernetes.client import KubeClient, is_managed

log = logging.getLogger(__name__)


def ensure_object(
    client: KubeClient, resource: str, desired: dict[str, Any], *, allow_takeover: bool = False
) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    """Create, merge-patch or leave alone; returns ``(action, object, previous object)``."""
    meta = desired["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    existing = client.get(resource, namespace, name)
    if existing is None:
        try:
            return "created", client.create(resource, namespace, desired), None
        except errors.KubernetesAlreadyExists:
            existing = client.get(resource, namespace, name)
            if existing is None:
                raise
    if not is_managed(existing) and not allow_takeover:
        raise errors.ObjectNotManaged(
            f"{resource[:-1]} {namespace}/{name} exists and is not managed by cpsign-airflow; "
            "refusing to change it (choose another service_name, or allow_takeover=True)"
        )
    if resource == "deployments":
        have = (existing.get("spec") or {}).get("selector")
        want = desired["spec"]["selector"]
        if have != want:
            # A Deployment's selector is immutable (the API server answers 422), and
            # replacing the object would need the delete verb, which deploy/rbac.yaml
            # does not grant: refuse, naming both selectors.
            raise errors.ObjectNotManaged(
                f"deployment {namespace}/{name} exists with selector {_selector_text(have)}, "
                f"and this service needs selector {_selector_text(want)}; a Deployment's "
                "selector is immutable, so it cannot be taken over: delete it "
                f"(kubectl delete deployment -n {namespace} {name}) or choose another "
                "service_name"
            )
    wanted_hash = meta["annotations"][manifests.SPEC_HASH_ANNOTATION]
    current = (existing.get("metadata") or {}).get("annotations") or {}
    if is_managed(existing) and current.get(manifests.SPEC_HASH_ANNOTATION) == wanted_hash:
        return "unchanged", existing, existing
    patch = {
        "metadata": {"labels": meta["labels"], "annotations": meta["annotations"]},
        "spec": desired["spec"],
    }
    return "updated", client.merge_patch(resource, namespace, name, patch), existing


def _selector_text(selector: Any) -> str:
    labels = (selector or {}).get("matchLabels") or {} if isinstance(selector, dict) else {}
    text = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    extra = (selector or {}).get("matchExpressions") if isinstance(selector, dict) else None
    if extra:
        text += f" (+{len(extra)} matchExpressions)"
    return f"{{{text}}}"


@dataclass(frozen=True)
class PredictionServiceSpec:
    """What a prediction service is made of: the one place its parameters and their
    defaults are kept (:class:`~cpsign_airflow.kubernetes.operators.CPSignPredictionServiceOperator`
    takes the same keywords and builds this from them)."""

    namespace: str
    model_name: str
    predictor_type: int | str
    model_location: str | None = None
    model_url: str | None = None
    model_version: str | None = None
    image: str | None = None
    image_tag: str = manifests.DEFAULT_IMAGE_TAG
    service_name: str | None = None
    replicas: int = 1
    service_type: str = "ClusterIP"
    service_port: int = 80
    pachyderm_namespace: str | None = None
    s3_gateway_url: str | None = None
    pachyderm_token_secret: str | None = None
    pachyderm_token_key: str = "auth-token"
    fetch_image: str = manifests.FETCH_IMAGE
    container_resources: dict[str, Any] | None = None
    allow_takeover: bool = False
    wait_for_ready: bool = False
    ready_timeout: float = 600.0
    poll_interval: float = 5.0

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Each optional parameter's default."""
        return {
            f.name: f.default
            for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING
        }

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> PredictionServiceSpec:
        """The spec from rendered operator fields: None or an empty text is its parameter's
        default (a template that rendered to ``""`` means "not given")."""
        defaults = cls.defaults()
        return cls(
            **{
                f.name: defaults[f.name]
                if f.name in defaults and values[f.name] in (None, "")
                else values[f.name]
                for f in dataclasses.fields(cls)
            }
        )


def ensure_prediction_service(client: KubeClient, spec: PredictionServiceSpec) -> dict[str, Any]:
    """Deploy or update the service; returns what bookkeeping records (no secrets).

    ``spec.container_resources`` is the server container's Kubernetes ``resources``
    (``limits``/``requests``), checked before any request.
    """
    namespace, model_name, predictor_type = spec.namespace, spec.model_name, spec.predictor_type
    model_location, model_url, model_version = (
        spec.model_location,
        spec.model_url,
        spec.model_version,
    )
    image, image_tag, service_name = spec.image, spec.image_tag, spec.service_name
    replicas, service_type, service_port = spec.replicas, spec.service_type, spec.service_port
    pachyderm_namespace, s3_gateway_url = spec.pachyderm_namespace, spec.s3_gateway_url
    pachyderm_token_secret, pachyderm_token_key = (
        spec.pachyderm_token_secret,
        spec.pachyderm_token_key,
    )
    fetch_image, container_resources = spec.fetch_image, spec.container_resources
    allow_takeover, wait_for_ready = spec.allow_takeover, spec.wait_for_ready
    ready_timeout, poll_interval = spec.ready_timeout, spec.poll_interval
    if (model_location is None) == (model_url is None):
        raise ValueError("give exactly one of model_location ('repo@commit:/path') or model_url")
    container_resources = manifests.validate_container_resources(container_resources)
    kind = manifests.server_kind(predictor_type)
    image = image or f"{manifests.SERVER_IMAGES[kind]}:{image_tag}"
    name = service_name or manifests.service_name_for(model_name)
    if model_location is not None:
        location = manifests.ModelLocation.parse(model_location)
        version = model_version or location.commit
        gateway = (
            s3_gateway_url
            or f"http://pachd.{pachyderm_namespace or namespace}.svc.cluster.local:"
            f"{manifests.S3_GATEWAY_PORT}"
        ).rstrip("/")
        fetch_url = f"{gateway}/{location.s3_bucket}/{location.s3_key}"
        shown_location, signed = str(location), True
    else:
        if not model_version:
            raise ValueError("model_version is required with model_url")
        version, fetch_url, shown_location, signed = model_version, model_url, model_url, False
    if pachyderm_token_secret:
        token_secret = client.get("secrets", namespace, pachyderm_token_secret)
        if token_secret is None or pachyderm_token_key not in (token_secret.get("data") or {}):
            raise errors.MissingPipelineSecrets(
                f"secret {pachyderm_token_secret!r} with key {pachyderm_token_key!r} (the "
                f"Pachyderm token the model fetch uses) does not exist in namespace {namespace!r}",
                [{"secret": pachyderm_token_secret, "key": pachyderm_token_key, "pipeline": ""}],
            )
    deployment, service = manifests.build_prediction_service(
        name=name,
        namespace=namespace,
        image=image,
        model_version=version,
        model_url=fetch_url,
        model_location=shown_location,
        pachyderm_token_secret=pachyderm_token_secret,
        pachyderm_token_key=pachyderm_token_key,
        signed_fetch=signed,
        fetch_image=fetch_image,
        replicas=replicas,
        service_type=service_type,
        service_port=service_port,
        container_resources=container_resources,
    )
    dep_action, dep, previous = ensure_object(
        client, "deployments", deployment, allow_takeover=allow_takeover
    )
    svc_action, _, _ = ensure_object(client, "services", service, allow_takeover=allow_takeover)
    previous_version = (((previous or {}).get("metadata") or {}).get("labels") or {}).get(
        manifests.VERSION_LABEL
    )
    if dep_action == "updated" and previous_version != version:
        action = "rolled"
    elif dep_action == "unchanged" and svc_action != "unchanged":
        action = "updated"
    else:
        action = dep_action
    status = manifests.deployment_status(dep)
    if wait_for_ready:
        dep, status = _wait_ready(
            client, namespace, name, dep, status, ready_timeout, poll_interval
        )
    url = f"http://{name}.{namespace}.svc.cluster.local"
    url += "" if service_port == 80 else f":{service_port}"
    result = {
        "deployment": name,
        "service": name,
        "namespace": namespace,
        "url": url,
        "model_version": version,
        "model_location": shown_location,
        "image": image,
        "action": action,
        "status": status,
        "generation": int((dep.get("metadata") or {}).get("generation") or 0),
    }
    log.info(
        "Prediction service %s/%s: %s (model version %s, %s, status %s) at %s",
        namespace,
        name,
        action,
        version,
        image,
        status,
        url,
    )
    return result


def _wait_ready(
    client: KubeClient,
    namespace: str,
    name: str,
    dep: dict[str, Any],
    status: str,
    timeout: float,
    poll_interval: float,
) -> tuple[dict[str, Any], str]:
    deadline = time.monotonic() + timeout
    while status != "ready":
        if status == "failed":
            raise errors.KubernetesError(
                f"deployment {namespace}/{name} failed to roll out (ProgressDeadlineExceeded); "
                "check the fetch-model init container's log and the readiness probe "
                f"{manifests.HEALTH_PATH}"
            )
        if time.monotonic() >= deadline:
            raise errors.KubernetesError(
                f"deployment {namespace}/{name} not ready after {timeout:.0f}s (status {status}); "
                f"its pods must pass the readiness probe {manifests.HEALTH_PATH}"
            )
        time.sleep(poll_interval)
        dep = client.get("deployments", namespace, name) or dep
        status = manifests.deployment_status(dep)
    return dep, status
