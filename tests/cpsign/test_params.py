"""Trigger-form Params and the configuration they assemble."""

from __future__ import annotations

import subprocess
import sys

from cpsign_airflow.cpsign import (
    configuration_from_params,
    training_params,
    validate_configuration,
)


def _values(params) -> dict:
    return {name: param.resolve() for name, param in params.items()}


#: What the validate task adds from the source connection: the form has no database.
DATABASE = {"dialect": "mysql", "host": "chembl-mysql", "user": "reader", "db_name": "chembl_24"}


def from_form(values) -> dict:
    config = configuration_from_params(values)
    assert "database" not in config["preprocessing"]
    config["preprocessing"]["database"] = dict(DATABASE)
    return config


def test_the_form_cannot_choose_the_source_database():
    """Where ingestion connects (and sends the password) is the administrator's connection."""
    params = training_params()
    assert not [name for name in params if name.startswith("db_")]
    values = _values(params)
    values["db_host"] = "attacker.example.org"  # an extra form value is not a field
    assert "database" not in configuration_from_params(values)["preprocessing"]


def test_params_have_titles_sections_and_resolve():
    params = training_params()
    assert params["workflow_name"].value == "LogD"
    for name, param in params.items():
        assert param.schema.get("title"), name
        assert param.schema.get("section"), name
        assert param.description, name
    ptype = params["ptype"].schema
    assert ptype["enum"] == [1, 2, 3, 5]
    assert ptype["values_display"][5] == "5: Venn-ABERS classification"
    assert params["impl"].schema["enum"] == ["liblinear", "libsvm"]
    assert params["database_query"].schema["format"] == "multiline"
    assert params["advanced"].schema["type"] == "object"
    assert "null" in params["query_limit"].schema["type"]
    assert "password" not in " ".join(params)
    _values(params)  # every default passes its own schema


def test_defaults_make_a_valid_configuration():
    config = validate_configuration(from_form(_values(training_params())))
    assert config["workflow_name"] == "LogD"
    assert config["train"]["model-name"] == "LogD_full_split"
    assert "advanced" not in config and "flags" not in config["train"]


def test_other_default_workflow_and_edited_values():
    values = _values(training_params(default_workflow="hERG"))
    assert values["workflow_name"] == "hERG" and values["model_name"] == "hERG_model"
    values.update(
        ptype=1,
        labels=["active", "inactive"],
        impl="libsvm",
        gamma=0.5,
        seed=7,
        query_limit=100,
        advanced={"simulate_failure": "train"},
        train_flags={"percentiles": 10},
    )
    config = validate_configuration(from_form(values))
    assert config["precompute"]["labels"] == ["active", "inactive"]
    assert config["train"]["seed"] == 7 and config["train"]["flags"] == {"percentiles": 10}
    assert config["advanced"] == {"simulate_failure": "train"}
    assert config["preprocessing"]["query"]["query_limit"] == 100


def test_params_from_the_dag_object_are_accepted():
    """configuration_from_params also takes Param objects (dag.params before a run)."""
    params = training_params()
    config = configuration_from_params(params)
    assert config == configuration_from_params(_values(params))


def test_params_attach_to_a_dag():
    from airflow.sdk import DAG

    dag = DAG("cpsign_training_form_test", schedule=None, params=training_params())
    assert set(dag.params) == set(training_params())


def test_import_is_light():
    code = (
        "import sys, cpsign_airflow.cpsign, cpsign_airflow.testing.standins;"
        "heavy = [m for m in ('jsonschema', 'pachyderm_sdk', 'grpc', 'jinja2') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_labels_are_distinct_and_no_section_is_named_like_airflows_own():
    from collections import Counter

    params = training_params()
    titles = Counter(p.schema["title"] for p in params.values())
    assert [t for t, n in titles.items() if n > 1] == []
    descriptions = Counter(p.description for p in params.values())
    assert [d for d, n in descriptions.items() if n > 1] == []
    sections = {p.schema["section"].lower() for p in params.values()}
    # Airflow's trigger form has its own "Advanced Options" section
    assert not any(s.startswith("advanced") for s in sections)


def test_form_defaults_come_from_the_configured_file(tmp_path, monkeypatch):
    import json

    import pytest

    from cpsign_airflow.cpsign.params import form_defaults
    from cpsign_airflow.demo_data import demo_configuration

    assert form_defaults() is None  # not configured: the LogD example
    path = tmp_path / "form.json"
    path.write_text(json.dumps(demo_configuration(tmp_path / "freesolv.db", "FreeSolv")))
    monkeypatch.setenv("AIRFLOW__CPSIGN__FORM_CONFIGURATION", str(path))
    values = _values(training_params(defaults=form_defaults()))
    assert (values["workflow_name"], values["smi_filename"]) == (
        "FreeSolv",
        "freesolv_training_data.tsv",
    )

    # the form's values, untouched, make exactly that configuration
    def meaning(config: dict) -> dict:  # null fields and the form's explicit defaults aside
        config = validate_configuration(config)
        config["train"].setdefault("reseed_on_retrain", False)
        config["preprocessing"]["query"] = {
            k: v for k, v in config["preprocessing"]["query"].items() if v is not None
        }
        return config

    # but for the source database, which the validate task takes from the connection
    saved = json.loads(path.read_text())
    form_config = configuration_from_params(values)
    form_config["preprocessing"]["database"] = saved["preprocessing"]["database"]
    assert meaning(form_config) == meaning(saved)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match=f"form_configuration.*{path}"):
        form_defaults()


def test_a_query_without_its_placeholder_is_left_to_validation_with_a_reason():
    import pytest

    from cpsign_airflow.cpsign.configuration import ConfigurationError

    params = training_params()
    assert "pattern" not in params["database_query"].schema  # the form accepts it...
    values = _values(params)
    values["database_query"] = "SELECT canonical_smiles, acd_logd FROM t"
    with pytest.raises(ConfigurationError, match="database_query"):  # ...validation names it
        validate_configuration(from_form(values))
