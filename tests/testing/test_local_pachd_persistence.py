"""The local pachd's ``data_dir``: state survives a stop and a new process, through the SDK."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs, pps
from sdk_helpers import put, read

from cpsign_airflow.testing.pachd import JobContext, LocalPachd

COPY = {
    "pipeline": {"name": "copy"},
    "transform": {"cmd": ["bash"], "stdin": ["cp -r /pfs/data/. /pfs/out/"]},
    "input": {"pfs": {"repo": "data", "glob": "/*"}},
}
BIG = os.urandom(1024 * 1024) * 6  # > 5 MiB: spills to a temp file, several GetFile messages


def wait_set(client: Client, set_id: str) -> list[pfs.CommitInfo]:
    return list(client.pfs.inspect_commit_set(commit_set=pfs.CommitSet(id=set_id), wait=True))


def spec_commit_id(client: Client, pipeline: str = "copy") -> str:
    """The commit set a CreatePipeline opened (its spec commit's id)."""
    return client.pps.inspect_pipeline(pipeline=pps.Pipeline(name=pipeline)).spec_commit.id


def snapshot(client: Client) -> dict[str, Any]:
    """Everything the API shows about the state, as plain data."""
    repos = [r for t in ("user", "spec", "meta") for r in client.pfs.list_repo(type=t)]
    return {
        "repos": [r.to_dict() for r in repos],
        "commits": [c.to_dict() for r in repos for c in client.pfs.list_commit(repo=r.repo)],
        "branches": [b.to_dict() for b in client.pfs.list_branch()],
        "commit_sets": [s.to_dict() for s in client.pfs.list_commit_set()],
        "pipelines": [p.to_dict() for p in client.pps.list_pipeline(details=True)],
        "jobs": [j.to_dict() for j in client.pps.list_job(details=True, history=-1)],
        "secrets": client.pps.list_secret().to_dict(),
    }


def test_state_survives_a_new_pachd(tmp_path: Path) -> None:
    files = {"/a.txt": b"alpha\n", "/b.txt": b"beta\n", "/big.bin": BIG}
    with LocalPachd(data_dir=tmp_path) as first:
        client = Client.from_pachd_address(first.address)
        client.pfs.create_repo(repo=pfs.Repo(name="data"), description="inputs")
        first_commit = put(client, "data@master", {"/a.txt": b"old"})
        second_commit = put(client, "data@master", files)
        client.pps.create_pipeline_v2(create_pipeline_request_json=json.dumps(COPY))
        wait_set(client, spec_commit_id(client))
        # an update without reprocess: version 2, same salt, so its job skips every datum
        client.pps.create_pipeline_v2(create_pipeline_request_json=json.dumps(COPY), update=True)
        wait_set(client, spec_commit_id(client))
        client.pps.create_secret(name="s", data={"k": b"v"})  # the SDK sends the manifest
        before = snapshot(client)
    assert (tmp_path / "blobs" / hashlib.sha256(BIG).hexdigest()).read_bytes() == BIG

    with LocalPachd(data_dir=tmp_path) as second:
        client = Client.from_pachd_address(second.address)
        assert snapshot(client) == before
        head = client.pfs.inspect_commit(commit=pfs.Commit.from_uri("data@master"))
        assert head.commit.id == second_commit.id and head.finished
        assert head.parent_commit.id == first_commit.id
        parent = client.pfs.inspect_commit(commit=head.parent_commit)
        assert parent.finished and not parent.parent_commit.id
        assert read(client, f"data@{first_commit.id}:/a.txt") == b"old"
        for path, data in files.items():
            assert read(client, f"data@master:{path}") == data
            assert read(client, f"copy@master:{path}") == data
        info = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="copy"))
        assert info.version == 2 and json.loads(info.effective_spec_json)["transform"]["cmd"] == [
            "bash"
        ]
        jobs = list(client.pps.list_job(pipeline=pps.Pipeline(name="copy"), history=-1))
        assert [j.state for j in jobs] == [pps.JobState.JOB_SUCCESS] * 2
        assert [(j.data_processed, j.data_skipped) for j in jobs] == [(0, 3), (3, 0)]
        # the secret's data survived: a new pipeline reads it as an environment variable
        show = {
            "pipeline": {"name": "show"},
            "transform": {
                "cmd": ["bash", "-c", 'printf %s "$K" > /pfs/out/k'],
                "secrets": [{"name": "s", "key": "k", "envVar": "K"}],
            },
            "input": {"pfs": {"repo": "data", "glob": "/"}},
        }
        client.pps.create_pipeline_v2(create_pipeline_request_json=json.dumps(show))
        wait_set(client, spec_commit_id(client, "show"))
        assert read(client, "show@master:/k") == b"v"

        # datum skipping survived: only the new file's datum runs
        new = put(client, "data@master", {"/c.txt": b"gamma\n"})
        wait_set(client, new.id)
        job = client.pps.inspect_job(job=pps.Job(pipeline=pps.Pipeline(name="copy"), id=new.id))
        assert job.state == pps.JobState.JOB_SUCCESS
        assert (job.data_total, job.data_processed, job.data_skipped) == (4, 1, 3)
        assert read(client, "copy@master:/big.bin") == BIG
        assert read(client, "copy@master:/c.txt") == b"gamma\n"


def test_interrupted_job_runs_again_from_the_start(tmp_path: Path) -> None:
    entered, release = threading.Event(), threading.Event()

    def blocked(ctx: JobContext) -> None:
        entered.set()
        release.wait(60)

    try:
        with LocalPachd(data_dir=tmp_path) as first:
            first.configure_pipeline("copy", handler=blocked)
            client = Client.from_pachd_address(first.address)
            client.pfs.create_repo(repo=pfs.Repo(name="data"))
            put(client, "data@master", {"/a.txt": b"alpha\n"})
            client.pps.create_pipeline_v2(create_pipeline_request_json=json.dumps(COPY))
            job_id = spec_commit_id(client)
            assert entered.wait(60)
            assert first.job_states(job_id, "copy")[-1] == "JOB_RUNNING"
    finally:
        release.set()

    with LocalPachd(data_dir=tmp_path) as second:  # no handler now: the transform runs
        client = Client.from_pachd_address(second.address)
        wait_set(client, job_id)
        job = client.pps.inspect_job(job=pps.Job(pipeline=pps.Pipeline(name="copy"), id=job_id))
        assert job.state == pps.JobState.JOB_SUCCESS and job.data_processed == 1
        assert second.job_states(job_id, "copy") == [
            "JOB_CREATED",
            "JOB_STARTING",
            "JOB_RUNNING",
            "JOB_CREATED",  # reset at load
            "JOB_STARTING",
            "JOB_RUNNING",
            "JOB_FINISHING",
            "JOB_SUCCESS",
        ]
        assert read(client, "copy@master:/a.txt") == b"alpha\n"


def start_cli(data_dir: Path) -> tuple[subprocess.Popen[str], Client]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpsign_airflow.testing.pachd", "--port", "0"]
        + ["--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, Client.from_pachd_address(proc.stdout.readline().strip())


def stop_cli(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_cli_data_dir(tmp_path: Path) -> None:
    proc, client = start_cli(tmp_path)
    try:
        client.pfs.create_repo(repo=pfs.Repo(name="data"))
        put(client, "data@master", {"/x.txt": b"kept\n"})
        stop_cli(proc)
        assert (tmp_path / "state.json").is_file()
        proc, client = start_cli(tmp_path)
        assert read(client, "data@master:/x.txt") == b"kept\n"
        stop_cli(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_no_data_dir_writes_nothing(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    with LocalPachd() as pachd:
        client = Client.from_pachd_address(pachd.address)
        client.pfs.create_repo(repo=pfs.Repo(name="data"))
        put(client, "data@master", {"/x.txt": b"memory only\n"})
        assert pachd._require_state().events.on_dirty is None
    assert list(tmp_path.iterdir()) == []
