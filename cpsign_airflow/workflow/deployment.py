"""The training group's deployment request: what the prediction service serves, if anything."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import task


def _deploy_wanted(context: Mapping[str, Any]) -> bool:
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    params = context.get("params") or {}
    return bool(
        conf.get("deploy_prediction_service", params.get("deploy_prediction_service", False))
    )


@task(multiple_outputs=True)
def deployment_request(
    models: list[dict[str, Any]],
    configuration: Mapping[str, Any],
    commit_set_id: str,
    verdicts: Mapping[str, Mapping[str, str]] | None = None,
    **context: Any,
) -> dict[str, Any]:
    """What the prediction service serves: the run's (first) model, its predictor type, its commit.

    Skipped, with the deployment after it, unless the run asked for a
    prediction service (``deploy_prediction_service``, off by default), or
    when the quality gate held the model back (the reason is in the skip message).
    """
    from airflow.sdk.exceptions import AirflowSkipException

    from cpsign_airflow.cpsign.quality import HELD_BACK, UNCHANGED

    if not _deploy_wanted(context):
        raise AirflowSkipException(
            "No prediction service requested (deploy_prediction_service is off)"
        )
    model = models[0]
    verdict = (verdicts or {}).get(model["model_name"]) or {}
    if verdict.get("quality") == HELD_BACK:
        raise AirflowSkipException(
            f"Model {model['model_name']} held back by the quality gate, not deployed: "
            f"{verdict.get('reason')}"
        )
    if verdict.get("quality") == UNCHANGED:
        raise AirflowSkipException(
            f"Model {model['model_name']} unchanged, not deployed again: {verdict.get('reason')}"
        )
    return {
        "model_name": model["model_name"],
        "location": model["location"],
        "predictor_type": int(configuration["train"]["ptype"]),
        "version": commit_set_id,
    }
