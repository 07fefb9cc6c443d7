"""Spec templates render to valid Pachyderm 2.x specs in dependency order."""

from __future__ import annotations

import json

import pytest

from cpsign_airflow.cpsign import STAGES, default_spec_vars, render_workflow_specs, spec_folder
from cpsign_airflow.exceptions import PachydermSpecError
from cpsign_airflow.specs.loading import load_specs
from cpsign_airflow.specs.validate import input_repos, order_by_dependencies, validate_spec


def test_spec_folder_holds_one_template_per_stage():
    files = sorted(p.name for p in spec_folder().glob("*.json"))
    assert len(files) == len(STAGES)
    assert [f.split("-", 1)[1].removesuffix(".json") for f in files] == list(STAGES)


@pytest.mark.parametrize("workflow", ["LogD", "hERG_v2"])
def test_render_gives_valid_specs_in_dependency_order(workflow):
    rendered = render_workflow_specs(workflow)
    names = [spec["pipeline"]["name"] for _, spec in rendered]
    assert names == [f"{workflow}-{stage}" for stage in STAGES]
    for source, spec in rendered:
        validate_spec(spec, source)
    # the order check itself, as an operator would run it
    order_by_dependencies(rendered, existing_repos=[f"{workflow}-config"])
    by_stage = {spec["pipeline"]["name"].rsplit("-", 1)[1]: spec for _, spec in rendered}
    assert input_repos(by_stage["ingestion"]) == [f"{workflow}-config"]
    assert by_stage["ingestion"]["input"]["pfs"]["glob"] == "/"
    cross = by_stage["train"]["input"]["cross"]
    assert [(c["pfs"]["repo"], c["pfs"]["glob"]) for c in cross] == [
        (f"{workflow}-ingestion", "/training/*"),
        (f"{workflow}-precompute", "/"),
    ]
    assert by_stage["train"]["parallelism_spec"] == {"constant": 5}
    assert by_stage["train"]["resource_requests"]["memory"] == "12G"
    assert by_stage["train"]["transform"]["env"]["JAVA_OPTS"] == "-Xmx20G"
    secrets = by_stage["ingestion"]["transform"]["secrets"]
    assert secrets == [
        {"name": "chembl-mysql", "key": "mysql-root-password", "env_var": "SOURCE_DB_PASSWORD"}
    ]
    assert by_stage["publish"]["transform"]["secrets"][0]["name"] == "modelweb-api-info"
    assert by_stage["ingestion"]["reprocess_spec"] == "every_job"  # retraining reads new rows
    # every stage runs an entry point of this package
    commands = {stage: spec["transform"]["cmd"][:2] for stage, spec in by_stage.items()}
    assert (
        commands["ingestion"][0] == "cpsign-ingest" and commands["publish"][0] == "cpsign-publish"
    )
    for stage in ("precompute", "train", "aggregate", "validate"):
        assert commands[stage] == ["cpsign-stage", stage]


def test_order_check_fails_without_the_config_repo():
    rendered = render_workflow_specs("LogD")
    with pytest.raises(PachydermSpecError, match="LogD-config"):
        order_by_dependencies(list(reversed(rendered)), existing_repos=[])


def test_no_license_by_default_and_license_restored_when_asked():
    plain = {spec["pipeline"]["name"]: spec for _, spec in render_workflow_specs("LogD")}
    assert "--license" not in json.dumps(plain)
    assert "secrets" not in plain["LogD-train"]["transform"]
    licensed = {
        spec["pipeline"]["name"]: spec
        for _, spec in render_workflow_specs("LogD", cpsign_license_secret="cpsign-license")
    }
    for stage in ("precompute", "train", "aggregate"):
        transform = licensed[f"LogD-{stage}"]["transform"]
        assert transform["secrets"] == [{"name": "cpsign-license", "mount_path": "/mnt/lic/"}]
    assert "--license" not in json.dumps(licensed["LogD-ingestion"])


def test_overrides_reach_the_specs():
    rendered = render_workflow_specs(
        "LogD",
        config_repo="shared-config",
        cpsign_image="registry.example.org/cpsign:2.1.0",
        train_parallelism=12,
        train_memory="30Gi",
        train_cpu=4.5,
    )
    specs = {spec["pipeline"]["name"]: spec for _, spec in rendered}
    assert specs["LogD-ingestion"]["input"]["pfs"]["repo"] == "shared-config"
    assert specs["LogD-train"]["transform"]["image"] == "registry.example.org/cpsign:2.1.0"
    assert specs["LogD-train"]["parallelism_spec"]["constant"] == 12
    assert specs["LogD-train"]["resource_requests"] == {"cpu": 4.5, "memory": "30Gi"}


def test_default_vars_are_complete_for_the_templates():
    variables = default_spec_vars("LogD")
    assert variables["config_repo"] == "LogD-config"
    assert variables["cpsign_image"] == "cpsign-airflow-stages:latest"
    assert variables["cpsign_license_secret"] == ""
    # StrictUndefined: every name used by a template must be defined
    assert len(load_specs(spec_folder(), variables)) == len(STAGES)


def test_unknown_and_bad_variables_are_named():
    with pytest.raises(ValueError, match="train_paralelism"):
        default_spec_vars("LogD", train_paralelism=3)
    with pytest.raises(ValueError) as err:
        default_spec_vars(
            "LogD", cpsign_image='x" y', train_parallelism=0, source_db_secret="No_Such"
        )
    text = str(err.value)
    assert "cpsign_image" in text and "train_parallelism" in text and "source_db_secret" in text
    with pytest.raises(ValueError, match="workflow_name"):
        default_spec_vars("bad name")


def test_hostile_variable_values_cannot_break_json():
    """Values go in through tojson: quotes in java opts stay data."""
    rendered = render_workflow_specs("LogD", train_java_opts='-Xmx20G -Dx="a b" -Dy=\\n')
    spec = {s["pipeline"]["name"]: s for _, s in rendered}["LogD-train"]
    assert spec["transform"]["env"]["JAVA_OPTS"] == '-Xmx20G -Dx="a b" -Dy=\\n'
