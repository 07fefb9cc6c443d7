"""docker-compose.yaml as the real Compose CLI resolves it: shared by the compose tests."""

from __future__ import annotations

import json
import os
import subprocess
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
