"""Canonical form of a Pachyderm 2.x pipeline spec.

Two specs that pachd would treat as the same pipeline must compare equal here,
whatever their key casing (``parallelism_spec`` or ``parallelismSpec``), key
order, or int64-as-string encoding. That is what lets the hook skip an update
that would otherwise start a needless job.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Request flags, not part of what the pipeline *is*.
_REQUEST_ONLY_KEYS = ("update", "reprocess", "dry_run", "dryRun")


def canonical_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Round-trip ``spec`` through pachyderm-sdk's CreatePipelineRequest."""
    import betterproto
    from pachyderm_sdk.api import pps

    cleaned = {k: v for k, v in spec.items() if k not in _REQUEST_ONLY_KEYS}
    request = pps.CreatePipelineRequest().from_dict(cleaned)
    out = request.to_dict(casing=betterproto.Casing.SNAKE)
    for key in _REQUEST_ONLY_KEYS:
        out.pop(key, None)
    pipeline = out.setdefault("pipeline", {})
    pipeline.setdefault("project", {}).setdefault("name", "default")
    return out


def spec_hash(spec: dict[str, Any]) -> str:
    """sha256 of the canonical spec: what bookkeeping stores per deployment."""
    text = json.dumps(canonical_spec(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pipeline_name(spec: dict[str, Any]) -> str:
    """The pipeline's name, or a ValueError naming the missing field."""
    name = (spec.get("pipeline") or {}).get("name")
    if not name or not isinstance(name, str):
        raise ValueError("pipeline spec has no 'pipeline.name'")
    return name
