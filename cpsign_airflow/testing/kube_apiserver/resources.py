"""Resource kinds the fake API server serves: defaults and validation.

Each kind applies the server-side defaults Kubernetes fills in that callers
commonly read back, and the validation errors (422 Invalid) a caller is likely
to hit. Messages follow the API server's ``<field>: Invalid value: ...`` form.
"""

from __future__ import annotations

import base64
import binascii
import copy
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


def validate_metadata(kind: Kind, obj: dict[str, Any]) -> list[tuple[str, str]]:
    causes: list[tuple[str, str]] = []
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    elif len(name) > kind.name_max or not kind.name_pattern.match(name):
        if kind.name_pattern is DNS1035_LABEL:
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
            try:
                total += len(base64.b64decode(value or "", validate=True))
            except (binascii.Error, TypeError):
                causes.append((f"data[{key}]", "Invalid value: <redacted>: illegal base64 data"))
        if total > MAX_SECRET_BYTES:
            causes.append(("data", f"Too long: must have at most {MAX_SECRET_BYTES} bytes"))
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
        old_ports = {
            (p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports") or []
        }
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer") and "nodePort" not in port:
                previous = old_ports.get((port.get("port"), port["protocol"]), {})
                port["nodePort"] = previous.get("nodePort") or server.allocate_node_port()
            if spec["type"] not in ("NodePort", "LoadBalancer"):
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
SERVICES = ServiceKind("services", "Service", "", "v1", DNS1035_LABEL, 63, has_status=True)
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
