"""provider.yaml declares every ``[cpsign]`` option the code reads, as Airflow shows them.

Also: the notifier and every operator module are registered, the metadata validates
against Airflow's schema, the version is kept in one place, and ``py.typed`` is packaged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version as installed_version
from importlib.resources import files
from pathlib import Path

import pytest

import cpsign_airflow
from cpsign_airflow.get_provider_info import get_provider_info

REPO = Path(__file__).resolve().parents[2]


def declared_options() -> dict[str, dict]:
    return get_provider_info()["config"]["cpsign"]["options"]


def read_options(monkeypatch: pytest.MonkeyPatch) -> dict[str, str | None]:
    """Every ``[cpsign]`` option the code reads, with the fallback it passes to ``conf.get``."""
    from airflow.sdk import Variable, conf

    read: dict[str, str | None] = {}

    def get(section: str, key: str, *args, fallback=None, **kwargs):
        if section == "cpsign":
            read[key] = fallback
        return fallback

    monkeypatch.setattr(conf, "get", get)
    # alerting_config() asks the Variable first; here there is none
    monkeypatch.setattr(Variable, "get", staticmethod(lambda *a, **k: None))

    from cpsign_airflow.cpsign.params import form_defaults
    from cpsign_airflow.notifications import alerting_config
    from cpsign_airflow.workflow import settings

    settings.load()
    form_defaults()
    alerting_config()
    return read


def test_every_option_the_code_reads_is_declared_with_its_default(monkeypatch) -> None:
    read = read_options(monkeypatch)
    # settings.load() and the two other readers really were recorded
    assert {"pachyderm_conn_id", "efficiency_margin", "form_configuration", "alerting"} <= set(read)
    declared = declared_options()
    assert sorted(read) == sorted(declared), "provider.yaml [cpsign] and the code disagree"
    for key, fallback in read.items():
        # Airflow returns the declared default before the caller's fallback: they must agree
        assert declared[key]["default"] == fallback, key


def test_settings_docstring_table_names_every_declared_option() -> None:
    from cpsign_airflow.workflow import settings

    table = settings.__doc__
    for key in declared_options():
        assert key in table, key


def _table_defaults() -> dict[str, str]:
    """The default column of settings' docstring table, one entry per option it names."""
    from cpsign_airflow.workflow import settings

    found: dict[str, str] = {}
    for line in settings.__doc__.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("option", "---"):
            continue
        keys = [k.strip() for k in cells[0].split(",")]
        values = [v.strip() for v in cells[1].split(",")] if len(keys) > 1 else [cells[1]]
        found.update(zip(keys, values, strict=True))
    return found


def test_settings_docstring_table_shows_the_declared_defaults() -> None:
    """provider.yaml is the defaults' one source; the table that documents them agrees."""
    table = _table_defaults()
    assert sorted(table) == sorted(declared_options())
    for key, option in declared_options().items():
        default = option["default"]
        if default is None:
            assert table[key].startswith("("), key  # (none), (connection's)
        else:
            assert table[key] == default, key


def test_the_quality_gate_defaults_are_the_quality_rules_own() -> None:
    from cpsign_airflow.cpsign import quality

    options = declared_options()
    assert float(options["validity_tolerance"]["default"]) == quality.VALIDITY_TOLERANCE
    assert float(options["efficiency_margin"]["default"]) == quality.EFFICIENCY_MARGIN


def test_the_stage_image_default_is_the_rendered_specs_image() -> None:
    from cpsign_airflow.cpsign.pipelines import STAGE_IMAGE

    assert declared_options()["stage_image"]["default"] == STAGE_IMAGE


def test_declared_options_follow_airflows_schema() -> None:
    import jsonschema

    schema_path = Path(__import__("airflow").__file__).parent / "provider_info.schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.validate(get_provider_info(), schema)
    for key, option in declared_options().items():
        # provider_info.schema.json's option definition says so, but does not enforce it
        assert set(option) == {"description", "version_added", "type", "example", "default"}, key
        assert option["description"].strip(), key
        assert option["default"] is None or isinstance(option["default"], str), key


def test_airflow_config_list_shows_the_options_with_descriptions(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    airflow = Path(sys.executable).parent / "airflow"
    out = subprocess.run(
        [str(airflow), "config", "list", "--section", "cpsign", "--include-descriptions"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith("[cpsign]"), text[:200]
    comments = " ".join(
        line.removeprefix("#").strip() for line in text.splitlines() if line.startswith("#")
    )
    for key, option in declared_options().items():
        assert f"# {key} = " in text, key
        assert " ".join(option["description"].split()) in comments, key

    # and the values Airflow resolves are the declared defaults
    out = subprocess.run(
        [str(airflow), "config", "get-value", "cpsign", "retraining_schedule"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "@weekly"


def test_notifier_and_every_operator_module_are_registered() -> None:
    from airflow.sdk import BaseNotifier, BaseOperatorLink

    info = get_provider_info()
    operators = {m for entry in info["operators"] for m in entry["python-modules"]}
    assert {
        "cpsign_airflow.operators.pachyderm",
        "cpsign_airflow.bookkeeping.operators",
        "cpsign_airflow.kubernetes.operators",
    } == operators
    # every module of operators (the Pachyderm layer's and the application's own)
    on_disk = {
        ".".join(p.relative_to(REPO).with_suffix("").parts)
        for p in (REPO / "cpsign_airflow").rglob("operators*.py")
        if not p.name.startswith("_")
    } | {
        f"cpsign_airflow.operators.{p.stem}"
        for p in (REPO / "cpsign_airflow" / "operators").glob("*.py")
        if not p.name.startswith("_")
    }
    assert on_disk == operators

    def load(path: str):
        module, _, name = path.rpartition(".")
        return getattr(__import__(module, fromlist=[name]), name)

    assert info["notifications"] == ["cpsign_airflow.notifications.CPSignRunNotifier"]
    assert all(issubclass(load(n), BaseNotifier) for n in info["notifications"])
    assert all(issubclass(load(n), BaseOperatorLink) for n in info["extra-links"])


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_the_version_is_kept_in_one_place() -> None:
    project = pyproject()
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "cpsign_airflow.__version__"
    }
    provider_yaml = files("cpsign_airflow").joinpath("provider.yaml").read_text()
    assert "\nversions:" not in provider_yaml
    assert get_provider_info()["versions"] == [cpsign_airflow.__version__]
    # the installed metadata (pip install -e . reads the attr) agrees
    assert installed_version("cpsign-airflow") == cpsign_airflow.__version__


def test_py_typed_is_packaged() -> None:
    assert (REPO / "cpsign_airflow" / "py.typed").is_file()
    assert "py.typed" in pyproject()["tool"]["setuptools"]["package-data"]["cpsign_airflow"]
