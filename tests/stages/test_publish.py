"""cpsign-publish against a local Keycloak + Modelingweb stand-in that checks what it is sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from cpsign_airflow.stages import publish

TOKEN = "tok-123"


class ModelStore:
    """Keycloak's token endpoint and Modelingweb's upload endpoint, recording requests."""

    def __init__(self) -> None:
        self.uploads: list[dict] = []
        self.token_requests: list[dict] = []
        self.accept_token = TOKEN
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/realms/lab/protocol/openid-connect/token":
                    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                    store.token_requests.append(form)
                    ok = form.get("password") == "pw" and form.get("client_id") == "modelingweb"
                    self._reply(200 if ok else 401, {"access_token": TOKEN} if ok else {})
                elif self.path == "/api/v1/models/fromFile":
                    if self.headers.get("Authorization") != f"Bearer {store.accept_token}":
                        self._reply(401, {"error": "invalid token"})
                        return
                    head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
                    message = BytesParser(policy=default).parsebytes(head + body)
                    parts = {
                        p.get_param("name", header="content-disposition"): p
                        for p in message.iter_parts()
                    }
                    store.uploads.append(
                        {
                            "category": parts["category"].get_content(),
                            "filename": parts["filecontent"].get_filename(),
                            "content": parts["filecontent"].get_payload(decode=True),
                        }
                    )
                    self._reply(201, {"id": len(store.uploads)})
                else:
                    self._reply(404, {})

            def _reply(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def store() -> Iterator[ModelStore]:
    s = ModelStore()
    thread = threading.Thread(target=s.server.serve_forever, daemon=True)
    thread.start()
    yield s
    s.server.shutdown()


def api_info(folder: Path, store: ModelStore, password: str = "pw") -> Path:
    folder.mkdir()
    values = {
        "user": "lab-bot",
        "password": password,
        "modelweb-url": store.url,
        "keycloak-url": f"{store.url}/realms/lab",
    }
    for key, value in values.items():
        (folder / key).write_text(value + "\n")
    return folder


def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "LogD.jar").write_bytes(b"PK\x03\x04 a model")
    return folder


def test_token_then_multipart_upload(store: ModelStore, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out" / "published.json"
    code = publish.main(
        [
            "--models", str(model(tmp_path)),
            "--api-info", str(api_info(tmp_path / "info", store)),
            "--out", str(out),
            "--category", "LogD",
        ]
    )  # fmt: skip
    assert code == 0
    assert store.token_requests == [
        {
            "grant_type": "password",
            "client_id": "modelingweb",
            "username": "lab-bot",
            "password": "pw",
        }
    ]
    assert store.uploads == [
        {"category": "LogD", "filename": "LogD.jar", "content": b"PK\x03\x04 a model"}
    ]
    record = json.loads(out.read_text())
    assert record["published"] is True and record["models"][0]["status"] == 201
    assert record["models"][0]["response"] == {"id": 1}
    assert "pw" not in capsys.readouterr().out + out.read_text()


def test_refused_token_fails_naming_keycloak(store: ModelStore, tmp_path: Path, capsys) -> None:
    info = api_info(tmp_path / "info", store, password="wrong-secret")
    out = tmp_path / "published.json"
    code = publish.main(
        ["--models", str(model(tmp_path)), "--api-info", str(info), "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Keycloak" in err and "HTTP 401" in err
    assert "wrong-secret" not in err and not out.exists() and store.uploads == []


def test_upload_refused_names_the_store(store: ModelStore, tmp_path: Path, capsys) -> None:
    store.accept_token = "another"
    info = api_info(tmp_path / "info", store)
    code = publish.main(
        [
            "--models",
            str(model(tmp_path)),
            "--api-info",
            str(info),
            "--out",
            str(tmp_path / "p.json"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and f"{store.url}/api/v1/models/fromFile refused LogD.jar: HTTP 401" in err


def test_no_model_store_records_that_nothing_was_published(tmp_path: Path) -> None:
    out = tmp_path / "published.json"
    code = publish.main(
        ["--models", str(model(tmp_path)), "--api-info", str(tmp_path / "none"), "--out", str(out)]
    )
    record = json.loads(out.read_text())
    assert code == 0 and record["published"] is False and "no model store" in record["reason"]
    assert record["models"][0]["model"] == "LogD.jar" and len(record["models"][0]["sha256"]) == 64


def test_a_model_failing_validity_is_held_back_before_any_request(
    store: ModelStore, tmp_path: Path
) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"ptype": 2, "error_rate": {"0.8": 0.31, "0.9": 0.08}}))
    out = tmp_path / "published.json"
    args = ["--models", str(model(tmp_path)), "--api-info", str(api_info(tmp_path / "info", store))]
    code = publish.main([*args, "--out", str(out), "--metrics", str(metrics)])
    record = json.loads(out.read_text())
    assert code == 0 and record["published"] is False
    assert record["reason"].startswith("held back:") and "0.8" in record["reason"]
    assert store.token_requests == [] and store.uploads == []  # nothing left the cluster
    metrics.write_text(json.dumps({"ptype": 2, "error_rate": {"0.8": 0.21, "0.9": 0.08}}))
    code = publish.main([*args, "--out", str(out), "--metrics", str(metrics)])
    assert code == 0 and json.loads(out.read_text())["published"] is True  # within 0.05


def test_unreadable_metrics_or_tolerance_fail_naming_them(tmp_path: Path, capsys) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text("{not json")
    args = ["--models", str(model(tmp_path)), "--api-info", str(tmp_path / "none")]
    out = ["--out", str(tmp_path / "published.json")]
    assert publish.main([*args, *out, "--metrics", str(metrics)]) == 1
    assert f"--metrics {metrics} is not JSON" in capsys.readouterr().err
    metrics.write_text(json.dumps({"ptype": 2, "error_rate": {"0.8": 0.2}}))
    tolerance = ["--metrics", str(metrics), "--validity-tolerance", "-1"]
    assert publish.main([*args, *out, *tolerance]) == 1
    assert "tolerance" in capsys.readouterr().err
    assert not (tmp_path / "published.json").exists()  # nothing recorded as done
