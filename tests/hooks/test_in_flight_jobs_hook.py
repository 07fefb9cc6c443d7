"""PachydermHook: planning a pipeline change without sending it, and the jobs an update
would kill (listed, waited on with a deadline). Local pachd; the in-flight job blocks on
a :class:`~job_gate.JobGate`."""

from __future__ import annotations

import pytest
from job_gate import JobGate

from cpsign_airflow.hooks.pachyderm import PachydermHook


def spec(name: str, repo: str, image: str = "busybox") -> dict:
    return {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": repo, "glob": "/*"}},
        "transform": {"image": image, "cmd": ["sh", "-c", "true"]},
    }


@pytest.fixture
def hook(pachyderm_conn):
    hook = PachydermHook(pachyderm_conn, retry_backoff=0.01)
    yield hook
    hook.close()


def test_plan_pipeline_says_what_would_happen_and_sends_nothing(hook, pachd, unique_name):
    repo = f"{unique_name}-in"
    hook.ensure_repo(repo)
    pachd.configure_pipeline(unique_name)
    assert hook.plan_pipeline(spec(unique_name, repo))["action"] == "created"
    assert pachd.call_counts()["CreatePipelineV2"] == 0
    created = hook.create_or_update_pipeline(spec(unique_name, repo))
    assert created["spec_commit"] == hook.inspect_pipeline(unique_name)["spec_commit"]

    unchanged = hook.plan_pipeline(spec(unique_name, repo))
    changed = hook.plan_pipeline(spec(unique_name, repo, image="alpine"))
    reprocess = hook.plan_pipeline(spec(unique_name, repo), reprocess=True)

    assert (unchanged["action"], changed["action"], reprocess["action"]) == (
        "unchanged",
        "updated",
        "updated",
    )
    assert (
        changed["version"] == created["version"] and changed["spec_hash"] != (created["spec_hash"])
    )
    assert pachd.call_counts()["CreatePipelineV2"] == 1
    assert hook.inspect_pipeline(unique_name)["version"] == created["version"]
    assert hook.create_or_update_pipeline(spec(unique_name, repo))["spec_commit"] is None


def test_unfinished_jobs_are_listed_and_waited_on_within_a_deadline(hook, pachd, unique_name):
    repo = f"{unique_name}-in"
    hook.ensure_repo(repo)
    with JobGate() as gate:
        pachd.configure_pipeline(unique_name, handler=gate.handler)
        created = hook.create_or_update_pipeline(spec(unique_name, repo))
        hook.wait_commit_set(created["spec_commit"], timeout=60)  # the creation job
        job_id = hook.put_file(repo, "/a", data="1")
        gate.wait_started()

        [job] = hook.list_unfinished_jobs([unique_name, f"{unique_name}-absent"])
        assert (job["pipeline"], job["job_id"], job["state"]) == (
            unique_name,
            job_id,
            "JOB_RUNNING",
        )
        assert hook.list_unfinished_jobs([("default", unique_name)]) == [job]
        # at the deadline: no exception, the job as it stands
        [still] = hook.wait_for_jobs([job], timeout=0.2)
        assert still["state"] == "JOB_RUNNING"

        gate.open()
        [done] = hook.wait_for_jobs([job], timeout=60)
    assert done["state"] == "JOB_SUCCESS" and done["job_id"] == job_id
    assert hook.list_unfinished_jobs([unique_name]) == []
