"""docker-compose.yaml as the real Compose CLI resolves it: shared by the compose tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yaml"


def run_compose(
    compose_bin: Path, *args: str, file: Path = COMPOSE_FILE, env_file: Path | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [str(compose_bin), "-f", str(file)]
    if env_file is not None:
        cmd += ["--env-file", str(env_file)]
    # A bare environment: variables of this shell (the test suite sets AIRFLOW__* ones)
    # would otherwise override the file's defaults during interpolation.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(file.parent)}
    return subprocess.run(
        [*cmd, *args], cwd=file.parent, env=env, capture_output=True, text=True, timeout=60
    )


def load_config(compose_bin: Path, env_file: Path, *extra: str) -> dict[str, Any]:
    result = run_compose(compose_bin, *extra, "config", "--format", "json", env_file=env_file)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def unescape(text: str) -> str:
    """`config` prints a compose file, so a literal $ appears as $$."""
    return text.replace("$$", "$")


def init_script(config: dict[str, Any]) -> list[str]:
    init = config["services"]["airflow-init"]
    assert init["entrypoint"] == ["/bin/bash"]
    assert init["command"][0] == "-c"
    return [line.strip() for line in unescape(init["command"][1]).splitlines() if line.strip()]


# ------------------------------------------------- airflow-init's secrets, the entrypoint

#: Where the compose file keeps what airflow-init writes: volume mount points in the
#: Airflow services / airflow-init, and in the pachd service.
SECRETS_DIR = "/opt/airflow/secrets"
AUTH_DIR = "/opt/airflow/auth"
PACHD_AUTH_DIR = "/opt/airflow/pachd-auth"
PACHD_TOKEN_MOUNT = "/run/pachd-auth"


def init_secrets_step(config: dict[str, Any]) -> tuple[str, str]:
    """airflow-init's secrets step: the command that runs it and the heredoc it reads."""
    text = unescape(config["services"]["airflow-init"]["command"][1])
    match = re.search(r"^([^\n]*)<<'(\w+)'\n(.*?)^\2$", text, re.M | re.S)
    assert match, "airflow-init has no heredoc step"
    return match.group(1).strip(), match.group(3)


def run_init_secrets(config: dict[str, Any], root: Path, **given: str) -> dict[str, Path]:
    """Run airflow-init's secrets step as the service would, its volumes moved under
    ``root``; ``given`` overrides variables of the service's environment. The paths."""
    command, script = init_secrets_step(config)
    assert command == "python -"
    paths = {
        "secrets": root / "secrets",
        "auth": root / "auth",
        "pachd_auth": root / "pachd-auth",
    }
    for path in paths.values():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    init = config["services"]["airflow-init"]
    targets = {v["target"] for v in init["volumes"]}
    assert {SECRETS_DIR, AUTH_DIR, PACHD_AUTH_DIR} <= targets
    for target, key in (
        (SECRETS_DIR, "secrets"),
        (AUTH_DIR, "auth"),
        (PACHD_AUTH_DIR, "pachd_auth"),
    ):
        script = script.replace(target + "/", f"{paths[key]}/")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update(init["environment"])
    env.update(given)
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] = env[
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
    ].replace(AUTH_DIR + "/", f"{paths['auth']}/")
    subprocess.run([sys.executable, "-"], input=script, env=env, check=True, text=True, timeout=60)
    return paths


def entrypoint_script(service: dict[str, Any]) -> str:
    """The Airflow services' entrypoint wrapper (a bash script ending in the image's)."""
    entrypoint = service["entrypoint"]
    assert entrypoint[:2] == ["/bin/bash", "-c"] and len(entrypoint) == 4
    script = unescape(entrypoint[2])
    assert script.rstrip().endswith('exec /usr/bin/dumb-init -- /entrypoint "$@"')
    return script


def exported_by_entrypoint(
    service: dict[str, Any], secrets_dir: Path, variable: str, **env: str
) -> str | None:
    """What ``variable`` is after the service's entrypoint, run with its environment
    (plus ``env``), its secrets volume at ``secrets_dir``, the image's entrypoint
    replaced by a print."""
    script = entrypoint_script(service).replace(SECRETS_DIR + "/", f"{secrets_dir}/")
    script = script.replace("exec /usr/bin/dumb-init -- /entrypoint", "exec")
    probe = f"import os; print(repr(os.environ.get({variable!r})))"
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **service["environment"], **env}
    out = subprocess.run(
        ["bash", "-c", script, "entrypoint", sys.executable, "-c", probe],
        env=full_env, check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    import ast

    return ast.literal_eval(out.stdout.strip())


def pachd_service_argv(
    config: dict[str, Any], port: int, data_dir: Path, pachd_auth: Path
) -> list[str]:
    """The ``pachd`` service's own command: this interpreter, loopback, ``port``, a
    temporary data directory, the token volume at ``pachd_auth``."""
    pachd = config["services"]["pachd"]
    argv = list(pachd["command"])
    assert argv[:3] == ["python", "-m", "cpsign_airflow.testing.pachd"]
    argv[0] = sys.executable
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    volumes = {v["target"]: v for v in pachd["volumes"]}
    assert argv[argv.index("--data-dir") + 1] in volumes
    argv[argv.index("--data-dir") + 1] = str(data_dir)
    token_file = argv[argv.index("--auth-token-file") + 1]
    assert token_file.startswith(PACHD_TOKEN_MOUNT + "/")
    mount = volumes[PACHD_TOKEN_MOUNT]
    assert mount["source"] == "pachd-auth" and mount.get("read_only") is True
    argv[argv.index("--auth-token-file") + 1] = str(pachd_auth / token_file.rsplit("/", 1)[1])
    return argv


def pachd_service_env(config: dict[str, Any]) -> dict[str, str]:
    """This process's environment plus the ``pachd`` service's own."""
    return {**os.environ, **(config["services"]["pachd"].get("environment") or {})}
