"""What the stage image and the specs name, checked without building it (``make
compose-test`` builds and runs it).

Every command a bundled spec runs must be an entry point this package installs, and the
Dockerfile must install the package and the CPSign runtime those commands use; the
local-pachd target every package the local pachd imports.
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
    # multi-stage: Maven, the Python environment (built where a compiler is), the stage
    # runtime, then docker-compose's local pachd on top of it
    assert [name for _, name in froms] == ["cpsign", "wheels", "stages", "local-pachd"]
    # nothing to compile with in the stage image, no pip cache
    stages_part = text.split("AS stages", 1)[1].split("AS local-pachd", 1)[0]
    for word in ("gcc", "python3-dev", "libmariadb-dev", "build-essential"):
        assert word not in stages_part, f"the stage image installs {word}"
    assert "COPY --from=wheels /opt/venv /opt/venv" in stages_part
    assert all("--no-cache-dir" in line for line in re.findall(r"pip install[^\n]*", text))
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


def _dockerfile_requirements(stage: str) -> set[str]:
    """Distribution names a Dockerfile stage pip-installs (besides the package itself)."""
    text = DOCKERFILE.read_text()
    part = text.split("AS local-pachd", 1)[0] if stage == "stages" else text
    names: set[str] = set()
    for line in re.findall(r"pip install [^\n]*?-c /opt/constraints.txt ([^\n\\]+)", part):
        for word in line.split():
            name = re.split(r"[<>=\[]", word.strip('"'))[0]
            if name and not name.startswith("-"):
                names.add(name.lower().replace("_", "-"))
    return names


def _closure(names: set[str]) -> set[str]:
    """The distributions ``names`` need, transitively, as installed here."""
    from importlib import metadata

    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:
            # optional dependencies too: a library imports those only if they are there
            todo.append(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0].lower().replace("_", "-"))
    return seen


def test_the_stage_image_installs_every_package_the_ingestion_stage_imports(tmp_path) -> None:
    """Run cpsign-ingest for real (SQLite source, pinned as cpsign_setup pins it) and check
    that every third-party module it imported comes from a distribution the image installs
    (the image installs the package --no-deps, so a new import must be added there)."""
    import json
    import os
    import sqlite3

    db = tmp_path / "src.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (smiles TEXT, y REAL)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [("CCO", 1.0), ("CCN", 2.0)])
    conn.close()
    config = {
        "workflow_name": "Img",
        "preprocessing": {
            "database": {"dialect": "sqlite", "host": "-", "user": "-", "db_name": str(db)},
            "query": {
                "database_query": "SELECT smiles, y FROM t{}",
                "smi_columns": ["smiles", "y"],
                "smi_filename": "train.tsv",
            },
        },
        "train": {"ptype": 2, "nr-models": 2, "model-name": "Img_acp"},
    }
    (tmp_path / "configuration.json").write_text(json.dumps(config))
    code = (
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "from cpsign_airflow.stages import ingest\n"
        f"rc = ingest.main(['--config', {str(tmp_path / 'configuration.json')!r},"
        f" '--out', {str(tmp_path / 'out')!r}])\n"
        "from importlib import metadata\n"
        "top = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "dists = metadata.packages_distributions()\n"
        "used = sorted({d for m in top for d in dists.get(m, [])})\n"
        "print(json.dumps({'rc': rc, 'dists': used}))\n"
    )
    env = {**os.environ, "SOURCE_DB_DIALECT": "sqlite", "SOURCE_DB_NAME": str(db)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0, out.stderr
    installed = _closure(_dockerfile_requirements("stages")) | {"cpsign-airflow"}
    used = {d.lower().replace("_", "-") for d in result["dists"]}
    missing = sorted(used - installed)
    assert not missing, f"the stage image does not install {missing} (images/stages/Dockerfile)"


def test_the_local_pachd_image_installs_every_package_the_local_pachd_imports(tmp_path) -> None:
    """Run the local pachd as the pachd service does (its command, with a token) and its
    healthcheck against it, and check that every third-party module imported comes from a
    distribution the local-pachd target installs (protobuf was missing: the image answered
    GetVersion, and every commit reply failed)."""
    import json

    token = tmp_path / "token"
    token.write_text("health-token\n")
    code = (
        "import json, sys, threading\n"
        "before = set(sys.modules)\n"
        "from cpsign_airflow.testing.pachd.__main__ import main\n"
        "from cpsign_airflow.testing.pachd.healthcheck import main as health\n"
        "from cpsign_airflow.testing.pachd.server import LocalPachd\n"
        "from cpsign_airflow.testing.pachd.healthcheck import encode_replies\n"
        "encode_replies()\n"
        f"pachd = LocalPachd(port=0, auth_token='health-token', data_dir={str(tmp_path / 'd')!r})\n"
        "pachd.start()\n"
        "port = pachd.address.rsplit(':', 1)[1]\n"
        f"rc = health(['--port', port, '--token-file', {str(token)!r}])\n"
        "pachd.stop()\n"
        "from importlib import metadata\n"
        "top = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "dists = metadata.packages_distributions()\n"
        "used = sorted({d for m in top for d in dists.get(m, [])})\n"
        "print(json.dumps({'rc': rc, 'dists': used}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0, out.stderr
    installed = _closure(_dockerfile_requirements("local-pachd")) | {"cpsign-airflow"}
    used = {d.lower().replace("_", "-") for d in result["dists"]}
    assert {"protobuf", "grpcio", "pachyderm-sdk"} <= used  # the check sees the encoding
    missing = sorted(used - installed)
    assert not missing, (
        f"the local-pachd image does not install {missing} (images/stages/Dockerfile)"
    )


def test_the_pachd_healthcheck_fails_without_protobuf(tmp_path) -> None:
    """The image check the local-pachd build and the pachd service's startup run: with
    google.protobuf unimportable (the broken image), it fails, naming the module."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'google':\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from cpsign_airflow.testing.pachd.healthcheck import main\n"
        "sys.exit(main(['--encode-only']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "unhealthy" in out.stderr and "google" in out.stderr, out
