"""The one walk of a pipeline spec's keys against pachyderm-sdk's message tree.

A spec (a JSON object) is read field by field against ``CreatePipelineRequest`` and the
messages below it, through betterproto's (private) field metadata: nothing else in the
package or its test kit reads that metadata. Two readers use it:

* the provider's validator (:mod:`cpsign_airflow.specs.validate`) lists every problem
  (unknown keys, values of the wrong type);
* the test kit's local pachd refuses a CreatePipelineV2 spec at its first unknown key,
  naming keys the way pachd's protojson does (``names="protojson"``: a field's proto
  name or its JSON, lowerCamelCase, name).

The two namings differ in one way: betterproto's also takes a key whose snake_case is
a field (``Transform``, ``DatumTries``), which protojson, and so pachd's CreatePipelineV2
that the hook calls, refuses as an unknown field. The validator reads keys as pachd does
(``names="protojson"``), so such a key is named before any request.

No Airflow import here: the local pachd runs where Airflow is not installed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any, Literal

UNKNOWN_FIELD = "unknown field"

# betterproto accepts snake_case and camelCase alike (its from_dict snake-cases a key).
_CAMEL_RE = re.compile(r"(?<!^)(?=[A-Z])")
_SCALAR_TYPES = {
    "string": (str,),
    "bool": (bool,),
    "bytes": (str, bytes),
}
_INT_TYPES = {"int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64"}
_FLOAT_TYPES = {"double", "float"}
# Well-known types that JSON writes as scalars ("1h", "2024-01-01T00:00:00Z").
_WRAPPED_MESSAGES = {"Duration", "Timestamp", "timedelta", "datetime"}

Names = Literal["betterproto", "protojson"]


@dataclasses.dataclass(frozen=True)
class Finding:
    """One problem of a spec: where (a field path), the key as written, and what."""

    where: str
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


def _snake(key: str) -> str:
    return _CAMEL_RE.sub("_", key).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _field_name(key: str, fields: dict[str, Any], names: Names) -> str | None:
    """The field ``key`` names, or None."""
    if names == "protojson":
        # protojson: the proto name or the JSON (lowerCamel) name; a Python keyword's
        # field (betterproto's ``from_``) by its proto name (``from``) too
        for name in fields:
            stripped = name.rstrip("_") if name.endswith("_") else ""
            if key in (name, _camel(name)) or (stripped and key == stripped):
                return name
        return None
    name = _snake(key) if key not in fields else key
    if name == "continue":  # python keyword: betterproto names it continue_
        name = "continue_"
    return name if name in fields else None


def walk(
    value: Any, message_cls: type, *, names: Names = "betterproto", path: str = ""
) -> Iterator[Finding]:
    """The problems of ``value`` read as a ``message_cls``, in the order of its keys
    (depth first: a key's own problem, then those of its value)."""
    if not isinstance(value, dict):
        yield Finding(path or "<spec>", "", f"expected an object, got {type(value).__name__}")
        return
    meta = message_cls()._betterproto
    fields = {f.name: f.metadata["betterproto"] for f in dataclasses.fields(message_cls)}
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        name = _field_name(key, fields, names)
        if name is None:
            yield Finding(where, key, UNKNOWN_FIELD)
            continue
        field_meta = fields[name]
        kind = field_meta.proto_type
        if item is None:
            continue
        if kind == "message":
            cls = meta.cls_by_field[name]
            if cls.__name__ in _WRAPPED_MESSAGES or field_meta.wraps:
                continue
            if isinstance(item, list):
                for index, element in enumerate(item):
                    yield from walk(element, cls, names=names, path=f"{where}[{index}]")
            else:
                yield from walk(item, cls, names=names, path=where)
        elif kind == "map":
            if not isinstance(item, dict):
                yield Finding(where, key, "expected an object of key/value pairs")
                continue
            value_cls = meta.cls_by_field.get(f"{name}.value")
            if isinstance(value_cls, type) and dataclasses.is_dataclass(value_cls):
                for map_key, element in item.items():
                    yield from walk(element, value_cls, names=names, path=f"{where}.{map_key}")
        elif kind == "enum":
            continue
        else:
            yield from _check_scalar(item, kind, where, key)


def _check_scalar(item: Any, kind: str, where: str, key: str) -> Iterator[Finding]:
    values = item if isinstance(item, list) else [item]
    for element in values:
        if kind in _INT_TYPES:
            ok = (isinstance(element, int) and not isinstance(element, bool)) or (
                isinstance(element, str) and re.fullmatch(r"-?\d+", element)
            )
        elif kind in _FLOAT_TYPES:
            ok = isinstance(element, (int, float)) and not isinstance(element, bool)
        else:
            ok = isinstance(element, _SCALAR_TYPES.get(kind, (object,)))
        if not ok:
            yield Finding(where, key, f"expected {kind}, got {element!r}")
            return


def first_unknown_key(value: dict[str, Any], message_cls: type) -> str | None:
    """The first key protojson would refuse as an unknown field (pachd's CreatePipelineV2),
    or None."""
    for finding in walk(value, message_cls, names="protojson"):
        if finding.problem == UNKNOWN_FIELD:
            return finding.key
    return None
