"""A model's identity: the hash of its jar's content without build metadata.

Two trainings of the same model (same data, same seed) give jars with different
sha256 and the same :func:`model_content_sha256`; the quality gate carries a
verdict by it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: Build metadata a model jar changes on every build of the same model: the manifest
#: header (build time in ``Bundle-Version``) and ``cpsign.json`` keys left out of its
#: content hash (zip entry times are never hashed).
MANIFEST_BUILD_HEADERS = frozenset({"bundle-version"})
CPSIGN_JSON_BUILD_KEYS = frozenset({"modelVersion", "buildTimestamp"})


def model_content_sha256(data: bytes) -> str:
    """The model's identity: sha256 of its jar's entries without build metadata.

    Entries in name order, each as its name and content: ``META-INF/MANIFEST.MF``
    without ``Bundle-Version`` (it carries the build time), ``cpsign.json`` without
    ``modelVersion`` and ``buildTimestamp`` at any depth (as canonical JSON), every
    other entry byte for byte; entry times and compression are left out. Two
    trainings on the same data with the same seed have different sha256 and the same
    content hash. Data that is not a zip: the sha256 of its bytes.
    """
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as jar:
            entries = [(info.filename, jar.read(info)) for info in jar.infolist()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256(b"cpsign-model-content/1\0")
    for name, content in sorted(entries, key=lambda entry: entry[0]):
        if name == "META-INF/MANIFEST.MF":
            content = _without_build_headers(content)
        elif name == "cpsign.json":
            content = _without_build_keys(content)
        encoded = name.encode("utf-8")
        for part in (encoded, content):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


def _without_build_headers(manifest: bytes) -> bytes:
    """The manifest without its build headers (continuation lines included), lines
    joined by LF."""
    lines: list[str] = []
    for line in manifest.decode("utf-8", "replace").splitlines():
        if line.startswith(" ") and lines:  # a continuation of the previous header
            lines[-1] += line[1:]
        else:
            lines.append(line)
    kept = [
        line
        for line in lines
        if line.split(":", 1)[0].strip().lower() not in MANIFEST_BUILD_HEADERS
    ]
    return "\n".join(kept).encode("utf-8")


def _without_build_keys(text: bytes) -> bytes:
    """``cpsign.json`` as canonical JSON without its build keys; unreadable JSON as is."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in CPSIGN_JSON_BUILD_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    try:
        parsed = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return text
    return json.dumps(strip(parsed), sort_keys=True, separators=(",", ":")).encode("utf-8")
