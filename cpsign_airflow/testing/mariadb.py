"""A MySQL/MariaDB server for tests: configured, local, or a throwaway ``mariadbd``.

Resolution order (never a silent skip):

1. ``CPSIGN_TEST_MYSQL_URL`` (a SQLAlchemy URL such as ``mysql://root:@db:3306/test``);
2. the machine's server on 127.0.0.1:3306, user root, empty password, if it answers;
3. a throwaway ``mariadbd`` from PATH (or /usr/sbin) in a temporary data directory,
   on a free port, stopped and deleted afterwards.

``CPSIGN_TEST_MYSQL_FORCE_THROWAWAY=1`` skips 1 and 2. When nothing works,
:class:`MariaDBUnavailable` says how to install MariaDB.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ENV_URL = "CPSIGN_TEST_MYSQL_URL"
ENV_FORCE_THROWAWAY = "CPSIGN_TEST_MYSQL_FORCE_THROWAWAY"
LOCAL_HOST, LOCAL_PORT = "127.0.0.1", 3306
INSTALL_HINT = "apt-get install -y mariadb-server  (or set CPSIGN_TEST_MYSQL_URL)"
STARTUP_TIMEOUT = 60.0


class MariaDBUnavailable(RuntimeError):
    """No MySQL/MariaDB server could be found or started for the tests."""


@dataclass(frozen=True)
class MySQLServer:
    """A reachable server: its SQLAlchemy URL (with a database) and where it came from."""

    url: str
    source: str  # "env", "local" or "throwaway"


def _connect(url: str, timeout: int = 3):
    """A raw MySQLdb connection from a SQLAlchemy URL."""
    import MySQLdb
    from sqlalchemy.engine import make_url

    u = make_url(url)
    kwargs = {
        "host": u.host or "localhost",
        "user": u.username or "root",
        "passwd": u.password or "",
        "connect_timeout": timeout,
        "charset": "utf8mb4",
    }
    if u.port:
        kwargs["port"] = u.port
    if u.query.get("unix_socket"):
        kwargs["unix_socket"] = u.query["unix_socket"]
    return MySQLdb.connect(**kwargs)


def reachable(url: str, timeout: int = 3) -> bool:
    try:
        _connect(url, timeout).close()
    except Exception as exc:  # MySQLdb.OperationalError and socket errors alike
        log.debug("MySQL at %s not reachable: %s", url, exc)
        return False
    return True


def _which(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or next(
            (
                str(p)
                for d in ("/usr/sbin", "/usr/bin", "/usr/local/bin")
                if (p := Path(d) / name).exists()
            ),
            None,
        )
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCAL_HOST, 0))
        return s.getsockname()[1]


class ThrowawayMariaDB:
    """``mariadbd`` in a temporary directory; root without a password on 127.0.0.1."""

    def __init__(self) -> None:
        self.mariadbd = _which("mariadbd", "mysqld")
        self.install_db = _which("mariadb-install-db", "mysql_install_db")
        if not self.mariadbd or not self.install_db:
            raise MariaDBUnavailable(
                "No MySQL server for the bookkeeping tests: none at CPSIGN_TEST_MYSQL_URL or "
                f"{LOCAL_HOST}:{LOCAL_PORT}, and no mariadbd/mariadb-install-db to start one. "
                f"Install it: {INSTALL_HINT}"
            )
        self.dir: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"mysql://root@{LOCAL_HOST}:{self.port}/test"

    def _user_args(self) -> list[str]:
        # mariadbd refuses to run as root unless told to; CI runs as root.
        return ["--user=root"] if os.geteuid() == 0 else []

    def start(self) -> str:
        self.dir = Path(tempfile.mkdtemp(prefix="cpsign-mariadb-"))
        data = self.dir / "data"
        install = subprocess.run(
            [
                self.install_db,
                "--no-defaults",
                f"--datadir={data}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                *self._user_args(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if install.returncode != 0:
            self.stop()
            raise MariaDBUnavailable(
                f"mariadb-install-db failed ({install.returncode}): {install.stderr[-2000:]}"
            )
        last_error = ""
        for _ in range(3):  # the free port may be taken between choosing and binding
            self.port = _free_port()
            log_file = self.dir / "mariadbd.log"
            self.proc = subprocess.Popen(
                [
                    self.mariadbd,
                    "--no-defaults",
                    f"--datadir={data}",
                    f"--socket={self.dir / 'mysqld.sock'}",
                    f"--pid-file={self.dir / 'mysqld.pid'}",
                    f"--port={self.port}",
                    f"--bind-address={LOCAL_HOST}",
                    f"--log-error={log_file}",
                    "--skip-log-bin",
                    "--skip-name-resolve",
                    "--innodb-buffer-pool-size=32M",
                    "--innodb-log-file-size=16M",
                    "--character-set-server=utf8mb4",
                    *self._user_args(),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            if self._wait_ready():
                conn = _connect(self.url)
                try:
                    conn.cursor().execute("CREATE DATABASE IF NOT EXISTS test")
                finally:
                    conn.close()
                log.info("Started throwaway mariadbd on port %s in %s", self.port, self.dir)
                return self.url
            last_error = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            self._stop_process()
        self.stop()
        raise MariaDBUnavailable(f"Throwaway mariadbd did not start: {last_error}")

    def _wait_ready(self) -> bool:
        """Readiness wait: poll until it accepts connections, it exits, or the deadline passes."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            if reachable(self.url, timeout=1):
                return True
            time.sleep(0.1)
        return False

    def _stop_process(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self) -> None:
        self._stop_process()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


@contextlib.contextmanager
def mysql_server(*, force_throwaway: bool | None = None) -> Iterator[MySQLServer]:
    """Yield a reachable server; a throwaway one is stopped and deleted on exit."""
    if force_throwaway is None:
        force_throwaway = os.environ.get(ENV_FORCE_THROWAWAY, "") not in ("", "0", "false")
    if not force_throwaway:
        env_url = os.environ.get(ENV_URL)
        if env_url:
            if not reachable(env_url, timeout=10):
                from sqlalchemy.engine import make_url

                safe = make_url(env_url).render_as_string(hide_password=True)
                raise MariaDBUnavailable(f"{ENV_URL}={safe} is set but not reachable")
            yield MySQLServer(env_url, "env")
            return
        local = f"mysql://root@{LOCAL_HOST}:{LOCAL_PORT}/test"
        if reachable(local):
            yield MySQLServer(local, "local")
            return
    server = ThrowawayMariaDB()
    try:
        url = server.start()
        yield MySQLServer(url, "throwaway")
    finally:
        server.stop()


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str = "cpsign_t_") -> Iterator[str]:
    """A fresh, uniquely named database on ``server_url`` (dropped on exit); yields its URL.

    Created with a latin1 default on purpose: the bookkeeping tables must carry
    their own utf8mb4 charset, as they would in a user's old database.
    """
    import uuid

    from sqlalchemy.engine import make_url

    name = f"{prefix}{uuid.uuid4().hex[:16]}"
    conn = _connect(server_url)
    try:
        conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET latin1")
    finally:
        conn.close()
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        conn = _connect(server_url)
        try:
            cur = conn.cursor()
            # A session a test left open (e.g. mid-transaction) would hold a metadata
            # lock and make DROP wait for a day: end such sessions first.
            cur.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID != CONNECTION_ID()",
                (name,),
            )
            for (session_id,) in cur.fetchall():
                with contextlib.suppress(Exception):  # it may have ended meanwhile
                    cur.execute("KILL CONNECTION %s", (session_id,))
            cur.execute("SET SESSION lock_wait_timeout = 60")
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            conn.close()
