"""OpenLineage end to end: with the OpenLineage provider installed, a DAG run on the
local pachd emits events whose datasets are the Pachyderm repos (issue #25).

The DAG puts a configuration with the put-file operator, waits for the commit set of two
pipelines (configuration -> output -> model) with the commit-set sensor, and reads the
model in a ``@task`` through the hook. The first two report through their
``get_openlineage_facets_on_complete``; the ``@task`` only through Airflow's hook-lineage
collector, whose ``pachyderm://`` Assets reach OpenLineage through the provider's
``asset-uris`` converter. The run is a subprocess, so that OpenLineage's listener and
its (cached) configuration see the file transport set here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dag_runner import write_dag
from pipeline_specs import copy_spec

from cpsign_airflow.hooks.pachyderm import PachydermHook

TESTS = Path(__file__).resolve().parents[1]

RUN = """
import json, sys
from dag_runner import run_dag
result = run_dag(sys.argv[1], sys.argv[2])
print("RESULT " + json.dumps({"state": result.state, "tasks": result.task_states}))
"""


def _datasets(event: dict, side: str) -> list[tuple[str, str]]:
    return sorted((d["namespace"], d["name"]) for d in event.get(side, []))


def test_a_dag_run_emits_the_config_output_and_model_datasets(
    airflow_db, pachd, pachyderm_conn, unique_name, tmp_path
):
    config, output, model = (f"{unique_name}-{part}" for part in ("config", "output", "model"))
    hook = PachydermHook(pachyderm_conn)
    hook.ensure_repo(config)
    hook.create_or_update_pipeline(copy_spec(output, config))
    hook.create_or_update_pipeline(copy_spec(model, output))

    dag_id = f"ol_{unique_name.replace('-', '_')}"
    source = f"""
    import datetime
    import json
    from airflow.sdk import DAG, task
    from cpsign_airflow.hooks.pachyderm import PachydermHook
    from cpsign_airflow.operators.pachyderm import PachydermPutFileOperator
    from cpsign_airflow.sensors.pachyderm import PachydermCommitSetSensor

    with DAG("{dag_id}", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
        put = PachydermPutFileOperator(
            task_id="put_config", repo="{config}", path="/configuration.json",
            content={{"endpoint": "logd"}},
        )
        wait = PachydermCommitSetSensor(
            task_id="wait", commit_set_id=put.output, deferrable=False, mode="poke",
            poke_interval=0.5, timeout=300,
        )

        @task
        def read_model():
            data = PachydermHook().read_file(
                "{model}", "master", "/configuration.json", ref_type="branch"
            )
            return json.loads(data)["endpoint"]

        put >> wait >> read_model()
    """
    path = write_dag(airflow_db / "dags", dag_id, source)
    events_file = tmp_path / "openlineage.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        "AIRFLOW__OPENLINEAGE__DISABLED": "False",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "cpsign-test",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
    }
    run = subprocess.run(
        [sys.executable, "-c", RUN, str(path), dag_id],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    log = run.stdout[-4000:] + run.stderr[-4000:]
    assert run.returncode == 0, log
    result = json.loads(run.stdout.split("RESULT ", 1)[1].splitlines()[0])
    assert result["state"] == "success", (result, log)

    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    complete = {
        e["job"]["name"].rsplit(".", 1)[1]: e
        for e in events
        if e.get("eventType") == "COMPLETE" and e["job"]["name"].startswith(f"{dag_id}.")
    }
    assert set(complete) >= {"put_config", "wait", "read_model"}, (sorted(complete), log)
    namespace = "pachyderm://" + pachd.address.split("://", 1)[1]
    config_ds, output_ds, model_ds = (
        (namespace, f"default/{repo}") for repo in (config, output, model)
    )
    # the put-file operator wrote the configuration repo
    assert _datasets(complete["put_config"], "outputs") == [config_ds]
    # the commit set read the configuration and wrote both pipelines' repos
    assert _datasets(complete["wait"], "inputs") == [config_ds]
    assert _datasets(complete["wait"], "outputs") == sorted([output_ds, model_ds])
    # a @task reading the model through the hook: hook lineage, through the converter.
    # (Its outputs are not checked: dag.test() runs every task in one process, whose hook-
    # lineage collector still holds put_config's write; a deployed task has its own.)
    assert _datasets(complete["read_model"], "inputs") == [model_ds]


def test_pachyderm_assets_translate_to_openlineage_datasets():
    """The asset-uris entry: Airflow normalizes pachyderm:// URIs with the provider's
    handler and OpenLineage translates them with its converter."""
    import pytest
    from airflow.providers.common.compat.openlineage.utils.utils import translate_airflow_asset
    from airflow.sdk import Asset

    from cpsign_airflow.lineage.pachyderm import create_asset

    with pytest.warns(UserWarning, match="password"):
        asset = Asset("pachyderm://:a-token-3f1e@pachd.lab/cpsign/LogD-models/")
    assert asset.uri == "pachyderm://pachd.lab:30650/cpsign/LogD-models"  # no token
    dataset = translate_airflow_asset(asset, None)
    assert (dataset.namespace, dataset.name) == (
        "pachyderm://pachd.lab:30650",
        "cpsign/LogD-models",
    )
    made = create_asset(host="pachd.lab", project="cpsign", repo="LogD-config", path="/a.json")
    assert made.uri == "pachyderm://pachd.lab:30650/cpsign/LogD-config/a.json"
    dataset = translate_airflow_asset(made, None)
    assert dataset.name == "cpsign/LogD-config/a.json"
    for bad in ("pachyderm:///default/repo", "pachyderm://pachd.lab:30650/default"):
        with pytest.raises(ValueError, match="pachyderm://"):
            Asset(bad)
