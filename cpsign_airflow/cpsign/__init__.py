"""The CPSign domain: pipeline spec templates, configuration schema, trigger form, quality rules.

Everything here is cheap to import (DAG files import it at parse time, the stage image
without Airflow): jsonschema, jinja2, pachyderm-sdk and airflow.sdk are imported inside
the functions that need them. The pipeline stages and the Airflow workflow both build on
it; it imports neither (tests/architecture/test_layers.py). The stand-ins the DAG tests
run are in the test kit (:mod:`cpsign_airflow.testing.standins`).
"""

from cpsign_airflow.cpsign.configuration import (
    PREDICTOR_TYPES,
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
from cpsign_airflow.cpsign.params import configuration_from_params, training_params
from cpsign_airflow.cpsign.pipelines import (
    STAGES,
    default_spec_vars,
    pipeline_names,
    render_workflow_specs,
    spec_folder,
)

__all__ = [
    "PREDICTOR_TYPES",
    "STAGES",
    "ConfigurationError",
    "configuration_from_params",
    "configuration_schema",
    "configuration_sha256",
    "convert_flat_configuration",
    "default_spec_vars",
    "effective_seed",
    "is_flat_configuration",
    "load_example",
    "pipeline_names",
    "render_workflow_specs",
    "spec_folder",
    "training_params",
    "validate_configuration",
    "with_new_seed",
]
