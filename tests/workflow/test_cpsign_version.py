"""A configuration asking for another CPSign than the stages run fails before anything happens."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from cpsign_airflow.cpsign.configuration import load_example
from cpsign_airflow.workflow.training import validate


def test_version_mismatch_names_both_versions() -> None:
    config = load_example("herg-sectioned")
    config["cpsign"]["version"] = "2.1.0"
    with pytest.raises(AirflowFailException) as info:
        # a config_repo in the request: nothing is read from bookkeeping either
        validate.function(
            {"configuration": config, "config_repo": "hERG-config"}, "unused", "2.0.0"
        )
    message = str(info.value)
    assert "cpsign.version" in message and "2.1.0" in message and "2.0.0" in message


def test_matching_version_passes() -> None:
    config = load_example("herg-sectioned")
    out = validate.function(
        {"configuration": config, "config_repo": "hERG-config"}, "unused", "2.0.0"
    )
    assert out["workflow"] == "hERG" and out["configuration"]["cpsign"]["version"] == "2.0.0"


def test_every_reason_is_given_and_a_missing_configuration_is_one() -> None:
    config = load_example("herg-sectioned")
    config["cpsign"]["version"] = "2.1.0"
    request = {"configuration": config, "config_repo": "c", "workflow_name": "LogD"}
    with pytest.raises(AirflowFailException) as info:
        validate.function(request, "unused", "2.0.0")
    assert "cpsign.version" in str(info.value) and "workflow_name" in str(info.value)
    with pytest.raises(AirflowFailException, match="configuration: missing from the request"):
        validate.function({"config_repo": "c"}, "unused", "2.0.0")
