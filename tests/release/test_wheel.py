"""The built wheel as a platform engineer meets it: a fresh venv outside the repository, no extras.

``make dist`` builds the sdist and wheel into ``dist/`` and runs this module with
``CPSIGN_DIST_DIR=dist`` (elsewhere it is skipped). The venv installs the wheel with pip's
``--only-binary :all:``, so nothing in the resolution can need a compiler (mysqlclient has
no Linux wheel), with the constraints the suite passed with. It then imports every public
module, lists the provider and the plugin, tests a ``pachyderm://`` connection against the
local pachd (run by this test process) and parses the bundled DAGs where
``python -m cpsign_airflow.dag_files install`` put them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DIST = os.environ.get("CPSIGN_DIST_DIR")
CONSTRAINTS = os.environ.get("CPSIGN_DIST_CONSTRAINTS", "constraints/constraints-3.11.txt")

pytestmark = [
    pytest.mark.dist,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(
        not DIST, reason="make dist runs this (CPSIGN_DIST_DIR names the wheel's dir)"
    ),
]

#: In an extra, so never in a plain install.
EXTRAS_ONLY = {
    "mysqlclient",
    "apache-airflow-providers-mysql",
    "apache-airflow-providers-cncf-kubernetes",
    "matplotlib",
    "numpy",
    "psycopg2-binary",
    "pytest",
}


class Smoke:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.venv = root / "venv"
        self.home = root / "airflow-home"
        self.report: dict = {}

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def env(self, **extra: str) -> dict[str, str]:
        """This process's environment without its Airflow, venv and path settings."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AIRFLOW") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_FOLDER=str(self.home / "dags"),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{self.home}/airflow.db",
            PATH=f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            **extra,
        )
        return env

    def run(self, *args: str, timeout: float = 600, exit_code: int = 0, **env: str) -> str:
        out = subprocess.run(
            args,
            cwd=self.root,  # never the repository: the installed package must be the one found
            env=self.env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        assert out.returncode == exit_code, (
            f"{' '.join(args)} exited {out.returncode}:\n{out.stdout}"
        )
        return out.stdout

    def airflow(self, *args: str, exit_code: int = 0, **env: str) -> str:
        return self.run(str(self.venv / "bin" / "airflow"), *args, exit_code=exit_code, **env)


@pytest.fixture(scope="module")
def wheel() -> Path:
    wheels = sorted(Path(REPO, DIST).glob("cpsign_airflow-*-py3-none-any.whl"))
    assert len(wheels) == 1, f"expected one wheel in {DIST}: {wheels}"
    return wheels[0]


@pytest.fixture(scope="module")
def smoke(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Smoke:
    smoke = Smoke(tmp_path_factory.mktemp("wheel-smoke"))
    assert REPO not in smoke.root.parents
    smoke.home.mkdir()
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(smoke.venv)], check=True)
    smoke.run(smoke.python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    constraints = ["-c", str(REPO / CONSTRAINTS)] if (REPO / CONSTRAINTS).is_file() else []
    started = time.monotonic()
    smoke.run(
        smoke.python,
        *("-m", "pip", "install", "--quiet", "--only-binary", ":all:"),
        *("--report", str(smoke.root / "report.json")),
        str(wheel),
        *constraints,
        timeout=1500,
    )
    print(f"wheel installed without extras in {time.monotonic() - started:.0f} s")
    smoke.report = json.loads((smoke.root / "report.json").read_text())
    return smoke


def test_nothing_in_the_resolution_needs_a_compiler(smoke: Smoke):
    installed = {
        item["metadata"]["name"].lower().replace("_", "-"): item["download_info"]["url"]
        for item in smoke.report["install"]
    }
    assert "cpsign-airflow" in installed and "apache-airflow-core" in installed
    assert not {n for n, url in installed.items() if not url.endswith(".whl")}
    assert EXTRAS_ONLY.isdisjoint(installed), EXTRAS_ONLY & set(installed)


IMPORT_ALL = r"""
import importlib, json, pkgutil, sys
import cpsign_airflow

names, failed = [], {}
for mod in pkgutil.walk_packages(cpsign_airflow.__path__, "cpsign_airflow."):
    parts = mod.name.split(".")
    # private modules, __main__ scripts, and Alembic's env.py and revisions (run by Alembic)
    if any(p.startswith("_") for p in parts) or ".migrations" in mod.name:
        continue
    try:
        importlib.import_module(mod.name)
        names.append(mod.name)
    except Exception as exc:
        failed[mod.name] = repr(exc)
optional = ["pytest", "MySQLdb", "matplotlib", "airflow.providers.mysql",
            "airflow.providers.cncf.kubernetes", "kubernetes"]
print(json.dumps({
    "file": cpsign_airflow.__file__, "version": cpsign_airflow.__version__,
    "imported": names, "failed": failed,
    "loaded_optional": [m for m in optional if m in sys.modules],
}))
"""


def test_every_public_module_imports_without_the_extras(smoke: Smoke):
    result = json.loads(smoke.run(smoke.python, "-c", IMPORT_ALL).splitlines()[-1])
    assert result["file"].startswith(str(smoke.venv)), result["file"]
    assert result["failed"] == {}
    assert result["loaded_optional"] == []
    from cpsign_airflow import __version__

    assert result["version"] == __version__
    for name in (
        "cpsign_airflow.hooks.pachyderm",
        "cpsign_airflow.operators.pachyderm",
        "cpsign_airflow.sensors.pachyderm",
        "cpsign_airflow.triggers.pachyderm",
        "cpsign_airflow.bookkeeping.operators",
        "cpsign_airflow.kubernetes.operators",
        "cpsign_airflow.models_page.plugin",
        "cpsign_airflow.testing.pachd",
    ):
        assert name in result["imported"]


def test_optional_parts_name_their_extra(smoke: Smoke):
    code = (
        "from cpsign_airflow.extras import MissingExtra, require\n"
        "from cpsign_airflow.models_page import charts\n"
        "try:\n"
        "    require('airflow.providers.mysql.hooks.mysql', 'mysql')\n"
        "except MissingExtra as e:\n"
        "    print(e)\n"
        "print(charts.available(), charts.history_svg([], 0.8, 'x'))\n"
    )
    out = smoke.run(smoke.python, "-c", code)
    assert "pip install 'cpsign-airflow[mysql]'" in out
    assert "False None" in out
    assert "cpsign-airflow[chart]" in out  # the log line


def test_airflow_lists_the_provider_and_the_plugin(smoke: Smoke):
    from cpsign_airflow import __version__

    providers = json.loads(smoke.airflow("providers", "list", "--output", "json"))
    ours = [p for p in providers if p["package_name"] == "cpsign-airflow"]
    assert [p["version"] for p in ours] == [__version__]
    hooks = smoke.airflow("providers", "hooks", "--output", "json")
    assert "cpsign_airflow.hooks.pachyderm.PachydermHook" in hooks
    plugins = json.loads(smoke.airflow("plugins", "--output", "json"))
    assert "cpsign_models" in [p["name"] for p in plugins]


def test_connection_test_reaches_the_local_pachd(smoke: Smoke, local_pachd):
    def test(address: str, exit_code: int = 0) -> str:
        return smoke.airflow(
            *("connections", "test", "pachyderm_default"),
            exit_code=exit_code,
            AIRFLOW_CONN_PACHYDERM_DEFAULT=f"pachyderm://{address}",
            AIRFLOW__CORE__TEST_CONNECTION="Enabled",
        )

    address = local_pachd.address.split("://")[-1]
    assert "Connection success!" in test(address)
    local_pachd.stop()  # and the same test fails once nothing answers there
    assert "Connection failed!" in test(address, exit_code=1)


PARSE = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": {k: str(v) for k, v in bag.import_errors.items()}}))
"""


def test_the_bundled_dags_install_and_parse(smoke: Smoke):
    dags = smoke.home / "dags"
    installed = smoke.run(smoke.python, "-m", "cpsign_airflow.dag_files", "install", str(dags))
    assert len(installed.split()) == 3
    bundle = json.loads(smoke.run(smoke.python, "-m", "cpsign_airflow.dag_files", "bundle-config"))
    bundled = Path(bundle[-1]["kwargs"]["path"])
    assert bundled.is_relative_to(smoke.venv) and len(list(bundled.glob("*.py"))) == 3
    for folder in (dags, bundled):
        result = json.loads(smoke.run(smoke.python, "-c", PARSE, str(folder)).splitlines()[-1])
        assert result == {
            "dags": ["cpsign_retraining", "cpsign_setup", "cpsign_training"],
            "errors": {},
        }
