"""Patch semantics the fake API server applies: JSON merge patch and an
approximation of Kubernetes' strategic merge patch."""

from __future__ import annotations

import copy
from typing import Any

#: List fields that strategic merge patch merges element-wise by a key (a
#: subset of Kubernetes' ``patchMergeKey`` tags; every other list is replaced).
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "env": "name",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge, ``null`` deletes, lists replace."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, field: str | None = None) -> Any:
    """Strategic merge patch without ``$patch``/``$retainKeys`` directives.

    Lists named in :data:`MERGE_KEYS` whose elements are maps merge element by
    element on that key (service ``ports`` merge on ``port``); other lists are
    replaced as in a merge patch.
    """
    if isinstance(patch, list) and isinstance(target, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        if field == "ports" and any("port" in x for x in patch if isinstance(x, dict)):
            key = "port"  # Service ports; container ports merge on containerPort
        if all(isinstance(x, dict) for x in patch + target):
            result = copy.deepcopy(target)
            for item in patch:
                match = next(
                    (i for i, old in enumerate(result) if old.get(key) == item.get(key)), None
                )
                if match is None:
                    result.append(copy.deepcopy(item))
                else:
                    result[match] = strategic_merge_patch(result[match], item)
            return result
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = strategic_merge_patch(result.get(key), value, key)
    return result


class JSONPatchError(Exception):
    """A JSON patch that cannot be applied (``bad`` when the patch itself is malformed)."""

    def __init__(self, message: str, bad: bool = False) -> None:
        super().__init__(message)
        self.bad = bad


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise JSONPatchError(f"invalid JSON pointer {path!r}", bad=True)
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _parent(doc: Any, parts: list[str], path: str) -> tuple[Any, str]:
    for part in parts[:-1]:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise JSONPatchError(f"doc is missing path: {path!r}")
    return doc, parts[-1]


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent, key = _parent(doc, parts, path)
    if isinstance(parent, dict) and key in parent:
        return parent[key]
    if isinstance(parent, list) and key.isdigit() and int(key) < len(parent):
        return parent[int(key)]
    raise JSONPatchError(f"doc is missing path: {path!r}")


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent, key = _parent(doc, parts, path)
    if isinstance(parent, dict) and key in parent:
        return parent.pop(key)
    if isinstance(parent, list) and key.isdigit() and int(key) < len(parent):
        return parent.pop(int(key))
    raise JSONPatchError(f"unable to remove nonexistent key: {key}: missing value")


def _add(doc: Any, path: str, value: Any, replace: bool = False) -> Any:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent, key = _parent(doc, parts, path)
    if isinstance(parent, dict):
        if replace and key not in parent:
            raise JSONPatchError(f"replace operation does not apply: doc is missing key: {path}")
        parent[key] = copy.deepcopy(value)
    elif isinstance(parent, list):
        if key == "-" and not replace:
            parent.append(copy.deepcopy(value))
        elif key.isdigit() and int(key) <= len(parent) - (1 if replace else 0):
            if replace:
                parent[int(key)] = copy.deepcopy(value)
            else:
                parent.insert(int(key), copy.deepcopy(value))
        else:
            raise JSONPatchError(f"index out of bounds: {path!r}")
    else:
        raise JSONPatchError(f"doc is missing path: {path!r}")
    return doc


def json_patch(target: Any, patch: Any) -> Any:
    """RFC 6902 JSON patch: ``add``, ``remove``, ``replace``, ``move``, ``copy``, ``test``."""
    if not isinstance(patch, list):
        raise JSONPatchError(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch", bad=True
        )
    doc = copy.deepcopy(target)
    for op in patch:
        if not isinstance(op, dict) or "op" not in op:
            raise JSONPatchError("unexpected kind: <nil>", bad=True)
        kind, path = op["op"], op.get("path")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise JSONPatchError(f"{kind} operation does not apply: value is missing", bad=True)
        if kind == "add":
            doc = _add(doc, path, op["value"])
        elif kind == "replace":
            doc = _add(doc, path, op["value"], replace=True)
        elif kind == "remove":
            _remove(doc, path)
        elif kind in ("move", "copy"):
            value = _get(doc, op.get("from"))
            if kind == "move":
                _remove(doc, op.get("from"))
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise JSONPatchError(f"testing value {path} failed: test failed")
        else:
            raise JSONPatchError(f"Unexpected kind: {kind}", bad=True)
    return doc
