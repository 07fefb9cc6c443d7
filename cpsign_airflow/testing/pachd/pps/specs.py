"""Pipeline specs as pachd reads them: CreatePipelineV2's JSON (protojson: an unknown
field is an error), pachd's defaults merged into the effective spec
(src/server/pps/server/defaults.go), validatePipelineRequest's checks, and the secrets a
spec mounts. Unknown keys are found by the provider's own walker
(:mod:`cpsign_airflow.specs.fields`), with protojson's names."""

from __future__ import annotations

import json
from typing import Any

import betterproto
from pachyderm_sdk.api import pps

from cpsign_airflow.specs.fields import first_unknown_key

from .. import errors
from ..datums import pfs_inputs
from ..pfs.records import NAME_RE

# pachd's built-in defaults (src/server/pps/server/defaults.go), merged under the user's spec.
DEFAULTS: dict[str, Any] = {
    "transform": {"image": "ubuntu:20.04"},
    "outputBranch": "master",
    "datumTries": "3",
    "reprocessSpec": "until_success",
}
MAX_PIPELINE_NAME = 51  # pachd: room for the "-v<version>" suffix of its Kubernetes objects
MAX_K8S_NAME = 63


def present(msg: betterproto.Message | None) -> bool:
    return msg is not None and (betterproto.serialized_on_wire(msg) or bool(msg))


def _line_col(text: str, key: str) -> tuple[int, int]:
    needle = json.dumps(key)
    pos = text.find(needle)
    if pos < 0:
        return 1, 1
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def _check_fields(value: dict[str, Any], text: str) -> None:
    """Reject unknown fields the way protojson does (both JSON and proto names accepted):
    the first one, through the provider's walker of the message tree."""
    key = first_unknown_key(value, pps.CreatePipelineRequest)
    if key is not None:
        line, col = _line_col(text, key)
        raise errors.unknown(f'proto: (line {line}:{col}): unknown field "{key}"')


def parse_json(text: str) -> tuple[pps.CreatePipelineRequest, dict[str, Any]]:
    """Parse a CreatePipelineV2 JSON document into a request (protojson-like errors)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise errors.unknown(
            f"proto: syntax error (line {exc.lineno}:{exc.colno}): {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise errors.unknown("proto: syntax error (line 1:1): unexpected token")
    _check_fields(data, text)
    try:
        request = pps.CreatePipelineRequest().from_dict(data)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise errors.unknown(f"proto: {exc}") from None
    return request, data


def _merge(user: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    merged = dict(user)
    for key, value in defaults.items():
        snake = "".join("_" + c.lower() if c.isupper() else c for c in key)
        existing_key = key if key in merged else snake if snake in merged else None
        if existing_key is None:
            merged[key] = value
        elif isinstance(value, dict) and isinstance(merged[existing_key], dict):
            merged[existing_key] = _merge(merged[existing_key], value)
    return merged


def effective(user: dict[str, Any]) -> tuple[pps.CreatePipelineRequest, str]:
    """Apply the defaults; return the effective request and its JSON."""
    merged = _merge(user, DEFAULTS)
    for transient in ("update", "reprocess", "dryRun", "dry_run"):
        merged.pop(transient, None)
    # Go's json.Marshal of a generic map: compact, keys sorted
    text = json.dumps(merged, separators=(",", ":"), sort_keys=True)
    return pps.CreatePipelineRequest().from_dict(merged), text


def validate(request: pps.CreatePipelineRequest, raw: dict[str, Any] | None) -> None:
    """pachd's validatePipelineRequest checks, with its messages."""
    if not present(request.pipeline):
        raise errors.unknown("invalid pipeline spec: request.Pipeline cannot be nil")
    name = request.pipeline.name
    if not name:
        raise errors.unknown("invalid pipeline spec: request.Pipeline.Name cannot be empty")
    if not NAME_RE.match(name):
        raise errors.unknown(
            f"invalid pipeline name: name ({name}) invalid: only alphanumeric characters, "
            "underscores, and dashes are allowed"
        )
    if len(name) > MAX_PIPELINE_NAME:
        raise errors.unknown(
            f'pipeline name "{name}" is {len(name) - MAX_PIPELINE_NAME} characters longer '
            f"than the {MAX_PIPELINE_NAME} max"
        )
    project = (request.pipeline.project.name if request.pipeline.project else "") or "default"
    rc_name = f"{project}-{name}-v99".lower().replace("_", "-")
    if len(rc_name) > MAX_K8S_NAME:
        raise errors.unknown(
            f'Kubernetes name "{rc_name}" is {len(rc_name) - MAX_K8S_NAME} characters longer '
            f"than the {MAX_K8S_NAME} max"
        )
    # CreatePipelineV2 merges pachd's defaults first, and they include a transform
    if raw is None and not present(request.transform):
        raise errors.unknown("pipeline must specify a transform")
    if request.reprocess_spec and request.reprocess_spec not in ("until_success", "every_job"):
        raise errors.unknown(
            "invalid pipeline spec: ReprocessSpec must be one of 'until_success' or 'every_job'"
        )
    seen: set[str] = set()
    for pin in pfs_inputs(request.input):
        input_name = pin.name or pin.repo
        if input_name in seen:
            raise errors.unknown(f'name "{input_name}" was used more than once')
        seen.add(input_name)


def request_to_dict(request: pps.CreatePipelineRequest) -> dict[str, Any]:
    data = request.to_dict(casing=betterproto.Casing.CAMEL)
    for transient in ("update", "reprocess", "dryRun"):
        data.pop(transient, None)
    return data


def check_secrets(request: pps.CreatePipelineRequest, secrets: dict[str, Any]) -> None:
    """pachd refuses a pipeline that mounts a secret its cluster does not have."""
    transform = request.transform
    for mount in transform.secrets if transform is not None else []:
        if mount.env_var and not mount.key:
            raise errors.unknown(f"secret {mount.name} has env_var set but is missing key")
        if mount.name not in secrets:
            raise errors.unknown(f"missing Kubernetes secret {mount.name}")
        if mount.key and mount.key not in secret_keys(secrets[mount.name]):
            raise errors.unknown(f"Kubernetes secret {mount.name} missing key {mount.key}")


def secret_keys(manifest: dict[str, Any]) -> set[str]:
    return set(manifest.get("data") or {}) | set(manifest.get("stringData") or {})
