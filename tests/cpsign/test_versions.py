"""One source for the CPSign version: :data:`cpsign_airflow.cpsign.versions.CPSIGN_VERSION`.

Python reads it (the demo's configuration, the devkit's runtime install, the test kit's
model history); every other place that names the version is checked against it here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cpsign_airflow.cpsign.versions import CPSIGN_VERSION
from cpsign_airflow.get_provider_info import get_provider_info

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "cpsign_airflow"
RUNTIME = PACKAGE / "stages" / "runtime"


def _one(pattern: str, path: Path) -> str:
    found = re.findall(pattern, path.read_text(encoding="utf-8"))
    assert found, f"{pattern!r} not found in {path.relative_to(REPO)}"
    assert len(set(found)) == 1, (path, found)
    return found[0]


def test_provider_yaml_default_is_the_constant() -> None:
    options = get_provider_info()["config"]["cpsign"]["options"]
    assert options["cpsign_version"]["default"] == CPSIGN_VERSION


def test_settings_table_shows_the_constant() -> None:
    from cpsign_airflow.workflow import settings

    assert f"| cpsign_version | {CPSIGN_VERSION} |" in settings.__doc__


def test_configuration_schema_default_is_the_constant() -> None:
    schema = json.loads((PACKAGE / "cpsign" / "configuration.schema.json").read_text())
    assert schema["properties"]["cpsign"]["properties"]["version"]["default"] == CPSIGN_VERSION


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        (REPO / "images" / "stages" / "Dockerfile", r"ARG CPSIGN_VERSION=(\S+)"),
        (RUNTIME / "pom.xml", r"<cpsign\.version>([^<]+)</cpsign\.version>"),
        (RUNTIME / "pom.xml", r"-Dcpsign\.version=(\S+)"),
        (RUNTIME / "install.sh", r"\$\{CPSIGN_VERSION:-([^}]+)\}"),
        (RUNTIME / "README.md", r"\$\{CPSIGN_VERSION:-([^}]+)\}"),
        (REPO / "README.md", r"cpsign-airflow/cpsign-(\d[\w.]*\d)`"),
        (REPO / "README.md", r"CPSign\s+(\d+\.\d+\.\d+)'s library"),
    ],
    ids=lambda value: value.name if isinstance(value, Path) else "",
)
def test_non_python_places_name_the_constant(path: Path, pattern: str) -> None:
    assert _one(pattern, path) == CPSIGN_VERSION


def test_example_configurations_name_the_constant() -> None:
    examples = PACKAGE / "cpsign" / "examples"
    flat = json.loads((examples / "logd-flat.json").read_text())
    sectioned = json.loads((examples / "herg-sectioned.json").read_text())
    assert flat["cpsign-version"] == CPSIGN_VERSION
    assert sectioned["cpsign"]["version"] == CPSIGN_VERSION
