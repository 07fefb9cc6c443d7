"""The bundled pipeline chain: spec templates, their variables, rendering.

``specs/*.json`` are Jinja templates of Pachyderm 2.x CreatePipelineRequest
JSON, one per stage: ingestion -> precompute -> train -> aggregate -> publish,
each named ``<workflow>-<stage>``. Values go in with ``| tojson``, so a
variable can never break the JSON; the few raw interpolations (workflow name,
license file name) are checked here first.

Stage commands: every stage runs an entry point of this package, in one stage image
(``images/stages/Dockerfile``: a JRE, the CPSign runtime at ``cpsign_home`` and this
package), so the specs hold no shell:

* ingestion: ``cpsign-ingest`` (:mod:`cpsign_airflow.stages.ingest`) queries the source
  database with the password from ``$SOURCE_DB_PASSWORD`` and writes the training data,
  the held-out test split and the CPSign @-files; it reprocesses on every job, so a
  retraining reads new rows, while later stages skip what did not change.
* precompute, train, aggregate, validate: ``cpsign-stage <stage>``
  (:mod:`cpsign_airflow.stages.cpsign_stage`) runs CPSign on those files; with a
  ``crossvalidate`` grid, precompute also runs CPSign's grid search and train uses the
  best parameters; validate writes ``metrics.json``.
* publish: ``cpsign-publish`` (:mod:`cpsign_airflow.stages.publish`) uploads the model
  with the credentials mounted from ``model_store_secret``.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

from cpsign_airflow.cpsign.quality import VALIDITY_TOLERANCE

STAGES: tuple[str, ...] = ("ingestion", "precompute", "train", "aggregate", "validate", "publish")

#: The stage image built from images/stages/Dockerfile under the README's name (README, "The
#: stage image": build it, push it where the cluster pulls from, and set ``[cpsign]
#: stage_image`` to that name, which cpsign_setup then uses). No image is published.
STAGE_IMAGE = "cpsign-airflow-stages:latest"

_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*\Z")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?([EPTGMK]i?|[mkEPTGM])?\Z")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_ABS_PATH = re.compile(r"^/[A-Za-z0-9._/-]*\Z")
_REPO = re.compile(r"^[A-Za-z0-9_-]{1,63}\Z")
_WORKFLOW = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}\Z")


def spec_folder() -> Path:
    """The folder of packaged spec templates (a real directory: the package is not zipped)."""
    return Path(str(resources.files(__package__) / "specs"))


def pipeline_names(workflow_name: str) -> dict[str, str]:
    """``{stage: "<workflow>-<stage>"}`` in chain order."""
    return {stage: f"{workflow_name}-{stage}" for stage in STAGES}


def default_spec_vars(workflow_name: str, **overrides: Any) -> dict[str, Any]:
    """Every template variable, defaults overlaid with ``overrides``.

    An unknown override is an error (a typo would otherwise be ignored). The
    train defaults follow the original workflow: 12G requested, 24G limit,
    ``-Xmx20G``, five parallel workers.
    """
    variables: dict[str, Any] = {
        "workflow_name": workflow_name,
        "config_repo": f"{workflow_name}-config",
        # images
        "cpsign_image": STAGE_IMAGE,
        "cpsign_home": "/opt/cpsign",
        "ingestion_image": STAGE_IMAGE,
        "publish_image": STAGE_IMAGE,
        # secrets
        "source_db_secret": "chembl-mysql",
        "source_db_secret_key": "mysql-root-password",
        # where ingestion connects (cpsign_setup: from the source connection, see
        # source_spec_vars); left empty, the ingestion stage refuses to connect anywhere
        "source_db_dialect": "",
        "source_db_host": "",
        "source_db_port": "",
        "source_db_user": "",
        "source_db_name": "",
        "model_store_secret": "modelweb-api-info",
        "model_store_mount": "/mnt/api-info/",
        # publish holds back a model failing validity by more than this (as the DAG's
        # quality gate does with [cpsign] validity_tolerance; keep them equal)
        "validity_tolerance": VALIDITY_TOLERANCE,
        "cpsign_license_secret": "",
        "cpsign_license_file": "license",
        # resources
        "ingestion_cpu": 0.5,
        "ingestion_memory": "1G",
        "precompute_cpu": 1,
        "precompute_memory": "4G",
        "precompute_java_opts": "-Xmx3G",
        "train_parallelism": 5,
        "train_cpu": 2,
        "train_memory": "12G",
        "train_memory_limit": "24G",
        "train_java_opts": "-Xmx20G",
        "aggregate_cpu": 1,
        "aggregate_memory": "4G",
        "aggregate_java_opts": "-Xmx3G",
        "validate_cpu": 1,
        "validate_memory": "4G",
        "validate_java_opts": "-Xmx3G",
        "publish_cpu": 0.25,
        "publish_memory": "256M",
    }
    unknown = sorted(set(overrides) - set(variables))
    if unknown:
        raise ValueError(f"unknown spec variable(s) {unknown}; known: {sorted(variables)}")
    variables.update(overrides)
    if "config_repo" not in overrides:
        variables["config_repo"] = f"{variables['workflow_name']}-config"
    _check_vars(variables)
    return variables


def source_spec_vars(source: Any) -> dict[str, str]:
    """The ``source_db_*`` spec variables pinning ingestion to ``source`` (a SourceDatabase)."""
    from cpsign_airflow.cpsign.source_db import PIN_ENV

    env = source.pin_env()
    return {
        f"source_db_{'name' if key == 'db_name' else key}": env[var] for key, var in PIN_ENV.items()
    }


def _check_vars(v: dict[str, Any]) -> None:
    """Reject values that would give a broken or surprising spec, naming each one."""
    problems: list[str] = []

    def check(name: str, ok: bool, what: str) -> None:
        if not ok:
            problems.append(f"{name}={v[name]!r}: {what}")

    def matches(pattern: re.Pattern[str], value: Any) -> bool:
        return isinstance(value, str) and bool(pattern.match(value))

    check(
        "workflow_name",
        matches(_WORKFLOW, v["workflow_name"]),
        "letters, digits, '-', '_', at most 40",
    )
    check(
        "config_repo",
        matches(_REPO, v["config_repo"]),
        "letters, digits, '-', '_', at most 63",
    )
    for name in ("cpsign_image", "ingestion_image", "publish_image"):
        check(name, matches(_IMAGE, v[name]), "not an image reference")
    for name in ("source_db_secret", "model_store_secret"):
        check(name, matches(_K8S_NAME, v[name]), "not a Kubernetes secret name")
    check(
        "cpsign_license_secret",
        v["cpsign_license_secret"] == "" or matches(_K8S_NAME, v["cpsign_license_secret"]),
        "empty or a Kubernetes secret name",
    )
    check(
        "source_db_secret_key",
        matches(re.compile(r"^[-._a-zA-Z0-9]+\Z"), v["source_db_secret_key"]),
        "not a secret key",
    )
    for name in ("source_db_host", "source_db_user", "source_db_name"):
        check(name, isinstance(v[name], str) and "\n" not in v[name], "a string on one line")
    check(
        "source_db_dialect",
        v["source_db_dialect"] in ("", "mysql", "postgresql", "sqlite"),
        "empty, mysql, postgresql or sqlite",
    )
    check(
        "source_db_port",
        isinstance(v["source_db_port"], str)
        and (v["source_db_port"] == "" or v["source_db_port"].isdigit()),
        "empty or a port number (a string)",
    )
    tolerance = v["validity_tolerance"]
    check(
        "validity_tolerance",
        isinstance(tolerance, (int, float))
        and not isinstance(tolerance, bool)
        and 0 <= tolerance < 1,
        "a number from 0 to 1",
    )
    check("cpsign_license_file", matches(_FILE_NAME, v["cpsign_license_file"]), "a plain file name")
    for name in ("cpsign_home", "model_store_mount"):
        check(name, matches(_ABS_PATH, v[name]), "an absolute path")
    for stage in STAGES:
        cpu = v[f"{stage}_cpu"]
        check(
            f"{stage}_cpu",
            isinstance(cpu, (int, float)) and not isinstance(cpu, bool) and cpu > 0,
            "a positive number",
        )
        check(
            f"{stage}_memory",
            matches(_QUANTITY, v[f"{stage}_memory"]),
            "a Kubernetes quantity like '4G'",
        )
    check(
        "train_memory_limit", matches(_QUANTITY, v["train_memory_limit"]), "a Kubernetes quantity"
    )
    for name in (
        "precompute_java_opts",
        "train_java_opts",
        "aggregate_java_opts",
        "validate_java_opts",
    ):
        check(name, isinstance(v[name], str), "a string")
    parallelism = v["train_parallelism"]
    check(
        "train_parallelism",
        isinstance(parallelism, int) and not isinstance(parallelism, bool) and parallelism >= 1,
        "an integer >= 1",
    )
    if problems:
        raise ValueError("invalid spec variables:\n  - " + "\n  - ".join(problems))


def render_workflow_specs(workflow_name: str, **overrides: Any) -> list[tuple[str, dict[str, Any]]]:
    """Rendered, validated specs as (source, spec), in dependency order.

    Raises ValueError for bad variables and PachydermSpecError for a spec
    pachd would refuse (validated against pachyderm-sdk's CreatePipelineRequest).
    """
    from cpsign_airflow.specs.loading import load_specs
    from cpsign_airflow.specs.validate import order_by_dependencies, validate_spec

    variables = default_spec_vars(workflow_name, **overrides)
    specs = load_specs(spec_folder(), variables)
    for source, spec in specs:
        validate_spec(spec, source)
    return order_by_dependencies(specs, existing_repos=[variables["config_repo"]])
