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
