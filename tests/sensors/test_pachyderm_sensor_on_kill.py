"""PachydermCommitSetSensor.on_kill against a pachd over real gRPC."""

from __future__ import annotations

import json
import threading

import pytest

from cpsign_airflow.hooks.pachyderm import PachydermHook
from cpsign_airflow.sensors.pachyderm import PachydermCommitSetSensor


def spec(name: str, repo: str) -> dict:
    return {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": repo, "glob": "/*"}},
        "transform": {
            "image": "busybox",
            "cmd": [
                "sh",
                "-c",
                'for d in /pfs/*; do [ "$d" = /pfs/out ] || cp -r "$d"/. /pfs/out/; done',
            ],
        },
    }


@pytest.fixture
def hook(pachyderm_conn) -> PachydermHook:
    hook = PachydermHook(pachyderm_conn, retry_backoff=0.01, retry_backoff_max=0.05)
    yield hook
    hook.close()


def test_on_kill_stops_a_chain(hook, pachd, unique_name, capsys):
    """Stopping stage 1 makes stage 2 UNRUNNABLE before its own stop arrives; pachd 2.12
    answers OK to stopping a finished job, so on_kill stops both without an error."""
    first, second = f"{unique_name}-a", f"{unique_name}-b"
    hook.ensure_repo(f"{unique_name}-in")
    hook.create_or_update_pipeline(spec(first, f"{unique_name}-in"))
    hook.create_or_update_pipeline(spec(second, first))
    running = threading.Event()
    release = threading.Event()

    def gated(ctx) -> None:
        running.set()
        release.wait(30)

    pachd.configure_pipeline(first, handler=gated, duration=0)
    commit = hook.put_file(f"{unique_name}-in", "/c.json", data=json.dumps({"seed": 1}))
    try:
        assert running.wait(10)
        before = {j["pipeline"]: j["finished"] for j in hook.list_jobs(commit)}
        assert before == {first: None, second: None}  # both will be asked to stop
        sensor = PachydermCommitSetSensor(
            task_id="wait", commit_set_id=commit, stop_jobs_on_kill=True
        )
        capsys.readouterr()
        sensor.on_kill()
        logged = capsys.readouterr().out  # Airflow's task logging writes to stdout
    finally:
        release.set()
    jobs = {j["pipeline"]: j["state"] for j in hook.list_jobs(commit)}
    assert jobs == {first: "JOB_KILLED", second: "JOB_UNRUNNABLE"}
    assert pachd.call_counts()["StopJob"] == 2
    assert "could not stop job" not in logged
    assert f"Stopping job {second}@{commit}" in logged
    assert all(c["finished"] for c in hook.inspect_commit_set(commit))


def test_on_kill_leaves_jobs_alone_by_default(hook, pachd, unique_name):
    hook.ensure_repo(f"{unique_name}-in")
    hook.create_or_update_pipeline(spec(unique_name, f"{unique_name}-in"))
    pachd.configure_pipeline(unique_name, duration=30)
    commit = hook.put_file(f"{unique_name}-in", "/c.json", data="{}")
    PachydermCommitSetSensor(task_id="wait", commit_set_id=commit).on_kill()
    assert pachd.call_counts()["StopJob"] == 0
    assert [j["finished"] for j in hook.list_jobs(commit)] == [None]
