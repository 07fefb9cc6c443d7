"""Kubernetes secrets built from Airflow connections and Variables.

Credentials stay in the user's Airflow secrets backend; the provider copies
them into the Secrets that Pachyderm pipeline specs mount
(``transform.secrets``). Values are masked as soon as they are read and never
logged, returned or put in exception texts: only key names travel.

Source specs (``data_from`` values):

* ``conn:<conn_id>.<field>`` with field ``login``, ``password``, ``host``,
  ``port``, ``schema``, ``extra.<key>`` (a key of the connection's JSON extra);
* ``var:<key>`` - an Airflow Variable;
* either with a ``|base64`` suffix when the stored text is base64 of binary
  content (e.g. a CPSign < 2 license file), which is stored as those bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cpsign_airflow.kubernetes import errors
from cpsign_airflow.kubernetes.client import MANAGED_BY, MANAGED_BY_LABEL, KubeClient, is_managed

log = logging.getLogger(__name__)

SOURCES_ANNOTATION = "cpsign-airflow/sources"
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+\Z")
_CONN_FIELDS = ("login", "password", "host", "port", "schema")
_SOURCE = re.compile(
    r"^(?P<kind>conn|var):(?P<body>.+?)(?:\|(?P<encoding>base64))?\Z",
)
_CONN_BODY = re.compile(
    r"^(?P<conn>.+?)\.(?P<field>login|password|host|port|schema|extra\.(?P<key>.+))\Z"
)

#: The original workflow's secrets (pharmbio/cpsign-service-management), as
#: ``(secret name, {secret key: source spec template})``; ``{conn_id}`` and
#: ``{variable}`` are filled in by the presets.
ORIGINAL_LAYOUT: dict[str, tuple[str, dict[str, str]]] = {
    # Source database password; the ingestion stage reads it (user/host are in configuration.json).
    "source_database": ("chembl-mysql", {"mysql-root-password": "conn:{conn_id}.password"}),
    # Model store credentials, mounted at /mnt/api-info/ by the upload stage.
    "model_store": (
        "modelweb-api-info",
        {
            "user": "conn:{conn_id}.login",
            "password": "conn:{conn_id}.password",
            "modelweb-url": "conn:{conn_id}.host",
            "keycloak-url": "conn:{conn_id}.extra.keycloak_url",
        },
    ),
    # CPSign < 2 license, mounted at /mnt/lic/ and read as /mnt/lic/license.
    "license": ("cpsign-license", {"license": "var:{variable}|base64"}),
}


@dataclass(frozen=True)
class SecretSource:
    """One parsed ``data_from`` value."""

    kind: str  # "conn" or "var"
    ident: str  # connection id or Variable key
    field: str | None = None  # connection field; "extra" for extras
    extra_key: str | None = None
    base64: bool = False

    @property
    def text(self) -> str:
        if self.kind == "var":
            where = f"var:{self.ident}"
        else:
            where = f"conn:{self.ident}.{self.field}"
            if self.extra_key:
                where += f".{self.extra_key}"
        return where + ("|base64" if self.base64 else "")


def parse_source(spec: str) -> SecretSource:
    """Parse ``conn:<id>.<field>`` / ``var:<key>`` (optionally ``|base64``)."""
    match = _SOURCE.match(spec.strip()) if isinstance(spec, str) else None
    if not match:
        raise errors.SecretSourceError(
            f"secret source {spec!r}: expected 'conn:<conn_id>.<field>' or 'var:<key>' "
            "(optionally with '|base64')"
        )
    body, is_b64 = match["body"], bool(match["encoding"])
    if match["kind"] == "var":
        return SecretSource("var", body, base64=is_b64)
    conn = _CONN_BODY.match(body)
    if not conn:
        raise errors.SecretSourceError(
            f"secret source {spec!r}: the field must be one of {', '.join(_CONN_FIELDS)} "
            "or extra.<key>"
        )
    if conn["key"]:
        return SecretSource("conn", conn["conn"], "extra", conn["key"], is_b64)
    return SecretSource("conn", conn["conn"], conn["field"], None, is_b64)


def _mask(value: str | bytes) -> None:
    from airflow.sdk.log import mask_secret

    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if text:
        mask_secret(text)
    raw = value if isinstance(value, bytes) else value.encode()
    if raw:
        # The form the Secret carries over the wire (and in any debug log of it).
        mask_secret(base64.b64encode(raw).decode())


def _read_source(source: SecretSource, secret_key: str) -> bytes:
    from airflow.exceptions import AirflowNotFoundException

    if source.kind == "var":
        from airflow.sdk import Variable

        value = Variable.get(source.ident, default=None)
        where = f"Airflow Variable {source.ident!r}"
    else:
        from airflow.sdk import BaseHook

        try:
            conn = BaseHook.get_connection(source.ident)
        except AirflowNotFoundException:
            raise errors.SecretSourceError(
                f"secret key {secret_key!r}: Airflow connection {source.ident!r} does not exist"
            ) from None
        if conn.password:
            _mask(conn.password)
        if source.field == "extra":
            extra = conn.extra_dejson or {}
            value = extra.get(source.extra_key)
            where = f"connection {source.ident!r} extra field {source.extra_key!r}"
        else:
            value = getattr(conn, source.field, None)
            where = f"connection {source.ident!r} field {source.field!r}"
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
    if value is None or value == "":
        raise errors.SecretSourceError(
            f"secret key {secret_key!r}: {where} does not exist or is empty"
        )
    value = str(value)
    _mask(value)
    if not source.base64:
        return value.encode("utf-8")
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise errors.SecretSourceError(
            f"secret key {secret_key!r}: {where} is not valid base64 (source {source.text!r})"
        ) from None
    _mask(raw)
    return raw


def resolve_data(data_from: Mapping[str, str]) -> dict[str, bytes]:
    """Read every source; fails before any write, naming the key, connection and field."""
    if not data_from:
        raise errors.SecretSourceError("data_from is empty: a secret needs at least one key")
    bad = [key for key in data_from if not (isinstance(key, str) and SECRET_KEY.match(key))]
    if bad:
        raise errors.SecretSourceError(
            f"invalid secret key(s) {bad}: keys may contain only letters, digits, '-', '_' and '.'"
        )
    sources = {key: parse_source(spec) for key, spec in data_from.items()}
    return {key: _read_source(source, key) for key, source in sources.items()}


def _encode(data: Mapping[str, bytes]) -> dict[str, str]:
    return {key: base64.b64encode(value).decode() for key, value in sorted(data.items())}


def _same_data(existing: Mapping[str, str] | None, wanted: Mapping[str, str]) -> bool:
    existing = existing or {}
    if set(existing) != set(wanted):
        return False
    try:
        return all(base64.b64decode(existing[k]) == base64.b64decode(v) for k, v in wanted.items())
    except (binascii.Error, ValueError):
        return False


def ensure_secret(
    client: KubeClient,
    namespace: str,
    name: str,
    data: Mapping[str, bytes],
    *,
    allow_takeover: bool = False,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    secret_type: str = "Opaque",
) -> str:
    """Create or update Secret ``namespace/name`` to hold exactly ``data``.

    Returns ``"created"``, ``"updated"`` or ``"unchanged"``; an unchanged secret
    is not written, so its resourceVersion stays the same. A secret of that
    name without the ``app.kubernetes.io/managed-by: cpsign-airflow`` label is
    only taken over with ``allow_takeover``. Updates are PUTs carrying the
    resourceVersion read, so a concurrent change fails (and is retried once)
    instead of being overwritten.
    """
    wanted_data = _encode(data)
    wanted_labels = {**(labels or {}), MANAGED_BY_LABEL: MANAGED_BY}
    wanted_annotations = dict(annotations or {})
    for attempt in range(2):
        existing = client.get("secrets", namespace, name)
        if existing is None:
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": secret_type,
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": wanted_labels,
                    "annotations": wanted_annotations,
                },
                "data": wanted_data,
            }
            try:
                client.create("secrets", namespace, body)
                return "created"
            except errors.KubernetesAlreadyExists:
                if attempt:
                    raise
                continue
        meta = existing.get("metadata") or {}
        if not is_managed(existing) and not allow_takeover:
            raise errors.SecretNotManaged(
                f"secret {namespace}/{name} exists and is not managed by cpsign-airflow "
                f"(no label {MANAGED_BY_LABEL}={MANAGED_BY}); refusing to overwrite it. "
                "Delete or rename it, or pass allow_takeover=True to adopt it."
            )
        if existing.get("type", "Opaque") != secret_type:
            raise errors.KubernetesInvalid(
                f"secret {namespace}/{name} has type {existing.get('type')!r}, not "
                f"{secret_type!r}; a Secret's type cannot change: delete it first",
                code=422,
                reason="Invalid",
            )
        current_labels = meta.get("labels") or {}
        current_annotations = meta.get("annotations") or {}
        if (
            _same_data(existing.get("data"), wanted_data)
            and all(current_labels.get(k) == v for k, v in wanted_labels.items())
            and all(current_annotations.get(k) == v for k, v in wanted_annotations.items())
        ):
            return "unchanged"
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": secret_type,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "resourceVersion": meta.get("resourceVersion"),
                "labels": {**current_labels, **wanted_labels},
                "annotations": {**current_annotations, **wanted_annotations},
            },
            "data": wanted_data,
        }
        try:
            client.replace("secrets", namespace, body)
            return "updated"
        except errors.KubernetesConflict:
            if attempt:
                raise
    raise AssertionError("unreachable")


# ------------------------------------------------------------------ spec check
def spec_secret_refs(specs: Iterable[Any]) -> list[dict[str, str]]:
    """``{"pipeline", "secret", "key"}`` for every ``transform.secrets`` entry.

    ``specs`` are pipeline spec dicts or ``(source, spec)`` pairs as
    :func:`cpsign_airflow.specs.loading.load_specs` returns them.
    """
    refs = []
    for item in specs:
        spec = item[1] if isinstance(item, tuple) else item
        pipeline = ((spec or {}).get("pipeline") or {}).get("name") or "<unnamed pipeline>"
        for entry in ((spec or {}).get("transform") or {}).get("secrets") or []:
            name = entry.get("name")
            if name:
                refs.append({"pipeline": pipeline, "secret": name, "key": entry.get("key") or ""})
    return refs


def check_spec_secrets(
    specs: Iterable[Any],
    namespace: str,
    kubernetes_conn_id: str = "kubernetes_default",
    *,
    client: KubeClient | None = None,
) -> None:
    """Fail if a secret (or a key taken with ``env_var``/``key``) that a spec mounts is missing.

    The error lists every missing secret with the pipelines that need it; reads
    each secret once (verb ``get``), and only key names are compared.
    """
    client = client or KubeClient(kubernetes_conn_id)
    refs = spec_secret_refs(specs)
    found: dict[str, set[str] | None] = {}
    for name in sorted({ref["secret"] for ref in refs}):
        obj = client.get("secrets", namespace, name)
        found[name] = None if obj is None else set(obj.get("data") or {})
    missing = []
    for ref in refs:
        keys = found[ref["secret"]]
        if keys is None or (ref["key"] and ref["key"] not in keys):
            missing.append(ref)
    if not missing:
        log.info("All %d secrets the pipeline specs mount exist in %s", len(found), namespace)
        return
    lines = []
    for ref in missing:
        if found[ref["secret"]] is None:
            lines.append(
                f"secret {ref['secret']!r} needed by pipeline {ref['pipeline']!r} "
                f"does not exist in namespace {namespace!r}"
            )
        else:
            lines.append(
                f"secret {ref['secret']!r} in namespace {namespace!r} has no key {ref['key']!r} "
                f"needed by pipeline {ref['pipeline']!r}"
            )
    raise errors.MissingPipelineSecrets("; ".join(lines), missing)
