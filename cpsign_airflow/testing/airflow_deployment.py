"""A real Airflow deployment on this machine: api-server, scheduler, dag-processor, triggerer.

Used by the deployment test and the orchestration-overhead benchmark. Each component
is its own ``airflow <command>`` process, configured as docker-compose.yaml configures
its service (the caller passes that environment), with the LocalExecutor, a shared JWT
secret and the execution API on the api-server. Airflow's metadata database is a SQLite
file (supported by Airflow 3 with the LocalExecutor) unless the environment names
another. The REST API is used with the simple auth manager's admin user.

This is test infrastructure: no TLS, throwaway secrets, logs in ``workdir/logs``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_RUN_STATES = ("success", "failed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DeploymentError(RuntimeError):
    """A component died or did not become ready; the message carries its log's tail."""


class AirflowDeployment:
    """Start, drive through the REST API, and stop Airflow's four components."""

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str],
        *,
        username: str = "admin",
        password: str = "admin-password",
    ) -> None:
        self.workdir = Path(workdir)
        self.home = self.workdir / "airflow"
        self.logs = self.workdir / "logs"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.username = username
        self.password = password
        self._token: str | None = None
        self._procs: dict[str, subprocess.Popen] = {}
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            **env,
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "false",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "tasks"),
        }
        self.env.setdefault(
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{self.home}/airflow.db"
        )
        self.env.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "cpsign-deployment-test-secret")

    # ---------------------------------------------------------------- lifecycle

    def airflow(self, *args: str, timeout: float = 600) -> str:
        """Run one ``airflow`` CLI command in the deployment's environment; its stdout."""
        out = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            cwd=self.home,  # as a deployment runs: not in a source tree (its egg-info)
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise DeploymentError(
                f"airflow {' '.join(args)} exited {out.returncode}:\n{out.stderr[-3000:]}"
            )
        return out.stdout

    def start(self, timeout: float = 300) -> AirflowDeployment:
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({self.username: self.password}))
        self.airflow("db", "migrate")
        for component in COMPONENTS:
            args = [component]
            if component == "api-server":
                args += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
            log = (self.logs / f"{component}.log").open("w")
            self._procs[component] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env=self.env,
                cwd=self.home,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
        self.wait_healthy(timeout)
        return self

    def stop(self) -> None:
        for proc in reversed(list(self._procs.values())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._procs.clear()

    def __enter__(self) -> AirflowDeployment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_of(self, component: str) -> str:
        path = self.logs / f"{component}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _check_alive(self) -> None:
        for component, proc in self._procs.items():
            if proc.poll() is not None:
                raise DeploymentError(
                    f"airflow {component} exited {proc.returncode}:\n"
                    f"{self.log_of(component)[-3000:]}"
                )

    def wait_for(self, what: str, check: Any, timeout: float, interval: float = 0.5) -> Any:
        """Call ``check()`` until it returns a truthy value; components must stay alive.

        The components are other processes reached over HTTP, which offers no event
        to await; the interval is the polling period of that wait, not a guess at a
        duration.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise DeploymentError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(interval)

    def wait_healthy(self, timeout: float) -> None:
        def healthy() -> bool:
            try:
                health = self._request("GET", "/api/v2/monitor/health", auth=False)
            except (urllib.error.URLError, ConnectionError, OSError):
                return False
            parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
            return all((health.get(p) or {}).get("status") == "healthy" for p in parts)

        self.wait_for("the components to report healthy", healthy, timeout)

    # ---------------------------------------------------------------- REST API

    def _request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path, data=data, headers=headers, method=method
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def token(self) -> str:
        if self._token is None:
            data = json.dumps({"username": self.username, "password": self.password}).encode()
            request = urllib.request.Request(
                f"{self.base}/auth/token",
                data=data,
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                self._token = json.load(response)["access_token"]
        return self._token

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the REST API (``/api/v2/...``) as the admin user."""
        return self._request(method, path, body)

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> dict[str, Any]:
        def parsed() -> dict[str, Any] | None:
            try:
                return self.api("GET", f"/api/v2/dags/{dag_id}")
            except urllib.error.HTTPError as err:
                if err.code == 404:
                    return None
                raise

        return self.wait_for(f"DAG {dag_id} to be parsed", parsed, timeout)

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Unpause ``dag_id`` and trigger a run; returns its run id."""
        self.wait_for_dag(dag_id)
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = self.api(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            {"logical_date": None, "conf": dict(conf or {})},
        )
        return run["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        quoted = urllib.parse.quote(run_id, safe="")
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict[str, Any]:
        """The DAG run once it has finished (success or failed)."""

        def finished() -> dict[str, Any] | None:
            run = self.dag_run(dag_id, run_id)
            return run if run["state"] in TERMINAL_RUN_STATES else None

        return self.wait_for(f"{dag_id} run {run_id} to finish", finished, timeout)

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        quoted = urllib.parse.quote(run_id, safe="")
        body = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=100")
        return {
            ti["task_id"] + (f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else ""): ti
            for ti in body["task_instances"]
        }

    def task_log_entries(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1
    ) -> list[dict[str, Any]]:
        """The structured log of one try (each entry has ``event`` and, mostly, ``level``)."""
        quoted = urllib.parse.quote(run_id, safe="")
        body = self.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task_id}"
            f"/logs/{try_number}?full_content=true",
        )
        return [
            entry if isinstance(entry, dict) else {"event": str(entry)}
            for entry in body.get("content") or []
        ]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        entries = self.task_log_entries(dag_id, run_id, task_id, try_number)
        return "\n".join(str(entry.get("event", "")) for entry in entries)
