"""The stage image cannot be built here (no Docker engine): check what it and the specs name.

Every command a bundled spec runs must be an entry point this package installs, and the
Dockerfile must install the package and the CPSign runtime those commands use.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tomllib

from cpsign_airflow.cpsign import render_workflow_specs
from cpsign_airflow.cpsign.pipelines import STAGE_IMAGE

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "images" / "stages" / "Dockerfile"


def entry_points() -> dict[str, str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def test_every_spec_command_is_an_installed_entry_point() -> None:
    scripts = entry_points()
    for _, spec in render_workflow_specs("LogD"):
        command = spec["transform"]["cmd"][0]
        assert command in scripts, f"{spec['pipeline']['name']} runs {command!r}"
        assert spec["transform"]["image"] == STAGE_IMAGE
        module, func = scripts[command].split(":")
        # the entry point resolves, and the subcommand the spec names is one it accepts
        out = subprocess.run(
            [sys.executable, "-c", f"import {module} as m; m.{func}(['--help'])"],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        for word in spec["transform"]["cmd"][1:2]:
            if not word.startswith("-"):
                assert word in out.stdout, f"{command} has no subcommand {word!r}"


def test_entry_points_exist_on_path_of_this_install() -> None:
    bin_dir = Path(sys.executable).parent
    for name in entry_points():
        assert (bin_dir / name).exists(), f"{name} is not installed next to {sys.executable}"


def test_dockerfile_builds_the_runtime_and_installs_the_package() -> None:
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.M)
    # multi-stage: Maven, the stage runtime, then docker-compose's local pachd on top of it
    assert [name for _, name in froms] == ["cpsign", "stages", "local-pachd"]
    assert "--target stages" in text  # the documented build of the stage image
    assert "cpsign_airflow/stages/runtime" in text and "install.sh /opt/cpsign" in text
    assert (REPO / "cpsign_airflow" / "stages" / "runtime" / "install.sh").is_file()
    assert "COPY --from=cpsign /opt/cpsign /opt/cpsign" in text
    assert "CPSIGN_HOME=/opt/cpsign" in text
    assert re.search(r"pip install [^\n]*--no-deps /src/cpsign-airflow", text)
    # the specs point CPSIGN_HOME where the image puts the runtime
    for _, spec in render_workflow_specs("LogD"):
        env = spec["transform"].get("env", {})
        if "CPSIGN_HOME" in env:
            assert env["CPSIGN_HOME"] == "/opt/cpsign"
    stage_part = text.split("AS local-pachd", 1)[0]
    cmd = re.search(r'^CMD \["([^"]+)"', stage_part, re.M)
    assert cmd and cmd.group(1) in entry_points()
    pachd_part = text.split("AS local-pachd", 1)[1]
    assert "bubblewrap" in pachd_part and "pachyderm-sdk" in pachd_part
    assert '"cpsign_airflow.testing.pachd"' in pachd_part


def test_stages_import_without_airflow_or_the_pachyderm_client() -> None:
    """The image installs the package without dependencies: stages must not need them."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('airflow', 'pachyderm_sdk', 'grpc', 'kubernetes'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import cpsign_airflow.stages.ingest, cpsign_airflow.stages.cpsign_stage\n"
        "import cpsign_airflow.stages.publish\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
