"""Optional parts name their extra; the bundled DAG files reach a deployment from the package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpsign_airflow import dag_files
from cpsign_airflow.extras import EXTRAS, MissingExtra, require

REPO = Path(__file__).resolve().parents[2]


def test_a_missing_optional_package_names_the_extra() -> None:
    with pytest.raises(MissingExtra) as err:
        require("cpsign_no_such_package.hooks", "mysql", "MySQL/MariaDB bookkeeping")
    assert err.value.extra == "mysql" and err.value.name == "cpsign_no_such_package"
    assert str(err.value) == (
        "MySQL/MariaDB bookkeeping needs the optional package 'cpsign_no_such_package', "
        "which is not installed: pip install 'cpsign-airflow[mysql]'"
    )
    assert isinstance(err.value, ImportError)


def test_a_present_package_is_returned() -> None:
    assert require("json", "chart") is json


def test_the_extras_named_in_errors_are_the_packages_extras() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = set(project["optional-dependencies"])
    assert set(EXTRAS) <= declared
    assert "mysqlclient" not in json.dumps(project["dependencies"])
    assert all(f"[{extra}]" in (REPO / "README.md").read_text() for extra in EXTRAS)


def test_the_repositorys_dags_are_the_packaged_ones() -> None:
    assert (REPO / "dags").resolve() == dag_files.folder()
    assert [p.name for p in dag_files.dag_files()] == [
        "cpsign_retraining.py",
        "cpsign_setup.py",
        "cpsign_training.py",
    ]


def test_install_copies_and_keeps_a_deployments_own_edit(tmp_path: Path) -> None:
    copies = dag_files.install(tmp_path / "dags")
    assert [p.read_bytes() for p in copies] == [p.read_bytes() for p in dag_files.dag_files()]
    assert dag_files.install(tmp_path / "dags") == copies  # unchanged: fine again
    copies[0].write_text("# edited\n")
    with pytest.raises(FileExistsError, match=copies[0].name):
        dag_files.install(tmp_path / "dags")
    dag_files.install(tmp_path / "dags", overwrite=True)
    assert copies[0].read_bytes() == dag_files.dag_files()[0].read_bytes()


def test_bundle_config_points_a_local_bundle_at_the_files(capsys) -> None:
    assert dag_files.main(["bundle-config"]) == 0
    bundles = json.loads(capsys.readouterr().out)
    assert [b["name"] for b in bundles] == ["dags-folder", "cpsign"]
    assert bundles[1]["classpath"] == "airflow.dag_processing.bundles.local.LocalDagBundle"
    assert bundles[1]["kwargs"] == {"path": str(dag_files.folder())}
