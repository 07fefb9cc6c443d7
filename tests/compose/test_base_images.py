"""scripts/base_images.sh and scripts/compose_test.sh, checked without an engine (``make
compose-test`` runs them): every base image the Dockerfiles and the compose file name has a
stand-in, and the scripts parse."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"


def dockerfile_bases(path: Path) -> set[str]:
    """External images a Dockerfile builds FROM (not its own stages), ARGs resolved."""
    text = path.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
    stages: set[str] = set()
    bases: set[str] = set()
    for image, _, name in re.findall(r"^FROM\s+(\S+)(\s+AS\s+(\S+))?", text, re.M):
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        if image not in stages:
            bases.add(image)
        if name:
            stages.add(name)
    return bases


def test_every_base_image_has_a_stand_in() -> None:
    script = (SCRIPTS / "base_images.sh").read_text()
    named = dockerfile_bases(REPO / "Dockerfile") | dockerfile_bases(
        REPO / "images" / "stages" / "Dockerfile"
    )
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    for service in compose["services"].values():
        image = service.get("image", "")
        if "build" not in service and image:
            named.add(re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", image))
    assert named == {
        "apache/airflow:3.3.2-python3.11",
        "maven:3.9-eclipse-temurin-17",
        "debian:bookworm-slim",
        "postgres:16",
        "mariadb:11.4",
    }
    for image in named - {"apache/airflow:3.3.2-python3.11", "mariadb:11.4"}:
        assert image in script, f"scripts/base_images.sh has no stand-in for {image}"
    assert "apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}" in script
    assert 'DB_IMAGE="${CPSIGN_DB_IMAGE:-mariadb:11.4}"' in script


def test_scripts_parse() -> None:
    for name in ("base_images.sh", "compose_test.sh", "build_args.sh"):
        result = subprocess.run(["bash", "-n", str(SCRIPTS / name)], capture_output=True, text=True)
        assert result.returncode == 0, f"{name}: {result.stderr}"


def test_compose_test_tears_down_and_fails() -> None:
    """The stack goes down on every exit (a trap), and the API checks' status is the test's."""
    script = (SCRIPTS / "compose_test.sh").read_text()
    assert "set -euo pipefail" in script and "trap teardown EXIT" in script
    assert "down -v --remove-orphans" in script
    assert re.search(r'exit "\$code"', script)
    assert "scripts/compose_e2e.py" in script
