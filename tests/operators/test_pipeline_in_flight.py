"""PachydermCreatePipelineOperator and jobs in flight: pachd kills a pipeline's unfinished
jobs when the pipeline is updated, so the operator waits for them (or, with force, says
which it killed). Real DAG runs on the local pachd; the in-flight job blocks on a
:class:`~job_gate.JobGate` the test opens."""

from __future__ import annotations

import pytest
from dag_runner import run_dag, write_dag
from job_gate import JobGate

from cpsign_airflow.hooks.pachyderm import PachydermHook
from cpsign_airflow.operators.pachyderm import PachydermCreatePipelineOperator

KILLED_BY_UPDATE = "all jobs killed because pipeline was updated for user unknown_username"

DAG_SOURCE = """
import datetime
from airflow.sdk import DAG
from cpsign_airflow.operators.pachyderm import PachydermCreatePipelineOperator

with DAG("{dag_id}", schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False) as dag:
    PachydermCreatePipelineOperator(
        task_id="pipelines",
        specs={specs!r},
        in_flight={in_flight!r},
        in_flight_timeout={timeout!r},
        retries=2,
        retry_delay=datetime.timedelta(seconds=0),
    )
"""


def spec(name: str, repo: str, image: str = "busybox") -> dict:
    return {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": repo, "glob": "/*"}},
        "transform": {"image": image, "cmd": ["sh", "-c", "cp -r /pfs/*/. /pfs/out/"]},
    }


def run_setup(airflow_db, tag, specs, in_flight, timeout):
    name = f"inflight_{tag.replace('-', '_')}"
    source = DAG_SOURCE.format(
        dag_id=name, specs=specs, in_flight=in_flight, timeout=float(timeout)
    )
    return run_dag(write_dag(airflow_db / "dags", name, source), name)


@pytest.fixture
def hook(pachyderm_conn):
    hook = PachydermHook(pachyderm_conn, retry_backoff=0.01)
    yield hook
    hook.close()


@pytest.fixture
def running(hook, pachd, unique_name):
    """A pipeline whose job on a fresh input commit is running, held by a gate."""
    name, repo = unique_name, f"{unique_name}-in"
    with JobGate() as gate:
        pachd.configure_pipeline(name, handler=gate.handler)
        hook.ensure_repo(repo)
        created = hook.create_or_update_pipeline(spec(name, repo))
        hook.wait_commit_set(created["spec_commit"], timeout=60)  # the creation job
        job_id = hook.put_file(repo, "/a", data="1")
        gate.wait_started()
        assert gate.jobs == [job_id]
        version = hook.inspect_pipeline(name)["version"]
        yield {"name": name, "repo": repo, "job_id": job_id, "version": version, "gate": gate}


def test_wait_fails_at_the_limit_naming_the_job_and_updates_nothing(
    airflow_db, hook, running, unique_name, capfd
):
    name, job_id = running["name"], running["job_id"]
    changed = [spec(name, running["repo"], image="alpine")]

    result = run_setup(airflow_db, unique_name, changed, "wait", 0.3)

    assert result.task_states["pipelines"] == "failed"
    assert result.tries["pipelines"] == 1  # not retried: a retry would wait the limit again
    out = capfd.readouterr().out
    assert "PachydermJobsInFlight" in out
    assert f"{name}@{job_id} (JOB_RUNNING)" in out
    assert "Nothing was created or updated" in out
    assert hook.inspect_pipeline(name)["version"] == running["version"]
    assert hook.inspect_job(name, job_id)["state"] == "JOB_RUNNING"


def test_wait_updates_once_the_job_finished_during_the_wait(
    airflow_db, hook, running, unique_name, monkeypatch, capfd
):
    name, job_id, gate = running["name"], running["job_id"], running["gate"]
    waited = []
    wait_for_jobs = PachydermHook.wait_for_jobs

    def open_gate_then_wait(self, jobs, timeout=None):
        waited.append([(j["pipeline"], j["job_id"], j["state"]) for j in jobs])
        gate.open()  # the job finishes while the operator waits on it
        return wait_for_jobs(self, jobs, timeout)

    monkeypatch.setattr(PachydermHook, "wait_for_jobs", open_gate_then_wait)
    changed = [spec(name, running["repo"], image="alpine")]

    result = run_setup(airflow_db, unique_name, changed, "wait", 120)

    assert result.state == "success", result.task_states
    assert waited == [[(name, job_id, "JOB_RUNNING")]]
    assert f"unfinished job(s) before updating default/{name}: {name}@{job_id}" in (
        capfd.readouterr().out
    )
    [outcome] = result.xcom["pipelines"]
    assert outcome["action"] == "updated" and outcome["killed_jobs"] == []
    assert outcome["version"] == running["version"] + 1
    assert hook.inspect_job(name, job_id)["state"] == "JOB_SUCCESS"


def test_force_updates_now_and_returns_the_killed_jobs(airflow_db, hook, running, unique_name):
    name, job_id = running["name"], running["job_id"]
    changed = [spec(name, running["repo"], image="alpine")]

    result = run_setup(airflow_db, unique_name, changed, "force", 0)

    assert result.state == "success", result.task_states
    [outcome] = result.xcom["pipelines"]
    assert outcome["action"] == "updated" and outcome["killed_jobs"] == [job_id]
    assert outcome["version"] == running["version"] + 1
    assert {"pipeline", "project", "spec_hash", "source"} <= set(outcome)
    killed = hook.inspect_job(name, job_id)
    assert (killed["state"], killed["reason"]) == ("JOB_KILLED", KILLED_BY_UPDATE)


def test_unchanged_pipeline_with_a_running_job_is_left_alone(
    airflow_db, hook, running, unique_name
):
    same = [spec(running["name"], running["repo"])]

    result = run_setup(airflow_db, unique_name, same, "wait", 0)

    assert result.state == "success", result.task_states
    [outcome] = result.xcom["pipelines"]
    assert outcome["action"] == "unchanged" and "killed_jobs" not in outcome
    assert hook.inspect_job(running["name"], running["job_id"])["state"] == "JOB_RUNNING"


def test_jobs_started_by_the_setup_itself_are_neither_waited_on_nor_killed_jobs(
    airflow_db, hook, pachd, unique_name
):
    """Updating an upstream pipeline starts a job downstream, which the downstream update kills."""
    up, down, repo = f"{unique_name}-a", f"{unique_name}-b", f"{unique_name}-in"
    hook.ensure_repo(repo)
    pachd.configure_pipeline(up)
    with JobGate(block_empty=True) as gate:
        pachd.configure_pipeline(down, handler=gate.handler)
        first = run_setup(airflow_db, unique_name, [spec(up, repo), spec(down, up)], "wait", 0)
        assert first.state == "success", first.task_states
        created = {r["pipeline"]: r for r in first.xcom["pipelines"]}
        gate.open()
        hook.wait_for_jobs(hook.list_unfinished_jobs([up, down]), timeout=60)
        assert hook.list_unfinished_jobs([up, down]) == []
        assert gate.jobs == [created[down]["spec_commit"]]  # down's creation job
        gate.opened.clear()

        changed = [spec(up, repo, image="alpine"), spec(down, up, image="alpine")]
        second = run_setup(airflow_db, unique_name + "-2", changed, "wait", 0)

    assert second.state == "success", second.task_states
    updated = {r["pipeline"]: r for r in second.xcom["pipelines"]}
    assert {r["action"] for r in updated.values()} == {"updated"}
    assert updated[up]["killed_jobs"] == [] and updated[down]["killed_jobs"] == []
    # the job the upstream update started downstream was superseded by the downstream update
    own = hook.inspect_job(down, updated[up]["spec_commit"])
    assert (own["state"], own["reason"]) == ("JOB_KILLED", KILLED_BY_UPDATE)


def test_in_flight_arguments_are_checked():
    with pytest.raises(ValueError, match="in_flight must be one of wait, force"):
        PachydermCreatePipelineOperator(task_id="p", specs=[], in_flight="kill")
    templated = PachydermCreatePipelineOperator(
        task_id="q", specs=[], in_flight="{{ params.x }}", in_flight_timeout="-1"
    )
    with pytest.raises(ValueError, match="in_flight_timeout must be a number of seconds >= 0"):
        templated._in_flight_limit()
    assert PachydermCreatePipelineOperator(task_id="r", specs=[])._in_flight_limit() == 1800
