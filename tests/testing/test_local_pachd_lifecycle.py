"""pachd 2.12's refusals and lifecycle on the local pachd, through the unmodified SDK.

Texts and codes are pachd's (src/server/pfs/server/server_commit.go, src/server/pps/
server/api_server.go, src/server/worker/pipeline/transform/registry.go).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import grpc
import pytest
import sdk_helpers
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs, pps
from sdk_helpers import rpc_error

from cpsign_airflow.testing.pachd import LocalPachd
from cpsign_airflow.testing.pachd import worker as pachd_worker

JS = pps.JobState


@pytest.fixture
def client(local_pachd: LocalPachd) -> Client:  # noqa: F811
    c = Client.from_pachd_address(local_pachd.address)
    c.pfs.create_repo(repo=pfs.Repo(name="data"))
    return c


def put(client: Client, files: dict[str, bytes], repo: str = "data") -> pfs.Commit:
    return sdk_helpers.put(client, f"{repo}@master", files)


def create(client: Client, name: str, repo: str = "data", *, update: bool = False, **spec):
    body = {
        "pipeline": {"name": name},
        "transform": {"cmd": ["bash"], "stdin": [f"cp -r /pfs/{repo}/. /pfs/out/"]},
        "input": {"pfs": {"repo": repo, "glob": "/*"}},
        **spec,
    }
    return client.pps.create_pipeline_v2(
        create_pipeline_request_json=json.dumps(body), update=update
    )


def unset(ts: datetime | None) -> bool:
    """betterproto decodes an absent Timestamp as the epoch."""
    return ts is None or ts == datetime(1970, 1, 1, tzinfo=timezone.utc)


def job(client: Client, pipeline: str, job_id: str, wait: bool = True) -> pps.JobInfo:
    return client.pps.inspect_job(
        job=pps.Job(pipeline=pps.Pipeline(name=pipeline), id=job_id), wait=wait
    )


def test_start_commit_on_an_open_head_is_refused(client: Client) -> None:
    open_commit = client.pfs.start_commit(branch=pfs.Branch.from_uri("data@master"))
    err = rpc_error(client.pfs.start_commit, branch=pfs.Branch.from_uri("data@master"))
    assert (err.code(), err.details()) == (
        grpc.StatusCode.UNKNOWN,
        "start commit in transaction: create commit: parent commit "
        f"default/data@{open_commit.id} has not been finished",
    )
    client.pfs.finish_commit(commit=open_commit)
    # a FINISHING head is enough (pachd checks Finishing, not Finished)
    assert client.pfs.start_commit(branch=pfs.Branch.from_uri("data@master")).id


def test_finish_commit_goes_finishing_then_finished(client: Client) -> None:
    commit = client.pfs.start_commit(branch=pfs.Branch.from_uri("data@master"))
    client.pfs.finish_commit(commit=commit)
    finishing = client.pfs.inspect_commit(commit=commit, wait=pfs.CommitState.FINISHING)
    finished = client.pfs.inspect_commit(commit=commit, wait=pfs.CommitState.FINISHED)
    assert finishing.finishing is not None
    assert finished.finished is not None and finished.finishing <= finished.finished
    err = rpc_error(client.pfs.finish_commit, commit=commit)
    assert err.details() == f"commit default/data@{commit.id} has already finished"


def test_finished_follows_finishing_after_the_masters_gap(
    client: Client,
    local_pachd: LocalPachd,  # noqa: F811
) -> None:
    """pachd 2.12: FinishCommit only sets ``finishing`` (src/server/pfs/server/
    server_commit.go finishCommit); the PFS master (master.go postProcessCommit, then its
    finishCommit) compacts and validates the commit and sets ``finished`` in a later
    transaction. Meanwhile the commit refuses writes and a second FinishCommit
    (server_file.go, ErrCommitFinished) and may already be a parent (linkParent)."""
    local_pachd.finish_delay = 0.5
    commit = client.pfs.start_commit(branch=pfs.Branch.from_uri("data@master"))
    client.pfs.finish_commit(commit=commit)
    info = client.pfs.inspect_commit(commit=commit)
    assert not unset(info.finishing) and unset(info.finished)
    write = [
        pfs.ModifyFileRequest(set_commit=commit),
        pfs.ModifyFileRequest(add_file=pfs.AddFile(path="/a", raw=b"a")),
    ]
    for err in (
        rpc_error(client.pfs.modify_file, iter(write)),
        rpc_error(client.pfs.finish_commit, commit=commit),
    ):
        assert (err.code(), err.details()) == (
            grpc.StatusCode.UNKNOWN,
            f"commit default/data@{commit.id} has already finished",
        )
    child = client.pfs.start_commit(branch=pfs.Branch.from_uri("data@master"))
    assert client.pfs.inspect_commit(commit=child).parent_commit.id == commit.id
    finished = client.pfs.inspect_commit(commit=commit, wait=pfs.CommitState.FINISHED)
    assert (finished.finished - finished.finishing).total_seconds() >= 0.4


def test_pipeline_output_and_meta_commits_cannot_be_finished_by_hand(
    client: Client,
    local_pachd: LocalPachd,  # noqa: F811
) -> None:
    local_pachd.unpullable_images.add("lab/stuck:1")  # its job waits: commits stay open
    create(client, "stuck", transform={"image": "lab/stuck:1", "cmd": ["true"]})
    commit = put(client, {"/a": b"1"})
    for repo_type in ("user", "meta"):
        out = pfs.Commit(repo=pfs.Repo(name="stuck", type=repo_type), id=commit.id)
        err = rpc_error(client.pfs.finish_commit, commit=out)
        assert (err.code(), err.details()) == (
            grpc.StatusCode.UNKNOWN,
            "cannot finish a pipeline output or meta commit, use 'stop job' instead",
        )


def test_commit_set_holds_each_pipelines_meta_commit(client: Client) -> None:
    create(client, "first")
    create(client, "second", "first")
    commit = put(client, {"/a": b"1"})
    infos = client.pfs.wait_commit_set(pfs.CommitSet(id=commit.id))
    kinds = {(i.commit.repo.name, i.commit.repo.type) for i in infos if i.commit.id == commit.id}
    assert kinds == {
        ("data", "user"),
        ("first", "user"),
        ("first", "meta"),
        ("second", "user"),
        ("second", "meta"),
    }
    meta = client.pfs.inspect_branch(
        branch=pfs.Branch(repo=pfs.Repo(name="first", type="meta"), name="master")
    )
    assert {(b.repo.name, b.repo.type) for b in meta.direct_provenance} == {
        ("data", "user"),
        ("first", "spec"),
    }
    files = [
        f.file.path
        for f in client.pfs.walk_file(
            file=pfs.File(commit=pfs.Commit(repo=pfs.Repo(name="first", type="meta"), id=commit.id))
        )
    ]
    assert any(p.startswith("/meta/") and p.endswith("/meta") for p in files)


def test_update_kills_unfinished_jobs_and_downstream_is_unrunnable(
    client: Client, tmp_path: Path
) -> None:
    started, gate = tmp_path / "started", tmp_path / "gate"
    os.mkfifo(started)
    os.mkfifo(gate)
    # the datum's process announces itself through one FIFO and blocks reading the other
    hold = [f"echo up > {started}", f"read -r line < {gate}", "cp -r /pfs/data/. /pfs/out/"]
    create(client, "slow", transform={"cmd": ["bash"], "stdin": hold})
    create(client, "after", "slow")
    commit = put(client, {"/a": b"1"})
    with open(started) as announced:  # returns once the process runs: no polling
        assert announced.read().strip() == "up"
    assert job(client, "slow", commit.id, wait=False).state == JS.JOB_RUNNING
    create(
        client,
        "slow",
        update=True,
        transform={"cmd": ["bash"], "stdin": ["cp -r /pfs/data/. /pfs/out/"]},
    )
    killed = job(client, "slow", commit.id)
    assert (killed.state, killed.reason) == (
        JS.JOB_KILLED,
        "all jobs killed because pipeline was updated for user unknown_username",
    )
    downstream = job(client, "after", commit.id)
    assert (downstream.state, downstream.reason) == (
        JS.JOB_UNRUNNABLE,
        "unrunnable because the following upstream pipelines failed: slow",
    )
    out = client.pfs.inspect_commit(commit=pfs.Commit(repo=pfs.Repo(name="slow"), id=commit.id))
    assert out.error == killed.reason and out.finished


def test_pipeline_that_cannot_start_is_crashing_and_its_commits_stay_open(
    client: Client,
    local_pachd: LocalPachd,  # noqa: F811
) -> None:
    """An image that cannot be pulled: pachd's master sets CRASHING with the pod's waiting
    message (pollPipelinePods, src/server/pps/server/poller.go; kubelet's ImagePullBackOff)."""
    local_pachd.unpullable_images.add("lab/missing:1")
    create(client, "good")
    create(client, "broken", transform={"image": "lab/missing:1", "cmd": ["true"]})
    commit = put(client, {"/a": b"1"})
    client.pfs.wait_commit(pfs.Commit(repo=pfs.Repo(name="good"), id=commit.id))
    good = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="good"))
    broken = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="broken"))
    assert good.state == pps.PipelineState.PIPELINE_RUNNING
    assert broken.state == pps.PipelineState.PIPELINE_CRASHING
    assert broken.reason == 'Back-off pulling image "lab/missing:1"'
    info = client.pfs.inspect_commit(commit=pfs.Commit(repo=pfs.Repo(name="broken"), id=commit.id))
    assert unset(info.finished) and unset(info.finishing)
    stuck = job(client, "broken", commit.id, wait=False)
    assert stuck.state == JS.JOB_STARTING
    # fixing the image (an update) kills the stuck job; the update's own job runs
    create(client, "broken", update=True)
    assert job(client, "broken", commit.id).state == JS.JOB_KILLED
    fixed = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="broken"))
    assert job(client, "broken", fixed.spec_commit.id).state == JS.JOB_SUCCESS
    assert client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="broken")).state == (
        pps.PipelineState.PIPELINE_RUNNING
    )


@pytest.mark.parametrize(
    ("name", "project", "message"),
    [
        ("p" * 52, "default", f'pipeline name "{"p" * 52}" is 1 characters longer than the 51 max'),
        (
            "p" * 39,
            "l" * 20,
            f'Kubernetes name "{"l" * 20}-{"p" * 39}-v99" is 1 characters longer than the 63 max',
        ),
    ],
)
def test_pipeline_name_limits(client: Client, name: str, project: str, message: str) -> None:
    if project != "default":
        client.pfs.create_project(project=pfs.Project(name=project))
    spec = {
        "pipeline": {"name": name, "project": {"name": project}},
        "transform": {"cmd": ["true"]},
    }
    err = rpc_error(client.pps.create_pipeline_v2, create_pipeline_request_json=json.dumps(spec))
    assert (err.code(), err.details()) == (grpc.StatusCode.UNKNOWN, message)
    # one character less is accepted
    spec["pipeline"]["name"] = name[:-1]
    client.pps.create_pipeline_v2(create_pipeline_request_json=json.dumps(spec))


def test_pipeline_named_like_an_existing_repo_is_refused(client: Client) -> None:
    err = rpc_error(create, client, "data", "data")
    assert (err.code(), err.details()) == (
        grpc.StatusCode.UNKNOWN,
        'pipeline "data" cannot be created because a repo with the same name already exists',
    )


def test_stop_job_on_a_finished_job_is_ok(client: Client) -> None:
    create(client, "copy")
    commit = put(client, {"/a": b"1"})
    done = job(client, "copy", commit.id)
    assert done.state == JS.JOB_SUCCESS
    client.pps.stop_job(job=done.job)
    assert job(client, "copy", commit.id).state == JS.JOB_SUCCESS
    err = rpc_error(client.pps.stop_job, job=pps.Job(pipeline=done.job.pipeline, id="0" * 32))
    assert (err.code(), err.details()) == (
        grpc.StatusCode.NOT_FOUND,
        f"jobs default/copy@{'0' * 32} not found",
    )


def test_inspect_job_set_of_an_unknown_id_streams_nothing(client: Client) -> None:
    assert list(client.pps.inspect_job_set(job_set=pps.JobSet(id="a" * 32), wait=True)) == []


def test_details_carry_pachds_defaults(client: Client) -> None:
    create(client, "copy")
    info = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="copy"), details=True)
    d = info.details
    assert (d.reprocess_spec, d.datum_tries, d.output_branch) == ("until_success", 3, "master")
    assert d.transform.image == "ubuntu:20.04"
    effective = info.effective_spec_json
    assert effective == json.dumps(json.loads(effective), separators=(",", ":"), sort_keys=True)


def test_secret_rpcs_and_pipelines_that_mount_missing_secrets(client: Client) -> None:
    mounting = {"cmd": ["true"], "secrets": [{"name": "db", "key": "password", "env_var": "PW"}]}
    err = rpc_error(create, client, "ingest", transform=mounting)
    assert (err.code(), err.details()) == (grpc.StatusCode.UNKNOWN, "missing Kubernetes secret db")
    assert not client.pps.pipeline_exists(pps.Pipeline(name="ingest"))  # nothing was created

    client.pps.create_secret(name="db", data={"user": "lab"})
    err = rpc_error(create, client, "ingest", transform=mounting)
    assert err.details() == "Kubernetes secret db missing key password"
    no_key = {"cmd": ["true"], "secrets": [{"name": "db", "env_var": "PW"}]}
    assert rpc_error(create, client, "ingest", transform=no_key).details() == (
        "secret db has env_var set but is missing key"
    )

    err = rpc_error(client.pps.create_secret, name="db", data={"password": "x"})
    assert err.details() == 'failed to create secret: secrets "db" already exists'
    info = client.pps.inspect_secret(secret=pps.Secret(name="db"))
    assert (info.secret.name, info.type) == ("db", "Opaque") and info.creation_timestamp
    assert [i.secret.name for i in client.pps.list_secret().secret_info] == ["db"]
    client.pps.delete_secret(secret=pps.Secret(name="db"))
    assert client.pps.list_secret().secret_info == []
    err = rpc_error(client.pps.inspect_secret, secret=pps.Secret(name="db"))
    assert (err.code(), err.details()) == (
        grpc.StatusCode.UNKNOWN,
        'failed to get secret: secrets "db" not found',
    )


def test_transforms_also_run_under_unshare(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """The root fallback when bubblewrap is missing: unshare --mount and a bind onto /pfs."""
    if pachd_worker.os.geteuid() != 0:
        pytest.skip("unshare --mount needs root")
    monkeypatch.setenv("CPSIGN_LOCAL_PACHD_SANDBOX", "unshare")
    create(client, "copy", transform={"cmd": ["bash"], "stdin": ["cat /pfs/data/a > /pfs/out/b"]})
    commit = put(client, {"/a": b"via unshare"})
    assert job(client, "copy", commit.id).state == JS.JOB_SUCCESS
    got = b"".join(m.value for m in client.pfs.get_file(file=pfs.File.from_uri("copy@master:/b")))
    assert got == b"via unshare"


def test_no_sandbox_fails_the_job_saying_what_is_missing(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither bubblewrap nor root: the job fails naming what to install."""
    real_which = pachd_worker.shutil.which

    def which(name: str, *args, **kwargs):
        return None if name in ("bwrap", "unshare") else real_which(name, *args, **kwargs)

    monkeypatch.delenv("CPSIGN_LOCAL_PACHD_SANDBOX", raising=False)
    monkeypatch.setattr(pachd_worker.shutil, "which", which)
    monkeypatch.setattr(pachd_worker.os, "geteuid", lambda: 1000)
    create(client, "copy")
    commit = put(client, {"/a": b"1"})
    failed = job(client, "copy", commit.id)
    assert failed.state == JS.JOB_FAILURE
    assert "bubblewrap (bwrap) is not installed" in failed.reason
    assert "apt-get install bubblewrap" in failed.reason
