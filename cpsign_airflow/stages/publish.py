"""Publish stage (``cpsign-publish``): upload the aggregated model to the Modelingweb model store.

The original contract: a Keycloak token by password grant (client ``modelingweb``),
then ``POST <modelweb-url>/api/v1/models/fromFile`` with multipart form fields
``category`` and ``filecontent`` (the jar), bearer token. Credentials come from the
mounted ``modelweb-api-info`` secret (files ``user``, ``password``, ``modelweb-url``,
``keycloak-url``). With no credentials mounted, nothing is published and
``published.json`` says so, rather than failing the run. Secrets never reach the log.

With ``--metrics`` (the validate stage's ``metrics.json``), a model whose observed error
rate exceeds ``1 - confidence`` by more than ``--validity-tolerance`` is held back, not
uploaded: the quality gate's validity check, applied before anything leaves the
cluster. (Efficiency against the last published model needs the run history, so the
DAG's quality gate judges that, and holds back deployment.)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib import error, parse, request

CLIENT_ID = "modelingweb"
UPLOAD_PATH = "/api/v1/models/fromFile"
KEYS = ("user", "password", "modelweb-url", "keycloak-url")
TIMEOUT = 60


class PublishError(RuntimeError):
    """The model store refused or could not be reached; the message names the URL."""


def read_api_info(folder: Path) -> dict[str, str] | None:
    """The mounted credentials, or None when no model store is configured."""
    if not folder.is_dir():
        return None
    found = {
        k: (folder / k).read_text(encoding="utf-8").strip() for k in KEYS if (folder / k).is_file()
    }
    if not found:
        return None
    missing = [k for k in KEYS if not found.get(k)]
    if missing:
        raise PublishError(f"model store credentials in {folder} lack {missing}")
    return found


def token(info: dict[str, str]) -> str:
    """Keycloak's password grant; the token endpoint is ``<keycloak-url>/protocol/openid-connect/token``."""
    url = info["keycloak-url"].rstrip("/") + "/protocol/openid-connect/token"
    body = parse.urlencode(
        {
            "grant_type": "password",
            "client_id": CLIENT_ID,
            "username": info["user"],
            "password": info["password"],
        }
    ).encode()
    try:
        with request.urlopen(request.Request(url, data=body), timeout=TIMEOUT) as resp:
            return json.loads(resp.read())["access_token"]
    except error.HTTPError as err:
        raise PublishError(
            f"Keycloak at {url} refused the token request: HTTP {err.code}"
        ) from None
    except (error.URLError, KeyError, ValueError) as err:
        raise PublishError(f"no token from Keycloak at {url}: {err}") from None


def _multipart(fields: dict[str, str], file_field: str, path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{path.name}"\r\nContent-Type: application/java-archive\r\n\r\n'
        ).encode()
        + path.read_bytes()
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def upload(info: dict[str, str], bearer: str, model: Path, category: str) -> dict[str, Any]:
    url = info["modelweb-url"].rstrip("/") + UPLOAD_PATH
    body, content_type = _multipart({"category": category}, "filecontent", model)
    req = request.Request(
        url, data=body, headers={"Authorization": f"Bearer {bearer}", "Content-Type": content_type}
    )
    try:
        with request.urlopen(req, timeout=TIMEOUT) as resp:
            text = resp.read().decode(errors="replace")
            status = resp.status
    except error.HTTPError as err:
        raise PublishError(
            f"the model store at {url} refused {model.name}: HTTP {err.code}"
        ) from None
    except error.URLError as err:
        raise PublishError(f"the model store at {url} is unreachable: {err.reason}") from None
    try:
        answer: Any = json.loads(text)
    except ValueError:
        answer = text
    return {"url": url, "status": status, "response": answer}


def publish(
    models: Path,
    api_info: Path,
    category: str,
    metrics: Path | None = None,
    tolerance: float | None = None,
) -> dict[str, Any]:
    jars = sorted(models.glob("*.jar"))
    if not jars:
        raise PublishError(f"no model (*.jar) in {models}")
    records = [
        {"model": jar.name, "sha256": hashlib.sha256(jar.read_bytes()).hexdigest()} for jar in jars
    ]
    if metrics is not None:
        from cpsign_airflow.cpsign.quality import HELD_BACK, VALIDITY_TOLERANCE, quality_verdict

        try:
            measured = json.loads(metrics.read_text(encoding="utf-8"))
        except ValueError as err:
            raise PublishError(f"--metrics {metrics} is not JSON: {err}") from None
        if tolerance is None:
            tolerance = VALIDITY_TOLERANCE
        quality, reason = quality_verdict(measured, None, tolerance)
        if quality == HELD_BACK:
            return {"published": False, "reason": f"held back: {reason}", "models": records}
    info = read_api_info(api_info)
    if info is None:
        return {
            "published": False,
            "reason": f"no model store credentials at {api_info}",
            "models": records,
        }
    bearer = token(info)
    for record, jar in zip(records, jars, strict=True):
        record.update(upload(info, bearer, jar, category))
    return {"published": True, "models": records}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cpsign-publish", description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--api-info", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--category", default="cpsign")
    parser.add_argument("--metrics", type=Path, help="the validate stage's metrics.json")
    parser.add_argument("--validity-tolerance", type=float, default=None)
    args = parser.parse_args(argv)
    try:
        result = publish(
            args.models, args.api_info, args.category, args.metrics, args.validity_tolerance
        )
    except (PublishError, OSError, ValueError) as err:  # ValueError: --validity-tolerance
        print(f"cpsign-publish: {err}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(
        "cpsign-publish: "
        + ("published " if result["published"] else "not published: ")
        + (
            ", ".join(m["model"] for m in result["models"])
            if result["published"]
            else result["reason"]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
