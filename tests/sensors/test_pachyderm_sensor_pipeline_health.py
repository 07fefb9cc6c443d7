"""Fail-fast waits in poke and reschedule mode: PachydermCommitSetSensor also checks
the states of the commit set's unfinished pipelines, against a pachd over real gRPC.

pachd puts a pipeline whose workers cannot start into PIPELINE_CRASHING (for an image
that cannot be pulled, with kubelet's message as the reason: src/server/pps/server/
poller.go) and leaves its job waiting. The local pachd is told which image it cannot
pull (``LocalPachd.unpullable_images``; those tests are skipped against a real pachd).
A missing command is not that: it fails the datum, then the job.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from cpsign_airflow.exceptions import PachydermPipelineUnhealthy
from cpsign_airflow.hooks.pachyderm import PachydermHook
from cpsign_airflow.sensors import pachyderm as sensor_module
from cpsign_airflow.sensors.pachyderm import UNHEALTHY_SINCE_KEY, PachydermCommitSetSensor

MISSING = "cpsign-no-such-binary"
UNPULLABLE = "lab/missing:1"
REPO_ROOT = Path(__file__).resolve().parents[2]


def spec(name: str, repo: str, cmd: list[str] | None = None, image: str = "busybox") -> dict:
    return {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": repo, "glob": "/*"}},
        "transform": {
            "image": image,
            "cmd": cmd or ["sh", "-c", "cp -r /pfs/*/. /pfs/out/ 2>/dev/null; true"],
        },
    }


@pytest.fixture
def hook(pachyderm_conn) -> PachydermHook:
    hook = PachydermHook(pachyderm_conn, retry_backoff=0.01, retry_backoff_max=0.05)
    yield hook
    hook.close()


@pytest.fixture
def broken(hook, pachd, unique_name) -> dict[str, str]:
    """in -> a (CRASHING: its image cannot be pulled) -> b; one commit set."""
    pachd.unpullable_images.add(UNPULLABLE)  # a local pachd control: skipped on a real one
    repo, first, second = f"{unique_name}-in", f"{unique_name}-a", f"{unique_name}-b"
    hook.ensure_repo(repo)
    hook.create_or_update_pipeline(spec(first, repo, image=UNPULLABLE))
    hook.create_or_update_pipeline(spec(second, first))
    commit = hook.put_file(repo, "/c.json", data=json.dumps({"seed": 1}))
    return {"repo": repo, "first": first, "second": second, "commit": commit}


class FakeStateStore:
    """``context["task_state_store"]`` (Airflow >= 3.3): JSON values, survives pokes."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.ops: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.ops.append("get")
        return copy.deepcopy(self.data.get(key, default))

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        self.ops.append("set")
        self.data[key] = json.loads(json.dumps(value))

    def delete(self, key: str) -> None:
        self.ops.append("delete")
        self.data.pop(key, None)


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: float = 1_000_000.0) -> None:
        self.now = start
        monkeypatch.setattr(sensor_module, "_now", lambda: self.now)


# ---------------------------------------------------------------- poke mode


def test_poke_mode_fails_naming_the_crashing_pipeline(hook, pachd, broken):
    sensor = PachydermCommitSetSensor(
        task_id="wait",
        commit_set_id=broken["commit"],
        mode="poke",
        poke_interval=0.05,
        timeout=60,
        pipeline_grace_period=0.5,
        pipeline_check_interval=0.1,
    )
    with pytest.raises(PachydermPipelineUnhealthy) as failure:
        sensor.execute({"ti": mock.MagicMock()})
    assert isinstance(failure.value, AirflowFailException)  # not retried
    message = str(failure.value)
    first = broken["first"]
    assert f"Commit set {broken['commit']} cannot finish" in message
    assert f"pipeline {first!r} has been PIPELINE_CRASHING" in message
    assert f'Back-off pulling image "{UNPULLABLE}"' in message  # pachd's reason
    assert "(grace 0.5s)" in message
    assert "no log lines" in message
    [named] = failure.value.pipelines
    assert named["pipeline"] == first and named["unhealthy_seconds"] >= 0.5
    assert "GetLogs" in pachd.call_counts()
    # the wait failed; the jobs were left alone
    assert pachd.call_counts()["StopJob"] == 0
    jobs = {j["pipeline"]: j["state"] for j in hook.list_jobs(broken["commit"])}
    assert jobs[first] == "JOB_STARTING"


def test_a_missing_command_fails_the_job_with_the_exec_error(hook, unique_name):
    """Not a crash: pachd's worker fails the datum with its exec error (src/server/worker/
    driver/driver.go RunUserCode), then the job; the sensor reports the failed job."""
    from cpsign_airflow.exceptions import PachydermJobFailed

    repo = f"{unique_name}-in"
    hook.ensure_repo(repo)
    hook.create_or_update_pipeline(spec(unique_name, repo, [MISSING]))
    commit = hook.put_file(repo, "/c.json", data="{}")
    sensor = PachydermCommitSetSensor(
        task_id="wait",
        commit_set_id=commit,
        mode="poke",
        poke_interval=0.05,
        timeout=60,
        pipeline_grace_period=0.5,
        pipeline_check_interval=0.1,
    )
    with pytest.raises(PachydermJobFailed) as failure:
        sensor.execute({"ti": mock.MagicMock()})
    assert not isinstance(failure.value, PachydermPipelineUnhealthy)
    [job] = failure.value.failed_jobs
    assert (job["pipeline"], job["state"]) == (unique_name, "JOB_FAILURE")
    assert job["reason"].startswith("datum ") and job["reason"].endswith(" failed")
    if not os.environ.get("CPSIGN_TEST_PACHD_ADDRESS"):  # where a real pachd's logs are kept
        assert f'exec: "{MISSING}": executable file not found in $PATH' in str(failure.value)


def test_poke_mode_checks_at_most_once_per_interval(hook, pachd, broken, monkeypatch):
    clock = Clock(monkeypatch)
    sensor = PachydermCommitSetSensor(
        task_id="wait",
        commit_set_id=broken["commit"],
        mode="poke",
        pipeline_grace_period=120,
        pipeline_check_interval=60,
    )
    context = {"ti": mock.MagicMock()}

    def poke_at(t: float) -> int:
        clock.now = t
        before = pachd.call_counts()["InspectPipeline"]
        assert sensor.poke(context).is_done is False
        return pachd.call_counts()["InspectPipeline"] - before

    start = clock.now
    assert poke_at(start) == 0  # the first poke starts the interval
    assert poke_at(start + 30) == 0
    assert poke_at(start + 60) == 2  # both unfinished pipelines: a round
    assert poke_at(start + 90) == 0
    assert poke_at(start + 120) == 2
    assert sensor._unhealthy_since == {f"default/{broken['first']}": start + 60}
    with pytest.raises(PachydermPipelineUnhealthy, match=broken["first"]):
        poke_at(start + 180)


def test_recovered_pipeline_starts_a_new_grace_period(monkeypatch):
    """Unit: states as pachd reports them, CRASHING -> RUNNING -> CRASHING."""
    clock = Clock(monkeypatch)
    states = iter(["PIPELINE_CRASHING", "PIPELINE_RUNNING"] + ["PIPELINE_CRASHING"] * 3)
    fake = mock.MagicMock()
    fake.inspect_commit_set.return_value = [{"finished": None}]
    fake.list_jobs.return_value = [
        {
            "pipeline": "a",
            "project": "default",
            "state": "JOB_STARTING",
            "finished": None,
            "data_processed": 0,
            "data_skipped": 0,
            "data_failed": 0,
            "data_total": 0,
        }
    ]
    fake.pipeline_states.side_effect = lambda pending: [
        {"pipeline": "a", "project": "default", "state": next(states), "reason": "ErrImagePull"}
    ]
    fake.get_pipeline_logs.return_value = ["pull access denied", "back-off pulling image"]
    sensor = PachydermCommitSetSensor(
        task_id="wait",
        commit_set_id="e" * 32,
        mode="poke",
        pipeline_grace_period=100,
        pipeline_check_interval=10,
    )
    monkeypatch.setattr(sensor, "hook", fake)
    start = clock.now
    for t in (0, 10, 20):  # clock starts; CRASHING seen at +10; RUNNING at +20
        clock.now = start + t
        assert sensor.poke({}).is_done is False
    assert sensor._unhealthy_since == {}
    clock.now = start + 30  # CRASHING again: a new grace period from here
    assert sensor.poke({}).is_done is False
    assert sensor._unhealthy_since == {"default/a": start + 30}
    clock.now = start + 35  # not due: one check per 10 s
    assert sensor.poke({}).is_done is False
    clock.now = start + 129  # 99 s < 100 s
    assert sensor.poke({}).is_done is False
    assert fake.pipeline_states.call_count == 4
    clock.now = start + 140
    with pytest.raises(PachydermPipelineUnhealthy) as failure:
        sensor.poke({})
    message = str(failure.value)
    assert "pipeline 'a' has been PIPELINE_CRASHING for 110s (grace 100s): ErrImagePull" in message
    assert "log tail:\n        pull access denied\n        back-off pulling image" in message
    fake.get_pipeline_logs.assert_called_once_with("a", 20, "default")


# ---------------------------------------------------------------- reschedule mode


def reschedule_poke(commit: str, store: Any, try_number: int = 1) -> bool:
    """One reschedule poke: a fresh sensor (nothing kept in memory), like a new process."""
    sensor = PachydermCommitSetSensor(
        task_id="wait",
        commit_set_id=commit,
        mode="reschedule",
        pipeline_grace_period=600,
        pipeline_check_interval=60,
    )
    context = {"ti": SimpleNamespace(try_number=try_number)}
    if store is not None:
        context["task_state_store"] = store
    return sensor.poke(context).is_done


def test_reschedule_mode_counts_the_grace_in_the_task_state_store(hook, pachd, broken, monkeypatch):
    clock = Clock(monkeypatch)
    store = FakeStateStore()
    start = clock.now
    key = f"default/{broken['first']}"
    assert reschedule_poke(broken["commit"], store) is False  # every poke checks
    assert store.data[UNHEALTHY_SINCE_KEY] == {
        "try_number": 1,
        "commit_set_id": broken["commit"],
        "since": {key: start},
    }
    assert store.ops == ["get", "set"]
    clock.now = start + 300
    assert reschedule_poke(broken["commit"], store) is False
    assert store.ops[2:] == ["get"]  # unchanged: read, not written
    # another try of the task (a retry, a cleared task) counts anew
    clock.now = start + 500
    assert reschedule_poke(broken["commit"], store, try_number=2) is False
    assert store.data[UNHEALTHY_SINCE_KEY]["since"] == {key: start + 500}
    assert store.data[UNHEALTHY_SINCE_KEY]["try_number"] == 2
    clock.now = start + 1100
    with pytest.raises(PachydermPipelineUnhealthy, match="for 600s") as failure:
        reschedule_poke(broken["commit"], store, try_number=2)
    assert failure.value.pipelines[0]["pipeline"] == broken["first"]
    assert UNHEALTHY_SINCE_KEY not in store.data  # cleaned up


def test_reschedule_mode_without_a_task_state_store_only_logs(
    hook, pachd, broken, monkeypatch, capsys
):
    """Airflow 3.2 has no task state store, and clears XComs at every poke."""
    Clock(monkeypatch)
    before = pachd.call_counts()["InspectPipeline"]
    capsys.readouterr()
    assert reschedule_poke(broken["commit"], None) is False
    assert pachd.call_counts()["InspectPipeline"] - before == 2  # checked, logged
    logged = capsys.readouterr().out  # Airflow's task logging writes to stdout
    assert "Reschedule mode without Airflow's task state store (Airflow < 3.3)" in logged


def test_finished_set_is_not_checked(hook, pachd, unique_name):
    hook.ensure_repo(f"{unique_name}-in")
    hook.create_or_update_pipeline(spec(unique_name, f"{unique_name}-in"))
    commit = hook.put_file(f"{unique_name}-in", "/c.json", data="{}")
    hook.wait_commit_set(commit, timeout=30)
    store = FakeStateStore()
    before = pachd.call_counts()["InspectPipeline"]
    assert reschedule_poke(commit, store) is True
    assert pachd.call_counts()["InspectPipeline"] == before and store.ops == []


# ---------------------------------------------------------------- deferrable, wiring


def test_deferring_hands_the_check_to_the_trigger(hook, pachd, broken):
    sensor = PachydermCommitSetSensor(
        task_id="wait",
        commit_set_id=broken["commit"],
        deferrable=True,
        pipeline_grace_period=42.0,
        pipeline_check_interval=7.0,
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"ti": mock.MagicMock()})
    trigger = deferred.value.trigger
    assert (trigger.pipeline_grace_period, trigger.pipeline_check_interval) == (42.0, 7.0)


def test_sensor_defaults_and_turning_it_off(hook, pachd, broken):
    sensor = PachydermCommitSetSensor(task_id="wait", commit_set_id="f" * 32)
    assert (sensor.pipeline_grace_period, sensor.pipeline_check_interval) == (600.0, 60.0)
    with pytest.raises(ValueError, match="pipeline_check_interval"):
        PachydermCommitSetSensor(task_id="w", commit_set_id="f" * 32, pipeline_check_interval=0)
    off = PachydermCommitSetSensor(
        task_id="wait",
        commit_set_id=broken["commit"],
        mode="reschedule",
        pipeline_grace_period=None,
    )
    before = pachd.call_counts()["InspectPipeline"]
    assert off.poke({"ti": SimpleNamespace(try_number=1)}).is_done is False
    assert pachd.call_counts()["InspectPipeline"] == before


@pytest.mark.parametrize(("minutes", "expected"), [(None, 600.0), ("2.5", 150.0), ("0", None)])
def test_training_dag_takes_the_grace_from_cpsign_settings(
    airflow_db, monkeypatch, minutes, expected
):
    from dag_runner import load_dag

    if minutes is not None:
        monkeypatch.setenv("AIRFLOW__CPSIGN__PIPELINE_GRACE_MINUTES", minutes)
    dag = load_dag(REPO_ROOT / "dags" / "cpsign_training.py", "cpsign_training")
    wait = dag.get_task("training_run.wait_for_training")
    assert wait.pipeline_grace_period == expected
    assert wait.pipeline_check_interval == 60.0
