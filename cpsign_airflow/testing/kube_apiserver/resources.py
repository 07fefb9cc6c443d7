"""Resource kinds the fake API server serves: defaults and validation.

Each kind applies the server-side defaults Kubernetes fills in that callers
commonly read back, and the validation errors (422 Invalid) a caller is likely
to hit. Messages follow the API server's ``<field>: Invalid value: ...`` form.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from dataclasses import dataclass
from typing import Any

DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z"
)
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?\Z")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]\Z")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+\Z")
MAX_SECRET_BYTES = 1024 * 1024
#: ``TotalAnnotationSizeLimitB``: keys plus values of all annotations of an object.
MAX_ANNOTATIONS_BYTES = 256 * 1024
#: The default ``--service-node-port-range``.
NODE_PORT_RANGE = (30000, 32767)
#: apimachinery ``resource.ErrFormatWrong`` (pkg/api/resource/quantity.go).
QUANTITY_FORMAT_WRONG = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
QUANTITY_SUFFIX = "unable to parse quantity's suffix"
_QUANTITY_SUFFIXES = {"", "n", "u", "m", "k", "M", "G", "T", "P", "E"} | {f"{p}i" for p in "KMGTPE"}
#: Fields of ``ResourceRequirements``; the server drops others (with a warning).
RESOURCE_REQUIREMENTS_FIELDS = ("limits", "requests", "claims")
#: Keys each typed Secret requires (pkg/apis/core/validation ValidateSecret).
TYPED_SECRET_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


class DecodeError(Exception):
    """The body does not decode into the kind's Go type (the server answers 400, or 422
    ``patch: Invalid value`` for a patch)."""


def parse_quantity(text: Any) -> str | None:
    """``None`` if ``text`` parses as a ``resource.Quantity``, else apimachinery's error.

    A port of ``ParseQuantity``/``parseQuantityString`` (sign, digits, optional
    fraction, suffix letters, optional signed exponent digits), then the suffix
    table (binary ``Ki``..``Ei``, decimal ``n``..``E``, ``e<int>``/``E<int>``).
    JSON numbers are accepted, as ``Quantity.UnmarshalJSON`` does.
    """
    if text is None:
        return None
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        return QUANTITY_FORMAT_WRONG
    value = text.strip() if isinstance(text, str) else json.dumps(text)
    if not value:
        return QUANTITY_FORMAT_WRONG
    pos, end = 0, len(value)
    if value[0] in "+-":
        pos = 1
    while pos < end and value[pos].isdigit():
        pos += 1
    if pos < end and value[pos] == ".":
        pos += 1
        while pos < end and value[pos].isdigit():
            pos += 1
    start = pos
    while pos < end and value[pos] in "eEinumkKMGTP":
        pos += 1
    if pos < end and value[pos] in "+-":
        pos += 1
    while pos < end and value[pos].isdigit():
        pos += 1
    if pos < end:
        return QUANTITY_FORMAT_WRONG
    suffix = value[start:]
    if suffix in _QUANTITY_SUFFIXES:
        return None
    if len(suffix) > 1 and suffix[0] in "eE" and re.fullmatch(r"[+-]?[0-9]+", suffix[1:]):
        return None
    return QUANTITY_SUFFIX


@dataclass(frozen=True)
class Kind:
    resource: str  # plural, as in URLs and RBAC rules
    kind: str
    group: str  # "" for core
    version: str
    name_pattern: re.Pattern[str]
    name_max: int
    has_status: bool = False
    has_generation: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    # -------------------------------------------------------------- hooks
    def default(self, obj: dict[str, Any], old: dict[str, Any] | None, server: Any) -> None:
        """Fill server-side defaults in place (``old`` is the stored object on update)."""

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[tuple[str, str]]:
        return []


def _invalid_value(value: Any, detail: str) -> str:
    return f'Invalid value: "{value}": {detail}'


def container_lists(pod: dict[str, Any]):
    """``(field, index, container)`` of the pod's init containers and containers."""
    for field in ("initContainers", "containers"):
        for i, container in enumerate((pod or {}).get(field) or []):
            if isinstance(container, dict):
                yield field, i, container


def decode(kind: Kind, obj: dict[str, Any]) -> list[str]:
    """What decoding the JSON into the Go type does: raise :class:`DecodeError` on a value
    that does not decode (bad base64, bad quantity); drop unknown ``resources`` fields and
    return the server's warnings for them (``unknown field "..."``)."""
    warnings: list[str] = []
    if kind.resource == "secrets":
        for value in (obj.get("data") or {}).values():
            if value is None:
                continue
            try:
                if not isinstance(value, str):
                    raise TypeError
                base64.b64decode(value, validate=True)
            except (binascii.Error, TypeError, ValueError):
                at = next(
                    (i for i, ch in enumerate(str(value)) if not (ch.isalnum() or ch in "+/=")),
                    len(str(value)) // 4 * 4,
                )
                raise DecodeError(f"illegal base64 data at input byte {at}") from None
    if kind.resource == "deployments":
        pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        for field, i, container in container_lists(pod):
            resources = container.get("resources")
            if not isinstance(resources, dict):
                continue
            for key in list(resources):
                if key not in RESOURCE_REQUIREMENTS_FIELDS:
                    warnings.append(
                        f'unknown field "spec.template.spec.{field}[{i}].resources.{key}"'
                    )
                    del resources[key]
            for section in ("limits", "requests"):
                for value in (resources.get(section) or {}).values():
                    error = parse_quantity(value)
                    if error:
                        raise DecodeError(error)
    return warnings


def validate_metadata(kind: Kind, obj: dict[str, Any]) -> list[tuple[str, str]]:
    causes: list[tuple[str, str]] = []
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    elif len(name) > kind.name_max or not kind.name_pattern.match(name):
        if kind.name_pattern is DNS1123_LABEL:
            detail = (
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                "or '-', and must start and end with an alphanumeric character"
            )
        elif kind.name_pattern is DNS1035_LABEL:
            detail = (
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                "start with an alphabetic character, and end with an alphanumeric character"
            )
        else:
            detail = (
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.', and must start and end with an alphanumeric character"
            )
        causes.append(("metadata.name", _invalid_value(name, detail)))
    for field in ("labels", "annotations"):
        values = meta.get(field) or {}
        if not isinstance(values, dict):
            causes.append((f"metadata.{field}", "Invalid value: must be a map"))
            continue
        for key, value in values.items():
            prefix, _, local = key.rpartition("/")
            if (prefix and not DNS1123_SUBDOMAIN.match(prefix)) or not (
                len(local) <= 63 and LABEL_NAME.match(local)
            ):
                causes.append((f"metadata.{field}", _invalid_value(key, "name part must be valid")))
            if not isinstance(value, str):
                causes.append((f"metadata.{field}", _invalid_value(value, "must be a string")))
            elif field == "labels" and (len(value) > 63 or not LABEL_VALUE.match(value)):
                causes.append(
                    (
                        "metadata.labels",
                        _invalid_value(
                            value,
                            "a valid label must be an empty string or "
                            "consist of alphanumeric characters, '-', '_' or '.'",
                        ),
                    )
                )
    annotations = meta.get("annotations") or {}
    if isinstance(annotations, dict):
        size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
        if size > MAX_ANNOTATIONS_BYTES:
            causes.append(
                (
                    "metadata.annotations",
                    f"Too long: may not be more than {MAX_ANNOTATIONS_BYTES} bytes",
                )
            )
    return causes


# ---------------------------------------------------------------------- Secret
class SecretKind(Kind):
    def default(self, obj, old, server):
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.setdefault("data", {}) or {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data
        if not obj.get("data"):
            obj.pop("data", None)

    def validate(self, obj, old):
        causes = []
        total = 0
        for key, value in (obj.get("data") or {}).items():
            if not SECRET_KEY.match(key) or len(key) > 253:
                causes.append(
                    (
                        f"data[{key}]",
                        _invalid_value(
                            key,
                            "a valid config key must consist of alphanumeric "
                            "characters, '-', '_' or '.'",
                        ),
                    )
                )
            total += len(base64.b64decode(value or ""))  # decode() has checked it
        if total > MAX_SECRET_BYTES:
            causes.append(("data", f"Too long: may not be more than {MAX_SECRET_BYTES} bytes"))
        data = obj.get("data") or {}
        secret_type = obj.get("type")
        if secret_type == "kubernetes.io/service-account-token":
            if not ((obj.get("metadata") or {}).get("annotations") or {}).get(
                "kubernetes.io/service-account.name"
            ):
                causes.append(
                    (
                        "metadata.annotations[kubernetes.io/service-account.name]",
                        "Required value",
                    )
                )
        elif secret_type == "kubernetes.io/basic-auth":
            if "username" not in data and "password" not in data:
                causes += [
                    ("data[username]", "Required value"),
                    ("data[password]", "Required value"),
                ]
        elif secret_type == "kubernetes.io/ssh-auth":
            if not base64.b64decode(data.get("ssh-privatekey") or ""):
                causes.append(("data[ssh-privatekey]", "Required value"))
        elif secret_type in TYPED_SECRET_KEYS:
            for key in TYPED_SECRET_KEYS[secret_type]:
                if key not in data:
                    causes.append((f"data[{key}]", "Required value"))
            if secret_type in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
                key = TYPED_SECRET_KEYS[secret_type][0]
                if key in data:
                    try:
                        parsed = json.loads(base64.b64decode(data[key]) or b"")
                        if not isinstance(parsed, dict):
                            raise ValueError("json: cannot unmarshal into a map")
                    except ValueError as exc:
                        causes.append(
                            (
                                f"data[{key}]",
                                f'Invalid value: "<secret contents redacted>": {exc}',
                            )
                        )
        if old is not None and obj.get("type") != old.get("type"):
            causes.append(("type", f'Invalid value: "{obj.get("type")}": field is immutable'))
        return causes


# --------------------------------------------------------------------- Service
class ServiceKind(Kind):
    def default(self, obj, old, server):
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        old_spec = (old or {}).get("spec") or {}
        if "clusterIP" not in spec:
            spec["clusterIP"] = old_spec.get("clusterIP") or (
                None if spec["type"] == "ExternalName" else server.allocate_cluster_ip()
            )
            if spec["clusterIP"] is None:
                spec.pop("clusterIP")
        if spec.get("clusterIP"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        node_ports = spec["type"] in ("NodePort", "LoadBalancer")
        old_node_ports = old_spec.get("type") in ("NodePort", "LoadBalancer")
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        # As the API server's patchAllocatedValues: a port without a nodePort keeps the
        # one the old port of the same *name* had (whatever its number now), unless
        # another port of the new spec already uses it.
        previous = {p.get("name") or "": p.get("nodePort") for p in old_spec.get("ports") or []}
        used = {p.get("nodePort") for p in ports if p.get("nodePort")}
        for port in ports:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if node_ports and old_node_ports and not port.get("nodePort"):
                kept = previous.get(port.get("name") or "")
                if kept and kept not in used:
                    port["nodePort"] = kept
                    used.add(kept)
        for port in ports:
            if node_ports and not port.get("nodePort"):
                port["nodePort"] = server.allocate_node_port(used)
                used.add(port["nodePort"])
            if not node_ports:
                port.pop("nodePort", None)
        obj.setdefault("status", {"loadBalancer": {}})

    def validate(self, obj, old):
        causes = []
        spec = obj.get("spec") or {}
        ports = spec.get("ports") or []
        if spec.get("type") != "ExternalName" and not ports:
            causes.append(("spec.ports", "Required value"))
        if spec.get("type") not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            causes.append(("spec.type", f'Unsupported value: "{spec.get("type")}"'))
        names = [p.get("name") for p in ports]
        if len(ports) > 1 and not all(names):
            causes.append(("spec.ports[0].name", "Required value"))
        for i, port in enumerate(ports):
            number = port.get("port")
            if not isinstance(number, int) or not 0 < number < 65536:
                causes.append((f"spec.ports[{i}].port", _invalid_value(number, "must be 1-65535")))
            if port.get("name") and not DNS1123_LABEL.match(port["name"]):
                causes.append(
                    (f"spec.ports[{i}].name", _invalid_value(port["name"], "a DNS-1123 label"))
                )
        if old is not None:
            old_ip = (old.get("spec") or {}).get("clusterIP")
            if old_ip and spec.get("clusterIP") != old_ip and old_ip != "None":
                causes.append(
                    (
                        "spec.clusterIPs[0]",
                        f'Invalid value: []string{{"{spec.get("clusterIP")}"}}: '
                        "may not change once set",
                    )
                )
        return causes


# ------------------------------------------------------------------ Deployment
def _match_labels(selector: dict[str, Any]) -> dict[str, str]:
    return dict((selector or {}).get("matchLabels") or {})


class DeploymentKind(Kind):
    def default(self, obj, old, server):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault(
            "strategy",
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        )
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        pod = spec.setdefault("template", {}).setdefault("spec", {})
        pod.setdefault("restartPolicy", "Always")
        pod.setdefault("dnsPolicy", "ClusterFirst")
        for container in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            image = container.get("image") or ""
            latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
            container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
            container.setdefault("terminationMessagePath", "/dev/termination-log")

    def validate(self, obj, old):
        causes = []
        spec = obj.get("spec") or {}
        selector = _match_labels(spec.get("selector"))
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not selector:
            causes.append(("spec.selector", "Required value"))
        elif any(labels.get(k) != v for k, v in selector.items()):
            causes.append(
                (
                    "spec.template.metadata.labels",
                    _invalid_value(
                        ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
                        "`selector` does not match template `labels`",
                    ),
                )
            )
        replicas = spec.get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            causes.append(
                ("spec.replicas", _invalid_value(replicas, "must be greater than or equal to 0"))
            )
        pod = template.get("spec") or {}
        containers = pod.get("containers") or []
        if not containers:
            causes.append(("spec.template.spec.containers", "Required value"))
        seen = set()
        for field in ("initContainers", "containers"):
            for i, container in enumerate(pod.get(field) or []):
                where = f"spec.template.spec.{field}[{i}]"
                name = container.get("name") or ""
                if not DNS1123_LABEL.match(name):
                    causes.append((f"{where}.name", _invalid_value(name, "a DNS-1123 label")))
                if name in seen:
                    causes.append((f"{where}.name", f'Duplicate value: "{name}"'))
                seen.add(name)
                if not container.get("image"):
                    causes.append((f"{where}.image", "Required value"))
                volumes = {v.get("name") for v in pod.get("volumes") or []}
                for j, mount in enumerate(container.get("volumeMounts") or []):
                    if mount.get("name") not in volumes:
                        causes.append(
                            (f"{where}.volumeMounts[{j}].name", f'Not found: "{mount.get("name")}"')
                        )
        if old is not None:
            old_selector = (old.get("spec") or {}).get("selector")
            if old_selector != spec.get("selector"):
                causes.append(("spec.selector", _invalid_value(selector, "field is immutable")))
        return causes


SECRETS = SecretKind("secrets", "Secret", "", "v1", DNS1123_SUBDOMAIN, 253)
# Service names: a DNS-1123 label. The API server validated DNS-1035 labels (no leading
# digit) until RelaxedServiceNameValidation; a real 1.36 server accepts "1st-model".
SERVICES = ServiceKind("services", "Service", "", "v1", DNS1123_LABEL, 63, has_status=True)
DEPLOYMENTS = DeploymentKind(
    "deployments",
    "Deployment",
    "apps",
    "v1",
    DNS1123_SUBDOMAIN,
    253,
    has_status=True,
    has_generation=True,
)
KINDS: dict[tuple[str, str], Kind] = {
    (k.group, k.resource): k for k in (SECRETS, SERVICES, DEPLOYMENTS)
}


def deployment_controller_status(obj: dict[str, Any]) -> dict[str, Any]:
    """What the deployment controller reports once a rollout has completed."""
    replicas = (obj.get("spec") or {}).get("replicas", 1)
    status: dict[str, Any] = {
        "observedGeneration": obj["metadata"]["generation"],
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    }
    if not replicas:
        for key in ("readyReplicas", "availableReplicas"):
            status.pop(key)
    return copy.deepcopy(status)
