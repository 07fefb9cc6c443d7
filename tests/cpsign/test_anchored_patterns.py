"""Name patterns anchor at the true end: no name may end in a line break (issue #22).

Python's ``$`` also matches before a final ``\\n`` (and jsonschema uses ``re.search``), so
``"LogD\\n"`` passed ``^[A-Za-z0-9_-]+$``. JSON-Schema and Param patterns end with
``(?![\\s\\S])`` instead, which means the same in Python and ECMAScript (the browser may
evaluate them too); regexes in Python code end with ``\\Z``.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from typing import Any

import pytest

from cpsign_airflow.cpsign import load_example, training_params, validate_configuration
from cpsign_airflow.cpsign.configuration import ConfigurationError, configuration_schema

#: A value each schema pattern accepts, by the pattern's place in the schema.
SCHEMA_SAMPLES = {
    "workflow_name": "LogD",
    "smi_filename": "chembl_training_data.smi",
    "model-name": "LogD_full_split",
    "version": "2.0.0",
    "propertyNames": "time",
}


def _schema_patterns(node: Any, key: str = "") -> list[tuple[str, str]]:
    """``(place, pattern)`` of every anchored pattern in the schema."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "pattern" and isinstance(v, str) and v.startswith("^"):
                found.append((key, v))
            found.extend(_schema_patterns(v, k))
    elif isinstance(node, list):
        for v in node:
            found.extend(_schema_patterns(v, key))
    return found


def schema_patterns() -> list[tuple[str, str]]:
    """``(pattern, sample)`` for each anchored pattern of the configuration schema."""
    return [(p, SCHEMA_SAMPLES[place]) for place, p in _schema_patterns(configuration_schema())]


def test_every_anchored_schema_pattern_has_a_sample():
    places = {place for place, _ in _schema_patterns(configuration_schema())}
    assert places == set(SCHEMA_SAMPLES)


@pytest.mark.parametrize(("pattern", "sample"), schema_patterns())
def test_schema_patterns_refuse_a_trailing_newline_in_python(pattern, sample):
    assert re.search(pattern, sample)
    for bad in (sample + "\n", sample + "\r\n", sample + "\n\n", "\n" + sample):
        assert not re.search(pattern, bad), (pattern, bad)


def node_check(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Each pattern in Node.js with no flag, 'u' and 'v' (HTML pattern attributes use 'v')."""
    if not shutil.which("node"):
        pytest.skip("needs node to check the patterns as ECMAScript regexes")
    script = """
const pairs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = {};
for (const [pattern, sample] of pairs) {
  for (const flags of ['', 'u', 'v']) {
    let r;
    try { r = new RegExp(pattern, flags); } catch (e) { out[pattern + '/' + flags] = 'error: ' + e.message; continue; }
    out[pattern + '/' + flags] = [r.test(sample), r.test(sample + '\\n'), r.test(sample + '\\r\\n')];
  }
}
console.log(JSON.stringify(out));
"""
    result = subprocess.run(
        ["node", "-e", script], input=json.dumps(pairs), capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_schema_patterns_mean_the_same_in_ecmascript():
    results = node_check(schema_patterns())
    assert results and all(v == [True, False, False] for v in results.values()), results


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("workflow_name",), "LogD\n", "workflow_name"),
        (("train", "model-name"), "LogD_full_split\n", "train.model-name"),
        (
            ("preprocessing", "query", "smi_filename"),
            "chembl_training_data.smi\n",
            "preprocessing.query.smi_filename",
        ),
        (("cpsign", "version"), "2.0.0\n", "cpsign.version"),
    ],
)
def test_names_ending_in_a_newline_are_refused(path, value, where):
    config = copy.deepcopy(load_example("herg-sectioned"))
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigurationError) as info:
        validate_configuration(config)
    assert any(p.startswith(f"{where}: ") for p in info.value.problems), info.value.problems


def test_flat_workflow_name_ending_in_a_newline_is_refused():
    config = load_example("logd-flat")
    config["workflow_name"] = "LogD\n"
    with pytest.raises(ConfigurationError) as info:
        validate_configuration(config)
    assert any(p.startswith("workflow_name: ") for p in info.value.problems)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("workflow_name", "LogD\n"),
        ("model_name", "LogD_full_split\n"),
        ("smi_filename", "chembl_training_data.smi\n"),
        ("cpsign_version", "2.0.0\n"),
    ],
)
def test_form_fields_ending_in_a_newline_are_refused(field, value):
    from airflow.sdk.definitions.param import ParamValidationError

    param = training_params()[field]
    assert param.resolve(value=value.rstrip("\n"))
    with pytest.raises(ParamValidationError):
        param.resolve(value=value)


def test_form_patterns_mean_the_same_in_ecmascript():
    pairs = [
        (param.schema["pattern"], param.value)
        for param in training_params().values()
        if str(param.schema.get("pattern", "")).startswith("^")
    ]
    assert len(pairs) >= 3
    results = node_check(pairs)
    assert all(v == [True, False, False] for v in results.values()), results


def _code_regexes() -> list[tuple[str, re.Pattern[str], str]]:
    from cpsign_airflow.bookkeeping import records
    from cpsign_airflow.cpsign import pipelines
    from cpsign_airflow.kubernetes import manifests, secrets
    from cpsign_airflow.specs import validate
    from cpsign_airflow.testing.kube_apiserver import resources
    from cpsign_airflow.testing.pachd.pfs import records as pachd_records

    return [
        ("records._NAME_RE", records._NAME_RE, "LogD"),
        ("records._SHA256_RE", records._SHA256_RE, "a" * 64),
        ("records._LOCATION_RE", records._LOCATION_RE, "LogD-aggregate@abc:/model.jar"),
        ("validate._NAME_RE", validate._NAME_RE, "LogD-train"),
        ("manifests._LOCATION", manifests._LOCATION, "repo@master=abc:/model.jar"),
        ("manifests._COMMIT_ID", manifests._COMMIT_ID, "a" * 32),
        ("manifests._LABEL_VALUE", manifests._LABEL_VALUE, "v1.2"),
        ("secrets.SECRET_KEY", secrets.SECRET_KEY, "password"),
        ("secrets._SOURCE", secrets._SOURCE, "conn:db.password"),
        ("secrets._CONN_BODY", secrets._CONN_BODY, "db.password"),
        ("pipelines._K8S_NAME", pipelines._K8S_NAME, "logd-db"),
        ("pipelines._IMAGE", pipelines._IMAGE, "ghcr.io/x/y:1"),
        ("pipelines._QUANTITY", pipelines._QUANTITY, "4Gi"),
        ("pipelines._FILE_NAME", pipelines._FILE_NAME, "a.smi"),
        ("pipelines._ABS_PATH", pipelines._ABS_PATH, "/opt/cpsign"),
        ("pipelines._REPO", pipelines._REPO, "LogD-config"),
        ("pipelines._WORKFLOW", pipelines._WORKFLOW, "LogD"),
        ("resources.DNS1123_SUBDOMAIN", resources.DNS1123_SUBDOMAIN, "a.b"),
        ("resources.DNS1123_LABEL", resources.DNS1123_LABEL, "a-b"),
        ("resources.DNS1035_LABEL", resources.DNS1035_LABEL, "a-b"),
        ("resources.LABEL_VALUE", resources.LABEL_VALUE, "v1"),
        ("resources.LABEL_NAME", resources.LABEL_NAME, "app"),
        ("resources.SECRET_KEY", resources.SECRET_KEY, "key"),
        ("pachd_records.NAME_RE", pachd_records.NAME_RE, "LogD-train"),
    ]


@pytest.mark.parametrize(
    ("name", "regex", "sample"), _code_regexes(), ids=[name for name, _, _ in _code_regexes()]
)
def test_code_regexes_refuse_a_trailing_newline(name, regex, sample):
    assert regex.match(sample), name
    assert not regex.match(sample + "\n"), name


def test_spec_variables_and_bookkeeping_refuse_a_trailing_newline():
    from cpsign_airflow.bookkeeping.records import check_workflow
    from cpsign_airflow.cpsign.pipelines import default_spec_vars

    default_spec_vars("LogD")
    with pytest.raises(ValueError, match="workflow_name"):
        default_spec_vars("LogD\n")
    check_workflow("LogD")
    with pytest.raises(ValueError):
        check_workflow("LogD\n")
