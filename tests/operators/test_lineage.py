"""OpenLineage: the operators report the repos they read and wrote as Pachyderm datasets."""

from __future__ import annotations

from pipeline_specs import copy_spec

from cpsign_airflow.operators.pachyderm import (
    PachydermCreatePipelineOperator,
    PachydermPutFileOperator,
)


class _TI:
    dag_id, run_id, task_id, map_index, try_number = "lineage", "manual__1", "t", -1, 1

    def xcom_push(self, key, value):
        pass


def _names(datasets) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in datasets]


def test_put_file_and_pipelines_report_their_repos(pachd, pachyderm_conn, unique_name):
    namespace = "pachyderm://" + pachd.address.split("://", 1)[1]
    source, pipeline = f"{unique_name}-in", f"{unique_name}-copy"
    from cpsign_airflow.hooks.pachyderm import PachydermHook

    PachydermHook(pachyderm_conn).ensure_repo(source)
    create = PachydermCreatePipelineOperator(task_id="pipelines", specs=copy_spec(pipeline, source))
    create.execute({"ti": _TI()})
    lineage = create.get_openlineage_facets_on_complete(None)
    assert _names(lineage.inputs) == [(namespace, f"default/{source}")]
    assert _names(lineage.outputs) == [(namespace, f"default/{pipeline}")]

    put = PachydermPutFileOperator(task_id="put", repo=source, path="/a.txt", content="a")
    put.execute({"ti": _TI()})
    lineage = put.get_openlineage_facets_on_complete(None)
    assert (_names(lineage.inputs), _names(lineage.outputs)) == (
        [],
        [(namespace, f"default/{source}")],
    )

    # the sensor: the set's input repo was read, its pipeline's output repo written
    from cpsign_airflow.hooks.pachyderm import PachydermHook as Hook
    from cpsign_airflow.sensors.pachyderm import PachydermCommitSetSensor

    commit = put.execute({"ti": _TI()})
    Hook(pachyderm_conn).wait_commit_set(commit)
    sensor = PachydermCommitSetSensor(task_id="wait", commit_set_id=commit, deferrable=False)
    assert sensor.poke({"ti": _TI()}).is_done
    lineage = sensor.get_openlineage_facets_on_complete(None)
    assert _names(lineage.inputs) == [(namespace, f"default/{source}")]
    assert _names(lineage.outputs) == [(namespace, f"default/{pipeline}")]


def test_hook_reads_and_writes_reach_airflows_hook_lineage(
    pachd, pachyderm_conn, unique_name, monkeypatch
):
    """A @task that reads a model through the hook (find_models, in record_outcome) reports the repo too."""
    from airflow.sdk.lineage import HookLineageCollector

    from cpsign_airflow.hooks.pachyderm import PachydermHook

    collector = HookLineageCollector()
    monkeypatch.setattr(
        "airflow.providers.common.compat.lineage.hook.get_hook_lineage_collector",
        lambda: collector,
    )
    hook = PachydermHook(pachyderm_conn)
    hook.ensure_repo(unique_name)
    commit = hook.put_file(unique_name, "/model.jar", data=b"jar")
    assert hook.read_file(unique_name, commit, "/model.jar") == b"jar"
    uri = f"pachyderm://{pachd.address.split('://', 1)[1]}/default/{unique_name}"
    lineage = collector.collected_assets
    assert [i.asset.uri for i in lineage.inputs] == [uri]
    assert [o.asset.uri for o in lineage.outputs] == [uri]
