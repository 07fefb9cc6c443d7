"""The local pachd's fast CommitInfo / JobInfo encoder against ``info()`` (betterproto).

Both encodings of every commit and job of a varied scenario (chains, a failed
and an unrunnable job, a stopped job, open commits, spec commits, children)
are decoded with pachyderm-sdk's classes and must be equal messages.
"""

from __future__ import annotations

import threading

from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs, pps

from cpsign_airflow.hooks.pachyderm import commit_to_dict, job_to_dict
from cpsign_airflow.testing.pachd import LocalPachd, wire


def pipeline(client: Client, name: str, repo: str, glob: str = "/*") -> None:
    client.pps.create_pipeline(
        pipeline=pps.Pipeline(name=name),
        transform=pps.Transform(
            image="ubuntu:20.04", cmd=["bash"], stdin=[f"cp -r /pfs/{repo}/. /pfs/out/"]
        ),
        input=pps.Input(pfs=pps.PfsInput(repo=repo, glob=glob)),
    )


def put(client: Client, repo: str, files: dict[str, bytes]) -> pfs.Commit:
    with client.pfs.commit(branch=pfs.Branch.from_uri(f"{repo}@master")) as commit:
        for path, data in files.items():
            commit.put_file_from_bytes(path, data)
    return commit


def test_fast_encoding_equals_betterproto(local_pachd: LocalPachd) -> None:  # noqa: F811
    client = Client.from_pachd_address(local_pachd.address)
    release = threading.Event()
    local_pachd.configure_pipeline("slow", handler=lambda ctx: release.wait(30), duration=0)
    local_pachd.configure_pipeline("bad", fail=True, reason="datum failed")
    client.pfs.create_project(project=pfs.Project(name="lab"))
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    client.pfs.create_repo(repo=pfs.Repo(name="raw", project=pfs.Project(name="lab")))
    put(client, "data", {"/a.csv": b"1\n", "/b.csv": b"22\n"})
    pipeline(client, "train", "data")
    pipeline(client, "bad", "data", glob="/")
    pipeline(client, "after-bad", "bad")
    first = put(client, "data", {"/c.csv": b"333\n"})
    first.wait_all()
    pipeline(client, "slow", "train")
    open_set = put(client, "data", {"/d.csv": b"4444\n"})  # "slow" blocks: open commits
    put(client, "lab/raw", {"/x": b"x" * 5000})
    client.pfs.start_commit(branch=pfs.Branch.from_uri("lab/raw@dev"), description="open")
    stopped = put(client, "data", {"/e.csv": b"5\n"})
    client.pps.stop_job(job=pps.Job(pipeline=pps.Pipeline(name="slow"), id=stopped.id))

    def compare() -> tuple[int, int]:
        state = local_pachd._require_state()
        commits = [c for r in state.pfs.repos.values() for c in r.commits.values()]
        for rec in commits:
            fast = pfs.CommitInfo.FromString(wire.commit_info(rec))
            slow = pfs.CommitInfo.FromString(bytes(rec.info()))
            assert fast == slow, rec.repo_str
            assert commit_to_dict(fast) == commit_to_dict(slow)
        for job in state.pps.jobs.values():
            for details in (False, True):
                fast = pps.JobInfo.FromString(wire.job_info(job, details))
                slow = pps.JobInfo.FromString(bytes(job.info(details=details)))
                assert fast == slow, (job.pipeline.name, job.id)
                assert job_to_dict(fast) == job_to_dict(slow)
        return len(commits), len(state.pps.jobs)

    try:
        n_commits, n_jobs = local_pachd._in_loop(compare)
        states = {j.job.pipeline.name: j.state for j in client.pps.list_job()}
        train = client.pps.inspect_job(
            job=pps.Job(pipeline=pps.Pipeline(name="train"), id=first.id)
        )
    finally:
        release.set()
    # Again once the open commits finished and another set added subvenance to the spec
    # commits: wire.py keeps each CommitInfo's bytes until what they encode changes.
    open_set.wait_all()
    later = put(client, "data", {"/f.csv": b"66\n"})
    later.wait_all()
    n_later, _ = local_pachd._in_loop(compare)
    assert n_later > n_commits
    assert n_commits >= 20 and n_jobs >= 10
    assert {pps.JobState.JOB_FAILURE, pps.JobState.JOB_UNRUNNABLE} <= set(states.values())
    assert open_set.id  # the scenario had open commits when compared
    assert train.state == pps.JobState.JOB_SUCCESS
