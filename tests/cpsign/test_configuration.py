"""configuration.json: schema, flat conversion, all-errors reporting, hashing, reseeding."""

from __future__ import annotations

import copy
import json

import pytest

from cpsign_airflow.cpsign import (
    ConfigurationError,
    configuration_schema,
    configuration_sha256,
    convert_flat_configuration,
    effective_seed,
    is_flat_configuration,
    load_example,
    validate_configuration,
    with_new_seed,
)


def test_schema_is_valid_draft_2020_12_with_titles():
    import jsonschema

    schema = configuration_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema")
    train = schema["properties"]["train"]["properties"]
    assert train["ptype"]["enum"] == [1, 2, 3, 5]
    assert train["ptype"]["enumNames"][3] == "Venn-ABERS classification"
    for section in ("preprocessing", "precompute", "crossvalidate", "train", "cpsign", "advanced"):
        assert schema["properties"][section]["title"]


def test_sectioned_example_is_valid_as_is():
    config = load_example("herg-sectioned")
    assert not is_flat_configuration(config)
    assert validate_configuration(config) == config


def test_flat_example_is_converted_then_valid():
    flat = load_example("logd-flat")
    assert is_flat_configuration(flat)
    config = validate_configuration(flat)
    assert not is_flat_configuration(config)
    assert config["preprocessing"]["database"] == flat["database"]
    # the original wrote two columns as one string
    assert config["preprocessing"]["query"]["smi_columns"] == ["canonical_smiles", "acd_logd"]
    assert config["train"]["parallelism"] == {"splits_per_job": 1}  # from 'parallellism' (sic)
    assert config["train"]["nr-models"] == 5 and config["train"]["epsilon"] == 0.0001
    assert config["cpsign"] == {"version": "2.0.0"}
    assert flat == load_example("logd-flat"), "input must not be modified"


def test_flat_conversion_keeps_unknown_cpsign_keys_as_flags_and_reports_stray_keys():
    flat = load_example("logd-flat")
    flat["cpsign"]["percentiles"] = 10
    flat["stray"] = True
    converted = convert_flat_configuration(flat)
    assert converted["train"]["flags"] == {"percentiles": 10}
    with pytest.raises(ConfigurationError, match=r"stray: unexpected field"):
        validate_configuration(flat)


def test_every_problem_is_listed_with_its_path():
    config = load_example("herg-sectioned")
    config["train"]["ptype"] = 4
    config["train"]["nr-models"] = 0
    config["train"]["model-name"] = "../escape"
    config["train"]["flags"] = {"seed": 3}
    config["preprocessing"]["query"]["database_query"] = "SELECT 1"
    config["preprocessing"]["query"]["query_limit"] = -1
    config["preprocessing"]["database"]["password"] = "s3cret"
    config["crossvalidate"]["gridsearch"]["cost-range"] = [1, 2]
    config["cpsign"]["version"] = "latest"
    del config["workflow_name"]
    with pytest.raises(ConfigurationError) as err:
        validate_configuration(config)
    message = str(err.value)
    assert message.startswith("configuration.json is invalid:\n  - ")
    assert "  - train.ptype: 4 is not one of [1, 2, 3, 5]" in message
    for path in (
        "<configuration>: 'workflow_name' is a required property",
        "train.nr-models:",
        "train.model-name:",
        "train.flags.seed: is set by the workflow",
        "preprocessing.query.database_query: must contain the '{}' placeholder",
        "preprocessing.query.query_limit:",
        "preprocessing.database.password: must not be in configuration.json",
        "crossvalidate.gridsearch.cost-range:",
        "cpsign.version:",
    ):
        assert path in message, path
    assert len(err.value.problems) == 10
    assert "s3cret" not in message
    assert isinstance(err.value, ValueError)


def test_labels_must_match_the_predictor_type():
    config = load_example("herg-sectioned")
    del config["precompute"]["labels"]
    with pytest.raises(
        ConfigurationError, match=r"precompute.labels: required for ACP classification"
    ):
        validate_configuration(config)
    regression = validate_configuration(load_example("logd-flat"))
    regression["precompute"] = {"labels": ["a", "b"]}
    with pytest.raises(ConfigurationError, match=r"not allowed for regression"):
        validate_configuration(regression)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT 'it''s', \"dq\", `bt` FROM t WHERE x = '\\'; DROP TABLE t; --'{}",
        "SELECT '{{ workflow_name }}', '{% raw %}', '{0}', '%s', '$(rm -rf /)' FROM t{}",
        "SELECT 'smörgåsbord ☃ \u202e', '\\n\\t' FROM t\nWHERE a LIKE '%x_'{}",
    ],
)
def test_hostile_queries_round_trip_unchanged(query):
    from cpsign_airflow.cpsign import configuration_from_params, training_params
    from cpsign_airflow.cpsign.arguments import render_query

    config = load_example("herg-sectioned")
    config["preprocessing"]["query"]["database_query"] = query
    valid = validate_configuration(config)
    assert valid["preprocessing"]["query"]["database_query"] == query
    assert json.loads(json.dumps(valid)) == valid
    # through the trigger form and back
    values = {name: p.value for name, p in training_params().items()}
    values["database_query"] = query
    form_config = configuration_from_params(values)
    # the form has no source database: the validate task adds the connection's
    form_config["preprocessing"]["database"] = config["preprocessing"]["database"]
    from_form = validate_configuration(form_config)
    assert from_form["preprocessing"]["query"]["database_query"] == query
    # only the placeholder is replaced; nothing is templated or formatted
    assert render_query(valid) == query.replace("{}", " LIMIT 10000")


def test_sha256_is_stable_under_key_order_and_changes_with_content():
    config = load_example("herg-sectioned")
    reordered = json.loads(json.dumps(config, sort_keys=True))
    reordered = dict(reversed(list(reordered.items())))
    reordered["train"] = dict(reversed(list(reordered["train"].items())))
    assert list(reordered) != list(config)
    assert configuration_sha256(reordered) == configuration_sha256(config)
    assert len(configuration_sha256(config)) == 64
    changed = copy.deepcopy(config)
    changed["train"]["cost"] = 17
    assert configuration_sha256(changed) != configuration_sha256(config)


def test_with_new_seed_only_when_the_configuration_asks():
    asks = validate_configuration(load_example("herg-sectioned"))
    assert asks["train"]["reseed_on_retrain"] is True
    reseeded = with_new_seed(asks, 1234)
    assert reseeded["train"]["seed"] == 1234 and "seed" not in asks["train"]
    assert effective_seed(reseeded) == 1234
    assert configuration_sha256(reseeded) != configuration_sha256(asks)
    validate_configuration(reseeded)

    pinned = validate_configuration(load_example("logd-flat"))
    pinned["train"]["seed"] = 42
    assert with_new_seed(pinned, 1234) == pinned
    with pytest.raises(ValueError):
        with_new_seed(asks, -1)


def test_effective_seed_is_derived_from_the_configuration():
    config = validate_configuration(load_example("logd-flat"))
    seed = effective_seed(config)
    assert 0 <= seed < 2**31 and seed == effective_seed(copy.deepcopy(config))
    changed = copy.deepcopy(config)
    changed["train"]["cost"] = 2
    assert effective_seed(changed) != seed


def test_non_object_configuration_is_rejected():
    with pytest.raises(ConfigurationError, match="expected a JSON object"):
        validate_configuration(["not", "a", "dict"])  # type: ignore[arg-type]


def test_without_secrets_hides_every_password_like_key_at_any_depth():
    from cpsign_airflow.cpsign.configuration import without_secrets

    secret_keys = ("password", "passwd", "pwd", "api_key", "db_password", "secret_token")
    given = {
        "database": {key: f"value-of-{key}" for key in secret_keys},
        "options": [{"Secret_Token": "t"}, {"user": "labuser"}],
        "user": "labuser",
    }
    shown = without_secrets(given)
    assert shown["database"] == {key: "***" for key in secret_keys}
    assert shown["options"] == [{"Secret_Token": "***"}, {"user": "labuser"}]
    assert shown["user"] == "labuser"  # ordinary keys are left alone
    assert given["database"]["passwd"] == "value-of-passwd"  # a copy: the input is untouched
