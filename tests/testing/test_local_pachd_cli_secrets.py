"""``python -m cpsign_airflow.testing.pachd``: secrets and the root token from the
environment or files, never the command line; a private data directory."""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs
from pachyderm_sdk.constants import AUTH_TOKEN_ENV, OIDC_TOKEN_ENV

from cpsign_airflow.testing.pachd import persistence

MODULE = [sys.executable, "-m", "cpsign_airflow.testing.pachd", "--port", "0"]


@pytest.fixture(autouse=True)
def _no_ambient_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (AUTH_TOKEN_ENV, OIDC_TOKEN_ENV):
        monkeypatch.delenv(var, raising=False)


class Pachd:
    def __init__(self, args: list[str], env: dict[str, str], log: Path, umask: int = -1) -> None:
        self.log = log
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [*MODULE, *args],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            umask=umask,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        assert ready, "no address in 60 s"
        self.address = self.proc.stdout.readline().strip()
        assert self.address.startswith("grpc://127.0.0.1:"), log.read_text()

    def cmdline(self) -> str:
        return Path(f"/proc/{self.proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(timeout=30) == 0, self.log.read_text()
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        self._log.close()


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Pachd]]:
    running: list[Pachd] = []
    yield running
    for pachd in running:
        pachd.stop()


def saved_secrets(data_dir: Path) -> dict[str, dict[str, str]]:
    saved = json.loads((data_dir / "state.json").read_text())["secrets"]
    return {
        name: {k: base64.b64decode(v).decode() for k, v in s["manifest"]["data"].items()}
        for name, s in saved.items()
    }


def test_secrets_and_token_from_env_and_files_not_argv(
    tmp_path: Path, started: list[Pachd]
) -> None:
    token = "root-token-3f9a1c"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")  # surrounding whitespace is not part of it
    password = "db-pass-71c2"
    api_key = "multi\nline key-99d0\n"  # exact contents, not stripped
    key_file = tmp_path / "api-key"
    key_file.write_text(api_key)
    data_dir = tmp_path / "data"
    pachd = Pachd(
        [
            "--auth-token-file", str(token_file),
            "--data-dir", str(data_dir),
            "--secret-env", "db:password=DB_PASSWORD",
            "--secret-file", "store:api-key=" + str(key_file),
            "--secret-env", "store:user=STORE_USER",
        ],
        {"DB_PASSWORD": password, "STORE_USER": "lab-user-5e"},
        tmp_path / "pachd.log",
    )  # fmt: skip
    started.append(pachd)
    cmdline = pachd.cmdline()
    assert "--secret-env db:password=DB_PASSWORD" in cmdline  # this is the process
    for value in (token, password, "lab-user-5e", "line key-99d0"):
        assert value not in cmdline

    with pytest.raises(grpc.RpcError) as raised:
        Client.from_pachd_address(pachd.address).pps.list_secret()
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    client = Client.from_pachd_address(pachd.address, auth_token=token)
    assert {i.secret.name for i in client.pps.list_secret().secret_info} == {"db", "store"}
    pachd.stop()
    assert saved_secrets(data_dir) == {
        "db": {"password": password},
        "store": {"api-key": api_key, "user": "lab-user-5e"},
    }


def test_token_from_env(tmp_path: Path, started: list[Pachd]) -> None:
    pachd = Pachd(["--auth-token-env", "MY_TOKEN"], {"MY_TOKEN": "tok-8d1"}, tmp_path / "log")
    started.append(pachd)
    assert "tok-8d1" not in pachd.cmdline()
    with pytest.raises(grpc.RpcError) as raised:
        list(Client.from_pachd_address(pachd.address).pfs.list_repo())
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    client = Client.from_pachd_address(pachd.address, auth_token="tok-8d1")
    assert client.auth.who_am_i().username == "pach:root"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--secret", "db:password=hunter2-value"],
            {},
            "--secret NAME:KEY=VALUE was removed",
        ),
        (["--secret-env", "db:password=NO_SUCH_VAR_X"], {}, "NO_SUCH_VAR_X is not set"),
        (["--secret-env", "db-password"], {}, "expected NAME:KEY=VAR"),
        (["--secret-file", "db:password=/no/such/file"], {}, "cannot read /no/such/file"),
        (["--auth-token-env", "EMPTY_TOKEN"], {"EMPTY_TOKEN": ""}, "EMPTY_TOKEN is empty"),
        (["--auth-token-file", "/no/such/token"], {}, "cannot read /no/such/token"),
        (
            ["--auth-token-env", "T", "--auth-token-file", "/x"],
            {"T": "t"},
            "not allowed with argument",
        ),
    ],
)
def test_refused_forms(args: list[str], env: dict[str, str], message: str) -> None:
    result = subprocess.run(
        [*MODULE, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "hunter2-value" not in result.stderr  # a value given the old way is not echoed


def test_empty_token_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "token"
    empty.write_text("\n")
    result = subprocess.run(
        [*MODULE, "--auth-token-file", str(empty)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "is empty" in result.stderr


def modes(data_dir: Path) -> dict[str, int]:
    return {
        str(p.relative_to(data_dir)): stat.S_IMODE(p.stat().st_mode)
        for p in [data_dir, *data_dir.rglob("*")]
    }


@pytest.mark.parametrize("existing", [False, True], ids=["created", "existing-0755"])
def test_data_dir_is_private_whatever_the_umask(
    tmp_path: Path, started: list[Pachd], existing: bool
) -> None:
    data_dir = tmp_path / "data"
    if existing:
        data_dir.mkdir()
        os.chmod(data_dir, 0o755)
    pachd = Pachd(["--data-dir", str(data_dir)], {}, tmp_path / "log", umask=0)
    started.append(pachd)
    client = Client.from_pachd_address(pachd.address)
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    with client.pfs.commit(branch=pfs.Branch.from_uri("data@master")) as commit:
        commit.put_file_from_bytes(path="/x.txt", data=b"private\n")
    client.pps.create_secret(name="db", data={"password": "p"})
    pachd.stop()
    found = modes(data_dir)
    assert {".", "state.json", "blobs"} <= set(found) and len(found) >= 4, found
    wrong = {p: oct(m) for p, m in found.items() if m != (0o700 if p in (".", "blobs") else 0o600)}
    assert wrong == {}


def test_save_makes_private_files_under_umask_0(tmp_path: Path) -> None:
    """persistence.save directly, as the server calls it: explicit modes, not the umask's."""
    from cpsign_airflow.testing.pachd.state import State

    old = os.umask(0)
    try:
        persistence.save(State(), tmp_path / "d")
    finally:
        os.umask(old)
    assert modes(tmp_path / "d") == {".": 0o700, "blobs": 0o700, "state.json": 0o600}
