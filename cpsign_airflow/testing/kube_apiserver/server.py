"""The HTTP server, its routing and its Python API (:class:`FakeKubeApiServer`)."""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .patch import JSONPatchError, json_patch, merge_patch, strategic_merge_patch
from .resources import (
    KINDS,
    NODE_PORT_RANGE,
    DecodeError,
    Kind,
    decode,
    deployment_controller_status,
    validate_metadata,
)

GIT_VERSION = "v1.30.0"
CORE_PATH = re.compile(
    r"^/api/v1/namespaces/(?P<ns>[^/]+)/(?P<res>[a-z]+)(?:/(?P<name>[^/]+))?/?\Z"
)
GROUP_PATH = re.compile(
    r"^/apis/(?P<group>[a-z0-9.]+)/(?P<version>v1)/namespaces/(?P<ns>[^/]+)/(?P<res>[a-z]+)"
    r"(?:/(?P<name>[^/]+))?/?\Z"
)
VERBS_BY_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = {
    JSON_PATCH: json_patch,
    "application/merge-patch+json": merge_patch,
    APPLY_PATCH: strategic_merge_patch,  # server-side apply, approximated (see the docstring)
    "application/strategic-merge-patch+json": strategic_merge_patch,
}
#: ``details.causes[].reason`` by the start of a cause's message.
CAUSE_REASONS = {
    "Required value": "FieldValueRequired",
    "Too long": "FieldValueTooLong",
    "Duplicate value": "FieldValueDuplicate",
    "Not found": "FieldValueNotFound",
    "Unsupported value": "FieldValueNotSupported",
    "Forbidden": "FieldValueForbidden",
}
#: Metadata the server owns; a write that changes nothing but these is a no-op.
SERVER_FIELDS = ("resourceVersion", "generation", "managedFields", "uid", "creationTimestamp")


@dataclass(frozen=True)
class Call:
    """One request as RBAC sees it."""

    verb: str  # get, list, create, update, patch, delete
    group: str  # "" for core
    resource: str
    namespace: str
    name: str | None
    code: int


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid as ``errors.NewInvalid`` builds it: message and ``details.causes``."""
    qualified = f"{kind}.{group}" if group and kind else kind
    return ApiError(
        422,
        "Invalid",
        f'{qualified} "{name}" is invalid: '
        + (", ".join(f"{field}: {message}" for field, message in causes)),
        {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [
                {
                    "reason": next(
                        (r for p, r in CAUSE_REASONS.items() if m.startswith(p)),
                        "FieldValueInvalid",
                    ),
                    "message": m,
                    "field": f,
                }
                for f, m in causes
            ],
        },
    )


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if code < 400 else "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def _strip_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    for key in SERVER_FIELDS:
        obj.get("metadata", {}).pop(key, None)
    return obj


class FakeKubeApiServer:
    """A Kubernetes API server stand-in for secrets, services and deployments.

    Use as a context manager or call :meth:`start` / :meth:`stop`. Namespaces
    must exist (:meth:`create_namespace`; ``default`` always does), as on a
    real cluster. Every request needs ``Authorization: Bearer <token>``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        user: str = "system:serviceaccount:airflow:airflow",
        auto_ready: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token or uuid.uuid4().hex
        self.user = user
        #: Fake-only: play the deployment controller, writing its finished-rollout status
        #: with every spec change. Off by default: a real API server without controllers
        #: (and a real cluster, for a while) leaves a new Deployment progressing.
        self.auto_ready = auto_ready
        self._warnings: list[str] = []
        self.calls: list[Call] = []
        self.namespaces: set[str] = {"default"}
        self._objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._denied: set[tuple[str, str, str | None]] = set()
        self._rv = itertools.count(1000)
        self._ips = itertools.count(10)
        self._node_ports = itertools.count(30000)
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle
    def start(self) -> FakeKubeApiServer:
        server = self

        class Handler(_Handler):
            api = server

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-kube-apiserver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> FakeKubeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        """A kubeconfig (as a dict) whose current context points at this server."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
            "current-context": "fake",
        }

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.kubeconfig(namespace), indent=2))  # JSON is YAML
        return path

    # ------------------------------------------------------------- test API
    def create_namespace(self, name: str) -> None:
        with self._lock:
            self.namespaces.add(name)

    def deny(self, verb: str, resource: str, namespace: str | None = None) -> None:
        """Answer ``verb`` on ``resource`` (optionally only in ``namespace``) 403, as RBAC does."""
        with self._lock:
            self._denied.add((verb, resource, namespace))

    def allow(self, verb: str, resource: str, namespace: str | None = None) -> None:
        with self._lock:
            self._denied.discard((verb, resource, namespace))

    def put_object(self, resource: str, obj: dict[str, Any], group: str | None = None) -> dict:
        """Store ``obj`` as is (status included), bypassing RBAC and validation: seed state."""
        kind = self._kind(resource, group)
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        ns = meta.setdefault("namespace", "default")
        with self._lock:
            self.namespaces.add(ns)
            old = self._objects.get((kind.group, kind.resource, ns, meta["name"]))
            kind.default(obj, old, self)
            self._stamp(kind, obj, old)
            self._objects[(kind.group, kind.resource, ns, meta["name"])] = obj
            return copy.deepcopy(obj)

    def get_object(self, resource: str, namespace: str, name: str, group: str | None = None):
        kind = self._kind(resource, group)
        with self._lock:
            obj = self._objects.get((kind.group, kind.resource, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def verbs_used(self) -> set[tuple[str, str, str]]:
        """``(group, resource, verb)`` of every request that reached a resource endpoint."""
        with self._lock:
            return {(c.group, c.resource, c.verb) for c in self.calls}

    def allocate_cluster_ip(self) -> str:
        n = next(self._ips)
        return f"10.96.{n // 250}.{n % 250 + 1}"

    def allocate_node_port(self, taken: set[int] | frozenset[int] = frozenset()) -> int:
        """The lowest free port of the node-port range, as the allocator hands them out."""
        used = set(taken) | self._node_ports_in_use()
        for port in range(NODE_PORT_RANGE[0], NODE_PORT_RANGE[1] + 1):
            if port not in used:
                return port
        raise ApiError(500, "InternalError", "range is full")

    def complete_rollout(self, namespace: str, name: str) -> dict[str, Any]:
        """Fake-only: play the deployment controller once - write the status of a finished
        rollout of the Deployment's current generation (a new resourceVersion)."""
        with self._lock:
            obj = self._objects[("apps", "deployments", namespace, name)]
            obj["status"] = deployment_controller_status(obj)
            obj["metadata"]["resourceVersion"] = str(next(self._rv))
            return copy.deepcopy(obj)

    def _node_ports_in_use(self, skip: tuple[str, str] | None = None) -> set[int]:
        return {
            port["nodePort"]
            for (_, r, n, name), obj in self._objects.items()
            if r == "services" and (n, name) != skip
            for port in (obj.get("spec") or {}).get("ports") or []
            if isinstance(port, dict) and port.get("nodePort")
        }

    def _check_node_ports(self, ns: str, name: str, obj: dict, old: dict | None) -> None:
        """What the service registry's port allocator answers (422) for requested nodePorts."""
        held = {p.get("nodePort") for p in ((old or {}).get("spec") or {}).get("ports") or []}
        others = self._node_ports_in_use(skip=(ns, name))
        causes = []
        for i, port in enumerate((obj.get("spec") or {}).get("ports") or []):
            number = port.get("nodePort") if isinstance(port, dict) else None
            if not number or number in held:
                continue
            low, high = NODE_PORT_RANGE
            if not isinstance(number, int) or not low <= number <= high:
                detail = (
                    "provided port is not in the valid range. "
                    f"The range of valid ports is {low}-{high}"
                )
            elif number in others:
                detail = "provided port is already allocated"
            else:
                continue
            causes.append((f"spec.ports[{i}].nodePort", f"Invalid value: {number}: {detail}"))
        if causes:
            raise invalid("Service", "", name, causes)

    # ------------------------------------------------------------- internals
    @staticmethod
    def _kind(resource: str, group: str | None) -> Kind:
        for (g, r), kind in KINDS.items():
            if r == resource and (group is None or g == group):
                return kind
        raise KeyError(resource)

    def _stamp(self, kind: Kind, obj: dict, old: dict | None) -> None:
        meta = obj["metadata"]
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            if kind.has_generation:
                meta["generation"] = 1
        else:
            for key in ("uid", "creationTimestamp", "generation"):
                if key in old["metadata"]:
                    meta[key] = old["metadata"][key]
            if kind.has_generation and obj.get("spec") != old.get("spec"):
                meta["generation"] = old["metadata"].get("generation", 1) + 1
        meta["resourceVersion"] = str(next(self._rv))

    def _check_rbac(self, verb: str, kind: Kind, ns: str, name: str | None) -> None:
        if (verb, kind.resource, None) in self._denied or (verb, kind.resource, ns) in self._denied:
            qualified = f"{kind.resource}.{kind.group}" if kind.group else kind.resource
            what = f'{qualified} "{name}"' if name else qualified
            raise ApiError(
                403,
                "Forbidden",
                f'{what} is forbidden: User "{self.user}" cannot {verb} resource '
                f'"{kind.resource}" in API group "{kind.group}" in the namespace "{ns}"',
                {"name": name, "group": kind.group, "kind": kind.resource}
                if name
                else {"group": kind.group, "kind": kind.resource},
            )

    def _not_found(self, kind: Kind, name: str) -> ApiError:
        return ApiError(
            404,
            "NotFound",
            f'{kind.resource}{"." + kind.group if kind.group else ""} "{name}" not found',
            {"name": name, "group": kind.group, "kind": kind.resource},
        )

    def _write(
        self, kind: Kind, ns: str, name: str, obj: dict, old: dict | None, patch: bool = False
    ) -> dict:
        """Decode, default, validate and store ``obj``; a no-op write returns ``old``.

        ``patch``: ``obj`` is a patched object, so a value that does not decode is
        reported as the patch handler does (422 ``patch: Invalid value``), not 400.
        """
        if not isinstance(obj, dict) or obj.get("kind") not in (None, kind.kind):
            raise ApiError(400, "BadRequest", f"the body of the request was not a {kind.kind}")
        try:
            self._warnings.extend(decode(kind, obj))
        except DecodeError as exc:
            if patch:
                shown = json.dumps(json.dumps(obj, separators=(",", ":")))
                raise invalid("", "", "", [("patch", f"Invalid value: {shown}: {exc}")]) from None
            raise ApiError(
                400,
                "BadRequest",
                f'{kind.kind} in version "{kind.version}" cannot be handled as a '
                f"{kind.kind}: {exc}",
            ) from None
        obj.setdefault("apiVersion", kind.api_version)
        obj.setdefault("kind", kind.kind)
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace", ns) != ns:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )
        meta["namespace"] = ns
        if old is not None and meta.get("name") != name:
            raise ApiError(
                400, "BadRequest", "the name of the object does not match the name on the URL"
            )
        if kind.has_status:
            # The main endpoint ignores status; only controllers (or put_object) set it.
            obj.pop("status", None)
            if old is not None and "status" in old:
                obj["status"] = copy.deepcopy(old["status"])
        kind.default(obj, old, self)
        causes = validate_metadata(kind, obj) + kind.validate(obj, old)
        if causes:
            raise invalid(kind.kind, kind.group, meta.get("name") or "", causes)
        if kind.resource == "services":
            self._check_node_ports(ns, meta["name"], obj, old)
        if old is not None and _strip_server_fields(obj) == _strip_server_fields(old):
            return copy.deepcopy(old)
        spec_changed = old is None or obj.get("spec") != old.get("spec")
        self._stamp(kind, obj, old)
        if kind.resource == "deployments":
            if self.auto_ready and spec_changed:
                obj["status"] = deployment_controller_status(obj)
            else:
                obj.setdefault("status", {})  # no controller has looked at it yet
        self._objects[(kind.group, kind.resource, ns, meta["name"])] = obj
        return copy.deepcopy(obj)

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, dict]:
        """Serve one request; returns ``(status code, JSON body)``."""
        code, payload, _ = self.handle_with_warnings(method, path, query, headers, body)
        return code, payload

    def handle_with_warnings(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, dict, list[str]]:
        """Serve one request; also returns the texts of its ``Warning`` headers."""
        with self._lock:
            self._warnings = []
            code, payload = self._handle(method, path, query, headers, body)
            return code, payload, list(self._warnings)

    def _handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, dict]:
        auth = headers.get("Authorization") or ""
        if auth != f"Bearer {self.token}":
            return 401, status_body(401, "Unauthorized", "Unauthorized")
        path = path.rstrip("/") or "/"
        if path == "/version":
            return 200, {
                "major": "1",
                "minor": "30",
                "gitVersion": GIT_VERSION,
                "gitCommit": "0" * 40,
                "gitTreeState": "clean",
                "buildDate": "2024-04-17T00:00:00Z",
                "goVersion": "go1.22.2",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if path == "/api":
            return 200, {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [],
            }
        if path == "/apis":
            return 200, {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": "apps",
                        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
                    }
                ],
            }
        if path in ("/api/v1", "/apis/apps/v1"):
            group = "" if path == "/api/v1" else "apps"
            return 200, {
                "kind": "APIResourceList",
                "groupVersion": "v1" if not group else "apps/v1",
                "resources": [
                    {
                        "name": k.resource,
                        "singularName": k.kind.lower(),
                        "namespaced": True,
                        "kind": k.kind,
                        "verbs": ["create", "delete", "get", "list", "patch", "update"],
                    }
                    for (g, _), k in KINDS.items()
                    if g == group
                ],
            }
        match = CORE_PATH.match(path)
        group = ""
        if not match:
            match = GROUP_PATH.match(path)
            group = match.group("group") if match else ""
        kind = KINDS.get((group, match.group("res"))) if match else None
        if kind is None:
            return 404, status_body(
                404, "NotFound", "the server could not find the requested resource"
            )
        ns, name = match.group("ns"), match.group("name")
        if method == "GET":
            verb = "get" if name else "list"
        else:
            verb = VERBS_BY_METHOD.get(method, "")
            if not verb or (verb == "create") == bool(name):
                return 405, status_body(405, "MethodNotAllowed", f"{method} is not supported")
        code = 500
        try:
            with self._lock:
                try:
                    self._check_rbac(verb, kind, ns, name)
                    code, result = self._dispatch(verb, kind, ns, name, query, headers, body)
                except ApiError as exc:
                    code = exc.code
                    raise
                finally:
                    self.calls.append(Call(verb, kind.group, kind.resource, ns, name, code))
            return code, result
        except ApiError as exc:
            return exc.code, status_body(exc.code, exc.reason, exc.message, exc.details)

    def _dispatch(self, verb, kind, ns, name, query, headers, body) -> tuple[int, dict]:
        if ns not in self.namespaces and verb in ("create", "update", "patch"):
            raise ApiError(
                404,
                "NotFound",
                f'namespaces "{ns}" not found',
                {"name": ns, "kind": "namespaces"},
            )
        key = (kind.group, kind.resource, ns, name)
        old = self._objects.get(key) if name else None
        if verb == "list":
            selector = (query.get("labelSelector") or [""])[0]
            items = [
                copy.deepcopy(obj)
                for (g, r, n, _), obj in sorted(self._objects.items())
                if g == kind.group
                and r == kind.resource
                and n == ns
                and _selects(selector, obj["metadata"].get("labels") or {})
            ]
            return 200, {
                "kind": f"{kind.kind}List",
                "apiVersion": kind.api_version,
                "metadata": {"resourceVersion": str(next(self._rv))},
                "items": items,
            }
        if verb == "get":
            if old is None:
                raise self._not_found(kind, name)
            return 200, copy.deepcopy(old)
        if verb == "delete":
            if old is None:
                raise self._not_found(kind, name)
            del self._objects[key]
            return 200, status_body(
                200,
                "",
                "",
                {
                    "name": name,
                    "group": kind.group,
                    "kind": kind.resource,
                    "uid": old["metadata"]["uid"],
                },
            )
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            if verb == "patch" and content_type == APPLY_PATCH:
                import yaml

                payload = yaml.safe_load(body or b"") if body else None
            else:
                payload = json.loads(body or b"null")
        except Exception as exc:  # JSONDecodeError, yaml.YAMLError
            raise ApiError(400, "BadRequest", f"error decoding request body: {exc}") from None
        if verb == "patch" and content_type == APPLY_PATCH:
            return self._apply(kind, ns, name, query, payload, old)
        if verb == "create":
            name = (
                ((payload or {}).get("metadata") or {}).get("name")
                if isinstance(payload, dict)
                else None
            )
            if name and (kind.group, kind.resource, ns, name) in self._objects:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{kind.resource}{"." + kind.group if kind.group else ""} "{name}" already exists',
                    {"name": name, "group": kind.group, "kind": kind.resource},
                )
            return 201, self._write(kind, ns, name or "", payload, None)
        if old is None and not (verb == "patch" and content_type == APPLY_PATCH):
            raise self._not_found(kind, name)
        if verb == "update":
            wanted = (
                ((payload or {}).get("metadata") or {}).get("resourceVersion")
                if isinstance(payload, dict)
                else None
            )
            if wanted and wanted != old["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f"Operation cannot be fulfilled on {kind.resource}"
                    f'{"." + kind.group if kind.group else ""} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    {"name": name, "group": kind.group, "kind": kind.resource},
                )
            return 200, self._write(kind, ns, name, payload, old)
        patcher = PATCH_TYPES.get(content_type)
        if patcher is None:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(PATCH_TYPES)}",
            )
        if content_type == JSON_PATCH:
            try:
                patched = json_patch(old, payload)
            except JSONPatchError as exc:
                if exc.bad:
                    raise ApiError(400, "BadRequest", str(exc)) from None
                raise ApiError(422, "Invalid", str(exc)) from None
            if not isinstance(patched, dict):
                raise ApiError(400, "BadRequest", "the patch did not produce an object")
            if (patched.get("metadata") or {}).get("resourceVersion") != old["metadata"][
                "resourceVersion"
            ]:
                raise self._conflict(kind, name)
            return 200, self._write(kind, ns, name, patched, old, patch=True)
        if not isinstance(payload, dict):
            raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
        wanted = (payload.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {kind.resource} "{name}": '
                "the object has been modified; please apply your changes to the latest "
                "version and try again",
            )
        patched = patcher(old, payload)
        patched.setdefault("metadata", {})["resourceVersion"] = old["metadata"]["resourceVersion"]
        return 200, self._write(kind, ns, name, patched, old, patch=True)

    def _conflict(self, kind: Kind, name: str) -> ApiError:
        return ApiError(
            409,
            "Conflict",
            f"Operation cannot be fulfilled on {kind.resource}{'.' + kind.group if kind.group else ''}"
            f' "{name}": the object has been modified; please apply your changes to the latest '
            "version and try again",
            {"name": name, "group": kind.group, "kind": kind.resource},
        )

    def _apply(self, kind, ns, name, query, payload, old) -> tuple[int, dict]:
        """Server-side apply, approximated: ``fieldManager`` required; the applied
        configuration creates the object or is merged into it like a strategic merge
        patch. No managedFields, no ownership conflicts, no removal of fields the
        manager stopped applying."""
        if not (query.get("fieldManager") or [""])[0]:
            raise invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [("fieldManager", "Required value: is required for apply patch")],
            )
        if not isinstance(payload, dict):
            raise ApiError(400, "BadRequest", "the body of the request was not an object")
        meta = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
        missing = [k for k in ("apiVersion", "kind") if not payload.get(k)]
        if missing:
            raise ApiError(
                400, "BadRequest", f"Object '{missing[0][0].upper() + missing[0][1:]}' is missing"
            )
        if meta.get("name") not in (None, name):
            raise ApiError(
                400, "BadRequest", "the name of the object does not match the name on the URL"
            )
        applied = copy.deepcopy(payload)
        applied.setdefault("metadata", {})["name"] = name
        if old is None:
            return 201, self._write(kind, ns, name, applied, None)
        patched = strategic_merge_patch(old, applied)
        patched["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        return 200, self._write(kind, ns, name, patched, old, patch=True)


def _selects(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class _Handler(BaseHTTPRequestHandler):
    api: FakeKubeApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        code, payload, warnings = self.api.handle_with_warnings(
            self.command, parts.path, parse_qs(parts.query), self.headers, body
        )
        data = json.dumps(payload).encode()
        self.send_response(
            code, HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else ""
        )
        self.send_header("Content-Type", "application/json")
        for text in warnings:
            self.send_header("Warning", f"299 - {json.dumps(text)}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve
