"""Convert Pachyderm 1.x pipeline specs (``pachctl create-pipeline`` era) to 2.x.

The original CPSign workflow's specs are 1.7-style: ``input.atom``, ``standby``,
numeric ``cpu``. Pachyderm 2.x renamed ``atom`` to ``pfs`` and dropped several
knobs; this maps what has a 2.x meaning and reports what was dropped.
"""

from __future__ import annotations

import copy
from typing import Any

# 1.x keys with no 2.x equivalent: dropped, with a note in the conversion log.
_DROPPED_TOP_LEVEL = (
    "standby",
    "enable_stats",
    "cache_size",
    "max_queue_size",
    "scale_down_threshold",
    "incremental",
    "chunk_spec",
    "batch",
    "hashtree_spec",
)
_DROPPED_INPUT = ("lazy_empty",)


def is_v1_spec(spec: dict[str, Any]) -> bool:
    """Whether a spec uses 1.x-only constructs (``atom`` inputs or dropped keys)."""
    if any(key in spec for key in _DROPPED_TOP_LEVEL):
        return True
    return _has_atom(spec.get("input"))


def _has_atom(node: Any) -> bool:
    if isinstance(node, list):
        return any(_has_atom(child) for child in node)
    if isinstance(node, dict):
        if "atom" in node:
            return True
        return any(_has_atom(node.get(key)) for key in ("cross", "union", "join", "group"))
    return False


def convert_v1_spec(spec: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Return (2.x spec, notes describing each change made)."""
    out = copy.deepcopy(spec)
    notes: list[str] = []
    for key in _DROPPED_TOP_LEVEL:
        if key in out:
            value = out.pop(key)
            if key == "standby" and value:
                out.setdefault("autoscaling", True)
                notes.append("standby: true became autoscaling: true")
            else:
                notes.append(f"{key}: dropped (no Pachyderm 2.x equivalent)")
    if "input" in out:
        out["input"] = _convert_input(out["input"], "input", notes)
    for section in ("resource_requests", "resource_limits"):
        resources = out.get(section)
        if isinstance(resources, dict) and isinstance(resources.get("cpu"), int):
            resources["cpu"] = float(resources["cpu"])
    return out, notes


def _convert_input(node: Any, path: str, notes: list[str]) -> Any:
    if isinstance(node, list):
        return [_convert_input(child, f"{path}[{i}]", notes) for i, child in enumerate(node)]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "atom" in node:
        atom = dict(node.pop("atom"))
        for key in _DROPPED_INPUT:
            if atom.pop(key, None) is not None:
                notes.append(f"{path}.atom.{key}: dropped")
        if "from_commit" in atom:
            atom["commit"] = atom.pop("from_commit")
        node["pfs"] = atom
        notes.append(f"{path}.atom became {path}.pfs")
    for key in ("cross", "union", "join", "group"):
        if key in node:
            node[key] = _convert_input(node[key], f"{path}.{key}", notes)
    return node
