"""PachydermCommitSetSensor in poke mode: PokeReturnValue, and one hook per task, closed."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from airflow.sdk import PokeReturnValue
from job_gate import JobGate

from cpsign_airflow.hooks.pachyderm import PachydermHook
from cpsign_airflow.sensors.pachyderm import PachydermCommitSetSensor


@pytest.fixture
def hook(pachyderm_conn) -> PachydermHook:
    hook = PachydermHook(pachyderm_conn, retry_backoff=0.01, retry_backoff_max=0.05)
    yield hook
    hook.close()


def spec(name: str, repo: str) -> dict:
    return {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": repo, "glob": "/*"}},
        "transform": {"image": "busybox", "cmd": ["sh", "-c", "true"]},
    }


def test_poke_returns_the_job_summary_and_execute_closes_the_hook(hook, pachd, unique_name):
    hook.ensure_repo(f"{unique_name}-in")
    hook.create_or_update_pipeline(spec(unique_name, f"{unique_name}-in"))
    gate = JobGate()  # the job runs until the test opens the gate: no race with the poke
    pachd.configure_pipeline(unique_name, handler=gate.handler)
    commit = hook.put_file(f"{unique_name}-in", "/c.json", data=json.dumps({"seed": 1}))
    sensor = PachydermCommitSetSensor(
        task_id="wait", commit_set_id=commit, mode="poke", poke_interval=0.05, timeout=30
    )
    with gate:
        gate.wait_started()
        first = sensor.poke({})
        assert isinstance(first, PokeReturnValue) and first.is_done is False
        assert first.xcom_value is None
        task_hook = sensor.hook
    summary = sensor.execute({"ti": mock.MagicMock()})
    [job] = summary
    assert (job["pipeline"], job["state"]) == (unique_name, "JOB_SUCCESS")
    assert job["duration_seconds"] is not None
    assert sensor.hook is task_hook
    assert task_hook._client is None  # closed at the end of execute
    done = sensor.poke({})
    assert done.is_done is True and done.xcom_value == summary
