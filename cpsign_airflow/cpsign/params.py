"""Trigger-form Params of the ``cpsign_training`` DAG, and the configuration they make.

Airflow 3 renders a DAG's ``params`` as the trigger form: each Param's JSON
Schema keywords become a typed field, ``title``/``description`` its label and
help, ``section`` groups fields, ``values_display`` labels enum values. The
form is flat, so each field maps to one path of the sectioned (v2)
configuration (:data:`FIELD_PATHS`); titles, descriptions and limits are taken
from the packaged configuration schema, so form and schema cannot drift apart.

The grid search (``crossvalidate``) is not in the form: the bundled chain does
not run it; put it in a configuration.json instead.

Nor is the source database: where ingestion connects is an administrator's choice
(the ``[cpsign] source_db_conn_id`` connection), so the validate task fills
``preprocessing.database`` from that connection, and a whole configuration given in
the run's conf must name the same place.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cpsign_airflow.cpsign.configuration import (
    PREDICTOR_TYPES,
    configuration_schema,
    convert_flat_configuration,
    is_flat_configuration,
    load_example,
)

if TYPE_CHECKING:
    from airflow.sdk import Param

#: Form field -> path in the v2 configuration.
FIELD_PATHS: dict[str, tuple[str, ...]] = {
    "workflow_name": ("workflow_name",),
    "database_query": ("preprocessing", "query", "database_query"),
    "query_limit": ("preprocessing", "query", "query_limit"),
    "smi_columns": ("preprocessing", "query", "smi_columns"),
    "smi_filename": ("preprocessing", "query", "smi_filename"),
    "endpoint": ("precompute", "endpoint"),
    "labels": ("precompute", "labels"),
    "descriptors": ("precompute", "descriptors"),
    "ptype": ("train", "ptype"),
    "nr_models": ("train", "nr-models"),
    "impl": ("train", "impl"),
    "nonconf_measure": ("train", "nonconf-measure"),
    "cost": ("train", "cost"),
    "gamma": ("train", "gamma"),
    "epsilon": ("train", "epsilon"),
    "model_name": ("train", "model-name"),
    "splits_per_job": ("train", "parallelism", "splits_per_job"),
    "seed": ("train", "seed"),
    "reseed_on_retrain": ("train", "reseed_on_retrain"),
    "train_flags": ("train", "flags"),
    "test_fraction": ("validation", "test_fraction"),
    "confidences": ("validation", "confidences"),
    "cpsign_version": ("cpsign", "version"),
    "cpsign_flags": ("cpsign", "flags"),
    "advanced": ("advanced",),
}

_SECTIONS = {
    "workflow_name": "Workflow",
    "database_query": "Query",
    "query_limit": "Query",
    "smi_columns": "Query",
    "smi_filename": "Query",
    "endpoint": "Precompute",
    "labels": "Precompute",
    "descriptors": "Precompute",
    "ptype": "Training",
    "nr_models": "Training",
    "impl": "Training",
    "nonconf_measure": "Training",
    "cost": "Training",
    "gamma": "Training",
    "epsilon": "Training",
    "model_name": "Training",
    "splits_per_job": "Training",
    "seed": "Training",
    "reseed_on_retrain": "Training",
    "test_fraction": "Validation",
    "confidences": "Validation",
    "cpsign_version": "CPSign",
    # not "Advanced": Airflow's trigger form has its own "Advanced Options" section
    "train_flags": "CPSign flags",
    "cpsign_flags": "CPSign flags",
    "advanced": "CPSign flags",
}
#: Fields the configuration may leave out: the form allows null for them.
_OPTIONAL = {
    "test_fraction",
    "confidences",
    "query_limit",
    "endpoint",
    "labels",
    "descriptors",
    "nonconf_measure",
    "cost",
    "gamma",
    "epsilon",
    "seed",
}
# Schema keywords copied into the Param so the form checks them as you type.
_COPIED_KEYWORDS = (
    "type",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "uniqueItems",
    "items",
    "examples",
)


def _schema_node(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node = schema
    for key in path:
        node = node["properties"][key]
        if "$ref" in node:
            ref = node["$ref"].rsplit("/", 1)[-1]
            node = {**schema["$defs"][ref], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _get(config: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = config
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def default_configuration(
    default_workflow: str = "LogD", base: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The form's starting point: ``base`` (default: the LogD example) in v2 layout.

    Without ``base`` the example is renamed to ``default_workflow``.
    """
    if base is not None:
        base = copy.deepcopy(dict(base))
        return convert_flat_configuration(base) if is_flat_configuration(base) else base
    config = convert_flat_configuration(load_example("logd-flat"))
    if default_workflow != config["workflow_name"]:
        config["workflow_name"] = default_workflow
        config["train"]["model-name"] = f"{default_workflow}_model"
    return config


def form_defaults() -> dict[str, Any] | None:
    """The configuration file named by ``[cpsign] form_configuration``, or None.

    Read at DAG parse time (a small local file, like the config option itself); a
    file that is missing or not a JSON object fails the DAG's import with an
    error naming the option and the file.
    """
    import json
    from pathlib import Path

    from cpsign_airflow.config import option

    path = option("form_configuration")
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(
            f"[cpsign] form_configuration: cannot read {path} as a JSON configuration: {err}"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"[cpsign] form_configuration: {path} does not hold a JSON object")
    return data


def training_params(
    default_workflow: str = "LogD", defaults: Mapping[str, Any] | None = None
) -> dict[str, Param]:
    """Params for the ``cpsign_training`` trigger form.

    Their defaults come from ``defaults`` (a configuration, e.g. the file named by
    ``[cpsign] form_configuration``), else from the LogD example.
    """
    from airflow.sdk import Param

    schema = configuration_schema()
    defaults = default_configuration(default_workflow, defaults)
    params: dict[str, Param] = {}
    for field, path in FIELD_PATHS.items():
        node = _schema_node(schema, path)
        kwargs: dict[str, Any] = {k: copy.deepcopy(node[k]) for k in _COPIED_KEYWORDS if k in node}
        kwargs["title"] = node.get("title", field)
        kwargs["section"] = _SECTIONS[field]
        default = _get(defaults, path)
        if default is None:
            default = node.get("default")
        if field in _OPTIONAL:
            types = kwargs.get("type", "string")
            types = list(types) if isinstance(types, list) else [types]
            if "null" not in types:
                types.append("null")
            kwargs["type"] = types
            if "enum" in kwargs and None not in kwargs["enum"]:
                kwargs["enum"] = [*kwargs["enum"], None]
                # the form's dropdown would otherwise offer the empty choice as "null"
                kwargs["values_display"] = {"null": "(not set)"}
        if field == "ptype":
            kwargs["values_display"] = {
                value: f"{value}: {name}" for value, name in PREDICTOR_TYPES.items()
            }
        if field == "database_query":
            kwargs["format"] = "multiline"
            # Airflow's multi-line widget does not check a pattern as you type, and the
            # API then refuses the run with a bare "Bad Request". Left to the validate
            # task, a query without its {} placeholder is rejected with the reason,
            # recorded and alerted.
            kwargs.pop("pattern", None)
        if field in ("train_flags", "cpsign_flags", "advanced"):
            kwargs["type"] = "object"
            kwargs.pop("items", None)
            if default is None:
                default = {}
        params[field] = Param(default, description=node.get("description"), **kwargs)
    return params


def _value(value: Any) -> Any:
    """A form value, also when handed the Param itself (``dag.params`` before resolution)."""
    return getattr(value, "value", value) if type(value).__name__ == "Param" else value


def configuration_from_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Assemble the v2 configuration from trigger-form values (null/missing fields left out).

    Empty flag objects and an empty ``advanced`` are left out too: they mean
    the same as no field, and the configuration stays as short as a hand-written one.
    """
    config: dict[str, Any] = {}
    for field, path in FIELD_PATHS.items():
        if field not in params:
            continue
        value = copy.deepcopy(_value(params[field]))
        if value is None or (field in ("train_flags", "cpsign_flags", "advanced") and value == {}):
            continue
        node = config
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return config
